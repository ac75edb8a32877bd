"""2-D layouts of the same clips under several checkpoints, aligned so a clip's position is comparable
from one checkpoint to the next.

The checkpoints take the place of the hidden states in :func:`core.geometry.projections.layer_embeddings`:
each checkpoint's UMAP runs on its exact kNN graph, starts from the previous checkpoint's layout and is
fitted onto it by orthogonal Procrustes, the alignment the Projections slider already uses across layers.
umap-learn's ``AlignedUMAP`` (a joint fit with each clip tied to itself) would do the same job at ten
times the cost: 3 checkpoints x 240 clips took 19 s per fit against 1.8 s here, and its first fit in a
process 135-159 s against 42-57 s (numba compiling; 2 cores at load 5-10, 2026-12-02). Features of
different widths are zero-padded to the widest, which leaves every Euclidean distance (and so every kNN
graph) unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from core.errors import ConvexityInputError
from core.geometry.options import DEFAULT_UMAP, UmapOptions
from core.geometry.projections import layer_embeddings
from core.geometry.validation import as_feature_array

__all__ = ["aligned_layouts"]


def aligned_layouts(
    features: Sequence[np.ndarray],
    options: UmapOptions = DEFAULT_UMAP,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(M, N, 2) layouts of M feature arrays (N, D_m) of the same N clips, in checkpoint order."""
    arrays = [as_feature_array(np.asarray(f, dtype=np.float32)) for f in features]
    if len(arrays) < 2:
        raise ConvexityInputError(
            f"an aligned layout needs 2 or more checkpoints, got {len(arrays)}"
        )
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ConvexityInputError("every checkpoint's features must hold the same clips")
    width = max(a.shape[1] for a in arrays)
    stacked = np.zeros((n, len(arrays), width), dtype=np.float32)
    for i, a in enumerate(arrays):
        stacked[:, i, : a.shape[1]] = a
    return layer_embeddings(stacked, options, progress=progress)
