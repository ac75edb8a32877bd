"""Small helpers for the teaching page: the kNN graph of a 2-D toy and one shortest path with its score."""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence

import numpy as np
import torch

from core.geometry.knn import knn_graph
from core.geometry.validation import as_feature_array, as_labels


def knn_csr(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The symmetrised exact kNN graph of ``points`` (N, D) as CSR (indptr, neighbours, weights)."""
    return knn_graph(
        torch.from_numpy(np.ascontiguousarray(as_feature_array(points), dtype=np.float64)), k
    ).csr()


def undirected_pairs(indptr: np.ndarray, nbr: np.ndarray) -> np.ndarray:
    """Each undirected edge once, as an (E, 2) array with the smaller index first (for drawing)."""
    src = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    keep = src < nbr
    return np.stack([src[keep], nbr[keep]], axis=1)


def shortest_path(
    indptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, source: int, target: int
) -> list[int] | None:
    """One shortest weighted path source -> target (vertex list), or None if unreachable.

    Same tie rule as the convexity engine: least weight, then fewest edges, then lowest-index predecessor.
    """
    n = len(indptr) - 1
    if not (0 <= source < n and 0 <= target < n):
        raise IndexError(f"vertices must lie in 0..{n - 1}")
    best: list[tuple[float, int, int] | None] = [None] * n  # (distance, hops, predecessor)
    best[source] = (0.0, 0, -1)
    done = np.zeros(n, dtype=bool)
    heap = [(0.0, 0, -1, source)]
    while heap:
        d, h, p, v = heapq.heappop(heap)
        if done[v] or best[v] != (d, h, p):
            continue
        done[v] = True
        if v == target:
            break
        for e in range(indptr[v], indptr[v + 1]):
            u = int(nbr[e])
            if done[u]:
                continue
            cand = (d + float(wts[e]), h + 1, v)
            if best[u] is None or cand < best[u]:
                best[u] = cand
                heapq.heappush(heap, (*cand, u))
    if not done[target]:
        return None
    path = [target]
    while path[-1] != source:
        entry = best[path[-1]]
        assert entry is not None
        path.append(entry[2])
    return path[::-1]


def path_score(path: Sequence[int] | None, labels: Sequence[Hashable] | np.ndarray) -> float:
    """Share of the path's interior vertices labelled like its endpoints (1 with no interior, 0 if no path)."""
    if path is None:
        return 0.0
    interior = path[1:-1]
    if not interior:
        return 1.0
    lab = as_labels(labels)
    return float(np.mean(lab[list(interior)] == lab[path[0]]))
