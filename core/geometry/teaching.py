"""Small helpers for the teaching page: the kNN graph of a 2-D toy, one shortest path with its score,
a default pair whose path leaves its class, and a pair taken apart for the step-through."""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from core.geometry.knn import Csr, knn_graph
from core.geometry.validation import as_feature_array, as_labels
from core.io.records import Record


def knn_csr(points: np.ndarray, k: int) -> Csr:
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
            old = best[u]
            if old is None or cand < old:
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


def leaving_pair(
    indptr: np.ndarray, nbr: np.ndarray, wts: np.ndarray, labels: Sequence[Hashable] | np.ndarray
) -> tuple[int, int] | None:
    """A same-class pair whose shortest path leaves its class the most (None if every path stays inside).

    Used to choose the Learn page's default pair: the lowest path score, then the most interior
    points, then the lowest indices. All-pairs Dijkstra comes from scipy; the returned pair's path is
    re-checked with :func:`shortest_path` (the engine's tie rule), so the page shows what it claims.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    lab = np.asarray(labels)
    n = len(indptr) - 1
    # scipy reads a stored 0 as "no edge": nudge zero weights (duplicate points) to the smallest float
    graph = csr_matrix((np.maximum(wts, np.finfo(float).tiny), nbr, indptr), shape=(n, n))
    _, pred = dijkstra(graph, directed=False, return_predecessors=True)
    best: tuple[float, int, int, int] | None = None
    for s in range(n):
        for t in range(n):
            if s == t or lab[s] != lab[t] or pred[s, t] < 0:
                continue
            interior = []
            v = int(pred[s, t])
            while v != s:
                interior.append(v)
                v = int(pred[s, v])
            if not interior:
                continue
            score = float(np.mean(lab[interior] == lab[s]))
            key = (score, -len(interior), s, t)
            if score < 1.0 and (best is None or key < best):
                best = key
    if best is None:
        return None
    s, t = best[2], best[3]
    return (s, t) if path_score(shortest_path(indptr, nbr, wts, s, t), lab) < 1.0 else None


@dataclass(frozen=True)
class PairWalkthrough(Record):
    """One pair's shortest path, taken apart for the step-through: interior points in and out of class."""

    start: int
    end: int
    label: str
    path: tuple[int, ...] | None  # None: the end is unreachable from the start
    inside: tuple[int, ...]  # interior points with the pair's label
    outside: tuple[int, ...]  # interior points of other classes

    @property
    def n_interior(self) -> int:
        """How many interior points the path has."""
        return len(self.inside) + len(self.outside)

    @property
    def score(self) -> float:
        """The pair's score: inside / interior (1 with no interior point, 0 if unreachable)."""
        if self.path is None:
            return 0.0
        return len(self.inside) / self.n_interior if self.n_interior else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {**asdict(self), "score": self.score}


def walk_pair(
    indptr: np.ndarray,
    nbr: np.ndarray,
    wts: np.ndarray,
    labels: Sequence[Hashable] | np.ndarray,
    start: int,
    end: int,
) -> PairWalkthrough:
    """The shortest path start -> end and its interior points split by the pair's class."""
    lab = np.asarray(labels)
    path = [int(start)] if start == end else shortest_path(indptr, nbr, wts, int(start), int(end))
    interior = [] if path is None else path[1:-1]
    return PairWalkthrough(
        start=int(start),
        end=int(end),
        label=str(lab[start]),
        path=None if path is None else tuple(path),
        inside=tuple(v for v in interior if lab[v] == lab[start]),
        outside=tuple(v for v in interior if lab[v] != lab[start]),
    )
