"""Per-layer UMAP projections (exact kNN reused, aligned layer to layer) and the teaching helpers."""

from __future__ import annotations

import numpy as np
import pytest

from core.geometry.convexity import graph_convexity
from core.geometry.options import ConvexityOptions, UmapOptions
from core.geometry.projections import layer_embeddings, normalise, precomputed_knn, procrustes_align
from core.geometry.synthetic import synthetic_layers, toy_clusters
from core.geometry.teaching import knn_csr, path_score, shortest_path, undirected_pairs


def test_precomputed_knn_puts_each_point_first():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    idx, dist = precomputed_knn(x, 6)
    assert idx.shape == dist.shape == (30, 6)
    assert np.array_equal(idx[:, 0], np.arange(30))
    assert np.all(dist[:, 0] == 0)
    brute = np.sort(np.linalg.norm(x[:, None] - x[None], axis=2), axis=1)[:, :6]
    np.testing.assert_allclose(dist, brute, rtol=1e-5, atol=1e-6)


def test_procrustes_recovers_a_rotation():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(50, 2))
    theta = 1.1
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = ref @ rot * 3.0 + 5.0
    np.testing.assert_allclose(procrustes_align(moved, ref), normalise(ref), atol=1e-9)


@pytest.mark.slow
def test_layer_embeddings_shape_determinism_and_alignment():
    x, _ = synthetic_layers(120, 4, 16, 3, seed=0)
    calls = []
    options = UmapOptions(n_neighbors=10, n_epochs=60)
    a = layer_embeddings(x, options, progress=lambda d, t: calls.append((d, t)))
    b = layer_embeddings(x, options)
    assert a.shape == (3, 120, 2)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    np.testing.assert_allclose(a, b)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(np.sqrt((a**2).sum(axis=2).mean(axis=1)), 1.0, rtol=1e-4)


def test_shortest_path_matches_the_engine_on_average():
    points, labels = toy_clusters(15, 3, 0.6, "moons", seed=3)
    csr = knn_csr(points, 5)
    indptr, nbr, wts = csr.indptr, csr.indices, csr.weights
    engine = graph_convexity(
        points, labels, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    )
    for c in range(3):
        members = np.flatnonzero(labels == c)
        scores = [
            path_score(shortest_path(indptr, nbr, wts, int(s), int(t)), labels)
            for s in members
            for t in members
            if s != t
        ]
        assert np.mean(scores) == pytest.approx(engine.per_class[c].score, abs=1e-12)


def test_path_endpoints_edges_and_scores():
    points = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0], [10, 0], [11, 0]])
    labels = np.array([0, 1, 0, 0, 2, 2])
    csr = knn_csr(points, 1)
    indptr, nbr, wts = csr.indptr, csr.indices, csr.weights
    assert shortest_path(indptr, nbr, wts, 0, 4) is None
    assert path_score(None, labels) == 0.0
    path = shortest_path(indptr, nbr, wts, 0, 3)
    assert path == [0, 1, 2, 3]
    assert path_score(path, labels) == 0.5
    assert path_score([4, 5], labels) == 1.0
    pairs = undirected_pairs(indptr, nbr)
    assert np.all(pairs[:, 0] < pairs[:, 1])
    assert {tuple(p) for p in pairs} == {(0, 1), (1, 2), (2, 3), (4, 5)}
