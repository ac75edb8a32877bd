"""A deliberately simple, obviously correct graph-convexity reference: per-pair Dijkstra, no cleverness.

It follows docs/method.md literally and is used only to check the fast engine.
"""

from __future__ import annotations

import heapq
import math

import numpy as np


def knn_adjacency(points: np.ndarray, k: int) -> list[dict[int, float]]:
    """Undirected kNN graph as adjacency dicts: neighbours by (distance, index), self excluded."""
    n = len(points)
    dist = [
        [math.sqrt(float(((points[i] - points[j]) ** 2).sum())) for j in range(n)] for i in range(n)
    ]
    adj: list[dict[int, float]] = [{} for _ in range(n)]
    for i in range(n):
        nearest = sorted((dist[i][j], j) for j in range(n) if j != i)[:k]
        for d, j in nearest:
            adj[i][j] = d
            adj[j][i] = d
    return adj


def shortest_path(adj: list[dict[int, float]], s: int, t: int) -> list[int] | None:
    """Minimal-weight path s -> t; ties: fewest edges, then lowest-index predecessor at each step."""
    best = {s: (0.0, 0)}
    heap = [(0.0, 0, s)]
    done = set()
    while heap:
        d, h, v = heapq.heappop(heap)
        if v in done:
            continue
        done.add(v)
        for u, w in adj[v].items():
            key = (d + w, h + 1)
            if u not in best or key < best[u]:
                best[u] = key
                heapq.heappush(heap, (key[0], key[1], u))
    if t not in best:
        return None
    path = [t]
    while path[-1] != s:
        v = path[-1]
        preds = [
            u
            for u, w in adj[v].items()
            if u in best and (best[u][0] + w, best[u][1] + 1) == best[v]
        ]
        path.append(min(preds))
    return path[::-1]


def pair_score(path: list[int] | None, labels: list, c) -> float:
    """Share of interior vertices labelled c; 1 with no interior vertex, 0 when unreachable."""
    if path is None:
        return 0.0
    interior = path[1:-1]
    if not interior:
        return 1.0
    return sum(labels[v] == c for v in interior) / len(interior)


def reference_convexity(points, labels, k: int) -> tuple[float, dict, dict]:
    """Exhaustive layer score, per-class means and per-class pair scores (classes under two points excluded)."""
    points = np.asarray(points, dtype=np.float64)
    labels = list(labels)
    adj = knn_adjacency(points, k)
    per_class, pair_scores = {}, {}
    for c in dict.fromkeys(labels):
        members = [i for i, y in enumerate(labels) if y == c]
        if len(members) < 2:
            continue
        scores = [
            pair_score(shortest_path(adj, s, t), labels, c)
            for s in members
            for t in members
            if s != t
        ]
        per_class[c] = sum(scores) / len(scores)
        pair_scores[c] = scores
    return sum(per_class.values()) / len(per_class), per_class, pair_scores


def reference_diagnostics(points, labels, k: int) -> dict:
    """Per-clip convexity (as source), path traffic, purity and class components, one path at a time.

    ``inside[v]``/``bridge[v]``: how many within-class shortest paths of v's own / other classes have
    v as an interior vertex; components by flood fill of the class-induced kNN subgraph.
    """
    points = np.asarray(points, dtype=np.float64)
    labels = list(labels)
    n = len(labels)
    adj = knn_adjacency(points, k)
    convexity = [math.nan] * n
    inside, bridge = [0] * n, [0] * n
    for s in range(n):
        mates = [t for t in range(n) if t != s and labels[t] == labels[s]]
        if not mates:
            continue
        scores = []
        for t in mates:
            path = shortest_path(adj, s, t)
            scores.append(pair_score(path, labels, labels[s]))
            for v in (path or [])[1:-1]:
                if labels[v] == labels[s]:
                    inside[v] += 1
                else:
                    bridge[v] += 1
        convexity[s] = sum(scores) / len(scores)
    purity = []
    for i in range(n):
        dist = [
            (math.sqrt(float(((points[i] - points[j]) ** 2).sum())), j) for j in range(n) if j != i
        ]
        nearest = [j for _, j in sorted(dist)[:k]]
        purity.append(sum(labels[j] == labels[i] for j in nearest) / k)
    components = {}
    for c in dict.fromkeys(labels):
        left = {i for i in range(n) if labels[i] == c}
        pieces = []
        while left:
            stack = [left.pop()]
            size = 1
            while stack:
                v = stack.pop()
                for u in adj[v]:
                    if u in left:
                        left.remove(u)
                        stack.append(u)
                        size += 1
            pieces.append(size)
        components[c] = (len(pieces), max(pieces))
    return {
        "convexity": convexity,
        "inside": inside,
        "bridge": bridge,
        "purity": purity,
        "components": components,
    }
