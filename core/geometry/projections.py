"""2-D UMAP of every hidden state, on the exact kNN graph, aligned layer to layer so a slider is comparable.

Each layer's UMAP reuses the exact Euclidean kNN graph (``core.geometry.knn``) through umap-learn's
``precomputed_knn`` (no approximate search), is initialised from the previous layer's embedding, and is then
aligned to it by an orthogonal Procrustes fit (rotation/reflection + translation) and scaled to unit RMS
radius, so that the same clip stays roughly in place when nothing changes between layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch

from core.errors import ConvexityInputError
from core.geometry.knn import knn_graph
from core.geometry.options import DEFAULT_UMAP, UmapOptions
from core.geometry.validation import as_feature_array


def precomputed_knn(x: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """UMAP's (indices, distances) (N, n_neighbors) with each point first at distance 0, from the exact graph."""
    x = as_feature_array(x)
    n = x.shape[0]
    g = knn_graph(torch.from_numpy(np.array(x, dtype=np.float32)), n_neighbors - 1)
    idx = np.concatenate([np.arange(n)[:, None], g.indices.cpu().numpy()], axis=1)
    dist = np.concatenate([np.zeros((n, 1)), g.distances.cpu().numpy()], axis=1)
    return idx.astype(np.int64), dist.astype(np.float32)


def normalise(emb: np.ndarray) -> np.ndarray:
    """Centre an embedding and scale it to unit root-mean-square radius."""
    centred = emb - emb.mean(axis=0)
    rms = float(np.sqrt((centred**2).sum(axis=1).mean()))
    return centred / rms if rms > 0 else centred


def procrustes_align(emb: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``emb`` normalised, then rotated/reflected to best match normalised ``ref`` (orthogonal Procrustes)."""
    a, b = normalise(emb), normalise(ref)
    u, _, vt = np.linalg.svd(a.T @ b)
    return a @ (u @ vt)


def layer_embeddings(
    features: np.ndarray,
    options: UmapOptions = DEFAULT_UMAP,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Aligned 2-D UMAP embeddings (L+1, N, 2) of features (N, L+1, D), one per hidden state.

    ``progress(done, total)`` is called after each layer. Deterministic for a fixed ``options.seed``.
    """
    import umap  # slow import (numba); only when needed

    features = as_feature_array(features, "N, L+1, D")
    n, n_states = features.shape[0], features.shape[1]
    if n < 4:
        raise ConvexityInputError(f"need at least 4 points for a projection, got {n}")
    nn = max(2, min(options.n_neighbors, n - 1))
    out = np.empty((n_states, n, 2), dtype=np.float32)
    prev: np.ndarray | None = None
    for layer in range(n_states):
        x = np.asarray(features[:, layer, :], dtype=np.float32)
        idx, dist = precomputed_knn(x, nn)
        init = "spectral" if prev is None else prev.astype(np.float64)
        reducer = umap.UMAP(
            n_neighbors=nn,
            min_dist=options.min_dist,
            n_epochs=options.n_epochs,
            init=init,
            random_state=options.seed,
            precomputed_knn=(idx, dist, None),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = reducer.fit_transform(x)
        emb = normalise(emb) if prev is None else procrustes_align(emb, prev)
        out[layer] = emb
        prev = emb
        if progress is not None:
            progress(layer + 1, n_states)
    return out
