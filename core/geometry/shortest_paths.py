"""Shortest-path trees on the kNN graph and the path scores graph convexity needs.

Both engines compute, for each source s and each label set q, the sum (and the sum of squares) over the
class-mates t of s of the share of interior vertices on the shortest s -> t path that carry s's label. Paths are chosen by the same
rule on both: minimal total weight, then fewest edges, then at every vertex the lowest-index predecessor
among the optimal ones. Distances are float64 sums along the path, so both engines agree exactly on the
tree and to rounding on the sums.

- ``scores_numba``: one lexicographic Dijkstra per source, sources in parallel over CPU cores, stopping as
  soon as every class-mate of the source is settled.
- ``scores_torch``: batched over sources as dense (sources x N) tensors on any torch device (the GPU
  engine): Bellman-Ford min-relaxation of distances, then fewest-edge hop counts on the tight-edge
  subgraph, lowest-index predecessors, and interior counts propagated level by level.

Optional path traffic (both engines, off by default and then free): ``traffic`` (Q, 2, N) float64
accumulates, per label set, how often each vertex is an interior vertex of a scored path, split by
whether the vertex shares the source's label (``[q, 0]``) or not (``[q, 1]``: a bridge); each tree's
counts are multiplied by the source's ``source_weights[s, q]`` (default 1: plain counts, exact in float64;
n_c / m_c when m_c of a class's n_c sources were sampled, for unbiased totals). In a
shortest-path tree, v is interior to the path s -> t exactly when t is a strict descendant of v, so one
pass over the settled vertices in reverse settling order counts every path at once (no path walks).

``path_tree``: one full tree (distances, hop counts, predecessors) from one source, same rule, for
path queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from core.geometry.knn import Csr

UNREACHED = np.iinfo(np.int32).max


@numba.njit(cache=True, inline="always")
def _less(d1: float, k1: int, d2: float, k2: int) -> bool:
    """Heap order: distance, then the packed (hops << 32 | vertex) key."""
    return d1 < d2 or (d1 == d2 and k1 < k2)


@numba.njit(cache=True)
def _push(hd, hk, size, d, key):
    """Insert into the binary heap held in two arrays; returns the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if not _less(d, key, hd[parent], hk[parent]):
            break
        hd[i] = hd[parent]
        hk[i] = hk[parent]
        i = parent
    hd[i] = d
    hk[i] = key
    return size + 1


@numba.njit(cache=True)
def _pop(hd, hk, size):
    """Remove the smallest entry; returns (its key, new size)."""
    top = hk[0]
    size -= 1
    d, key = hd[size], hk[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _less(hd[child + 1], hk[child + 1], hd[child], hk[child]):
            child += 1
        if not _less(hd[child], hk[child], d, key):
            break
        hd[i] = hd[child]
        hk[i] = hk[child]
        i = child
    hd[i] = d
    hk[i] = key
    return top, size


@numba.njit(cache=True, inline="always")
def _relax(v, indptr, nbr, wts, dist, hops, pred, done, hd, hk, size, touched, n_touched):
    """Relax the edges of the settled vertex ``v`` by the engine's rule (least weight, then fewest
    edges, then the lowest-index predecessor); first-reached vertices go to ``touched``.

    Returns the new heap size and touched count.
    """
    dv = dist[v]
    nh = hops[v] + 1
    for e in range(indptr[v], indptr[v + 1]):
        u = nbr[e]
        if done[u]:
            continue
        nd = dv + wts[e]
        du = dist[u]
        if nd < du or (nd == du and nh < hops[u]):
            if du == np.inf:
                touched[n_touched] = u
                n_touched += 1
            dist[u] = nd
            hops[u] = nh
            pred[u] = v
            size = _push(hd, hk, size, nd, (np.int64(nh) << 32) | u)
        elif nd == du and nh == hops[u] and v < pred[u]:
            pred[u] = v
    return size, n_touched


@numba.njit(cache=True)
def _one_source(indptr, nbr, wts, s, labs, active_row, out, row, pos, work, traffic, weight_row):
    """Lexicographic Dijkstra from ``s``; adds class-mates' path scores (and squares) into ``out``.

    ``labs`` is (N, Q): a vertex's labels lie together, and only the label sets active for ``s`` are
    visited per settled vertex, so many label sets (e.g. permutations) cost little per tree. With
    ``row`` of length > 0, each class-mate t's score is also stored at ``row[pos[q, t]]``; with
    ``traffic`` of length N > 0, the interior counts are added there (see the module docstring).

    ``work`` holds the per-thread buffers, all reset to their initial state on return.
    """
    dist, hops, pred, done, inner, touched, hd, hk, order, down, act, own = work
    n = indptr.shape[0] - 1
    n_act = 0
    for q in range(labs.shape[1]):
        if active_row[q]:
            act[n_act] = q
            own[n_act] = labs[s, q]
            n_act += 1
    record = row.shape[0] > 0
    count = traffic.shape[2] > 0
    n_settled = 0
    remaining = 0
    for v in range(n):
        if v != s:
            for j in range(n_act):
                if labs[v, act[j]] == own[j]:
                    remaining += 1
                    break
    dist[s] = 0.0
    hops[s] = 0
    touched[0] = s
    n_touched = 1
    for j in range(n_act):
        inner[s, j] = 0
    size = _push(hd, hk, 0, 0.0, np.int64(s))
    while size > 0 and remaining > 0:
        key, size = _pop(hd, hk, size)
        v = key & 0xFFFFFFFF
        if done[v]:
            continue
        done[v] = True
        if count:
            order[n_settled] = v
            n_settled += 1
        h = hops[v]
        if v != s:
            p = pred[v]
            is_target = False
            for j in range(n_act):
                q = act[j]
                same = labs[p, q] == own[j] and p != s
                inner[v, j] = inner[p, j] + (1 if same else 0)  # same-label interior vertices
                if labs[v, q] == own[j]:
                    is_target = True
                    score = 1.0 if h == 1 else inner[v, j] / (h - 1)
                    out[q, 0] += score
                    out[q, 1] += score * score
                    if record:
                        row[pos[q, v]] = score
            if is_target:
                remaining -= 1
        size, n_touched = _relax(
            v, indptr, nbr, wts, dist, hops, pred, done, hd, hk, size, touched, n_touched
        )
    if count:
        _add_traffic(s, labs, active_row, pred, order, n_settled, down, traffic, weight_row)
    for i in range(n_touched):
        u = touched[i]
        dist[u] = np.inf
        hops[u] = UNREACHED
        pred[u] = -1
        done[u] = False


@numba.njit(cache=True)
def _add_traffic(s, labs, active_row, pred, order, n_settled, down, traffic, weight_row):
    """Add, per label set, each settled vertex's count of class-mate targets below it in the tree.

    ``order`` holds the settled vertices in settling order (``order[0] = s``); a vertex settles after
    its predecessor, so in reverse order every vertex's subtree is complete before it is passed up.
    """
    for q in range(labs.shape[1]):
        if not active_row[q]:
            continue
        cs = labs[s, q]
        weight = weight_row[q]
        for i in range(n_settled - 1, 0, -1):
            v = order[i]
            below = down[v]
            if below:
                traffic[q, 0 if labs[v, q] == cs else 1, v] += below * weight
            down[pred[v]] += below + (1 if labs[v, q] == cs else 0)
        for i in range(n_settled):
            down[order[i]] = 0


@numba.njit(parallel=True, cache=True)
def _scores_parallel(
    indptr, nbr, wts, sources, labs, active, pos, width, n_workers, with_traffic, source_weights
):
    """Run ``_one_source`` for every source; each worker reuses one set of buffers (and traffic)."""
    n = indptr.shape[0] - 1
    n_src = sources.shape[0]
    n_sets = labs.shape[1]
    sums = np.zeros((n_src, n_sets, 2), dtype=np.float64)
    rows = np.zeros((n_src, width), dtype=np.float32)
    per_worker = np.zeros((n_workers, n_sets, 2, n if with_traffic else 0), dtype=np.float64)
    cap = indptr[n] + 1
    for worker in numba.prange(n_workers):
        work = (
            np.full(n, np.inf),
            np.full(n, UNREACHED, dtype=np.int32),
            np.full(n, -1, dtype=np.int32),
            np.zeros(n, dtype=np.bool_),
            np.zeros((n, n_sets), dtype=np.int32),
            np.empty(n, dtype=np.int32),
            np.empty(cap, dtype=np.float64),
            np.empty(cap, dtype=np.int64),
            np.empty(n if with_traffic else 0, dtype=np.int32),
            np.zeros(n if with_traffic else 0, dtype=np.int64),
            np.empty(n_sets, dtype=np.int64),
            np.empty(n_sets, dtype=np.int32),
        )
        for i in range(worker, n_src, n_workers):
            _one_source(
                indptr,
                nbr,
                wts,
                sources[i],
                labs,
                active[i],
                sums[i],
                rows[i],
                pos,
                work,
                per_worker[worker],
                source_weights[i],
            )
    return sums, rows, per_worker.sum(axis=0)


def scores_numba(
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    sources: np.ndarray,
    codes: np.ndarray,
    active: np.ndarray,
    pos: np.ndarray | None = None,
    width: int = 0,
    traffic: np.ndarray | None = None,
    source_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-source, per-label-set sums of pair scores and squares (S, Q, 2), and rows, on CPU cores.

    ``codes`` (Q, N) holds integer labels per label set; ``active`` (S, Q) says for which label sets a
    source was sampled (only those sets' class-mates are scored and awaited). With ``width`` > 0, the
    rows (S, width) float32 hold each class-mate t's score at column ``pos[q, t]`` (label sets hold
    disjoint column ranges, each wide enough for its largest class).
    ``traffic`` (Q, 2, N) float64, when given, receives the interior counts, each source's weighted by
    ``source_weights`` (S, Q) (default 1; module docstring).
    """
    if pos is None:
        pos = np.zeros((codes.shape[0], codes.shape[1]), dtype=np.int32)
    if traffic is not None and traffic.shape != (codes.shape[0], 2, codes.shape[1]):
        raise ValueError(
            f"traffic must have shape (Q, 2, N) = {(codes.shape[0], 2, codes.shape[1])}"
        )
    sums, rows, counted = _scores_parallel(
        np.ascontiguousarray(indptr, dtype=np.int64),
        np.ascontiguousarray(indices, dtype=np.int32),
        np.ascontiguousarray(weights, dtype=np.float64),
        np.ascontiguousarray(sources, dtype=np.int64),
        np.ascontiguousarray(codes.T, dtype=np.int32),  # (N, Q): a vertex's labels together
        np.ascontiguousarray(active, dtype=np.bool_),
        np.ascontiguousarray(pos, dtype=np.int32),
        int(width),
        4 * numba.get_num_threads(),  # several workers per thread balance uneven source costs
        traffic is not None,
        np.ones(active.shape)
        if source_weights is None
        else np.ascontiguousarray(source_weights, np.float64),
    )
    if traffic is not None:
        traffic += counted
    return sums, rows


def _relax_min(values: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, add: torch.Tensor):
    """One round of ``values[:, dst] = min(values[:, dst], values[:, src] + add)``; returns (new, changed)."""
    cand = values[:, src] + add
    new = values.scatter_reduce(1, dst.expand_as(cand), cand, reduce="amin", include_self=True)
    return new, bool((new != values).any())


def _scores_torch_chunk(
    src: torch.Tensor,
    dst: torch.Tensor,
    w: torch.Tensor,
    n: int,
    sources: torch.Tensor,
    codes: torch.Tensor,
    active: torch.Tensor,
    pos: torch.Tensor,
    width: int,
    traffic: torch.Tensor | None = None,
    source_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``scores_torch`` for one chunk of sources held as dense (S, N) tensors (traffic added in place)."""
    s = sources.shape[0]
    device = w.device
    rows = torch.arange(s, device=device)
    dist = torch.full((s, n), torch.inf, dtype=torch.float64, device=device)
    dist[rows, sources] = 0.0
    changed = True
    while changed:  # Bellman-Ford: at most (max edges on a shortest path + 1) rounds
        dist, changed = _relax_min(dist, src, dst, w)
    tight = (dist[:, src] + w == dist[:, dst]) & torch.isfinite(dist[:, dst])
    big = torch.iinfo(torch.int64).max // 4
    hops = torch.full((s, n), big, dtype=torch.int64, device=device)
    hops[rows, sources] = 0
    step = torch.where(tight, 1, big)
    changed = True
    while changed:  # fewest edges among the minimal-weight paths
        hops, changed = _relax_min(hops, src, dst, step)
    on_best = tight & (hops[:, src] + 1 == hops[:, dst])
    pred = torch.full((s, n), n, dtype=torch.int64, device=device)
    pred = pred.scatter_reduce(
        1, dst.expand(s, -1), torch.where(on_best, src, n), reduce="amin", include_self=True
    )
    reached = hops < big
    pred_safe = torch.where(reached & (pred < n), pred, sources[:, None])
    not_source = torch.ones((s, n), dtype=torch.bool, device=device)
    not_source[rows, sources] = False
    max_hops = int(hops[reached].max())
    hops_f = hops.to(torch.float64)
    sums = []
    row = torch.zeros((s, width + 1), dtype=torch.float32, device=device)
    for q in range(codes.shape[0]):
        same = codes[q][None, :] == codes[q][sources][:, None]  # (S, N) class-mates of each source
        mark = (same & not_source).to(torch.int64)
        inner = torch.zeros((s, n), dtype=torch.int64, device=device)
        for _ in range(max_hops):  # after round r, paths of up to r + 1 edges are counted
            inner = inner.gather(1, pred_safe) + mark.gather(1, pred_safe)
        inner = torch.where(hops <= 1, 0, inner)
        score = torch.where(hops == 1, 1.0, inner.to(torch.float64) / (hops_f - 1).clamp(min=1))
        score = torch.where(reached & same & not_source, score, 0.0)
        pair_sums = torch.stack([score.sum(dim=1), (score * score).sum(dim=1)], dim=1)
        sums.append(pair_sums * active[:, q, None])
        # each class-mate's score at its column (sets' columns are disjoint); the rest: a dropped one
        if width:
            slot = torch.where(same & not_source & (pos[q] >= 0)[None, :], pos[q][None, :], width)
            row.scatter_(1, slot, (score * active[:, q, None]).to(torch.float32))
        if traffic is not None:
            target = (reached & same & not_source & (active[:, q, None] > 0)).to(torch.int64)
            w_q = active[:, q] if source_weights is None else source_weights[:, q]
            _add_traffic_torch(traffic[q], target, same, hops, pred_safe, reached, max_hops, w_q)
    return torch.stack(sums, dim=1), row[:, :width]


def _add_traffic_torch(
    out: torch.Tensor,
    target: torch.Tensor,
    same: torch.Tensor,
    hops: torch.Tensor,
    pred: torch.Tensor,
    reached: torch.Tensor,
    max_hops: int,
    weight: torch.Tensor,
) -> None:
    """Targets below each vertex, passed up the trees level by level from the deepest; into ``out`` (2, N)."""
    down = torch.zeros_like(target)
    for level in range(max_hops, 0, -1):
        at = (hops == level) & reached
        down.scatter_add_(1, pred, torch.where(at, down + target, 0))
    interior = torch.where(reached & (hops >= 1), down, 0).to(torch.float64) * weight[:, None]
    out[0] += torch.where(same, interior, 0).sum(dim=0)
    out[1] += torch.where(same, 0, interior).sum(dim=0)


def default_source_chunk(n_edges: int, device: torch.device) -> int:
    """Sources per batch so the (sources x edges) float64 temporaries stay near 1 GB (CPU) or 8 GB (GPU)."""
    budget = (8 << 30) if device.type == "cuda" else (1 << 30)
    return int(max(1, budget // max(1, 8 * 4 * n_edges)))


def scores_torch(
    src: torch.Tensor,
    dst: torch.Tensor,
    weights: torch.Tensor,
    n: int,
    sources: torch.Tensor,
    codes: torch.Tensor,
    active: torch.Tensor,
    pos: torch.Tensor | None = None,
    width: int = 0,
    *,
    chunk: int | None = None,
    traffic: torch.Tensor | None = None,
    source_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-source, per-label-set sums of pair scores and squares (S, Q, 2) and rows (S, width).

    Same contract as ``scores_numba``, batched on the edges' device; the graph is given as symmetric
    directed edge lists. On CUDA out-of-memory the source batch is halved and retried (a chunk's
    traffic is added only once the chunk has succeeded).
    """
    if pos is None:
        pos = torch.zeros_like(codes)
    chunk = chunk or default_source_chunk(src.shape[0], src.device)
    sums, rows = [], []
    start = 0
    while start < sources.shape[0]:
        stop = min(sources.shape[0], start + chunk)
        counted = None if traffic is None else torch.zeros_like(traffic)
        try:
            part = _scores_torch_chunk(
                src,
                dst,
                weights,
                n,
                sources[start:stop],
                codes,
                active[start:stop],
                pos,
                width,
                counted,
                None if source_weights is None else source_weights[start:stop],
            )
        except torch.OutOfMemoryError:
            if chunk == 1:
                raise
            chunk = max(1, chunk // 2)
            torch.cuda.empty_cache()
            continue
        if traffic is not None and counted is not None:  # both or neither
            traffic += counted
        sums.append(part[0])
        rows.append(part[1])
        start = stop
    if not sums:
        q = codes.shape[0]
        return torch.zeros((0, q, 2), dtype=torch.float64), torch.zeros((0, width))
    return torch.cat(sums), torch.cat(rows)


@numba.njit(cache=True)
def _tree(indptr, nbr, wts, s):
    """The whole lexicographic Dijkstra tree from ``s``: distances, hop counts, predecessors."""
    n = indptr.shape[0] - 1
    dist = np.full(n, np.inf)
    hops = np.full(n, UNREACHED, dtype=np.int32)
    pred = np.full(n, -1, dtype=np.int32)
    done = np.zeros(n, dtype=np.bool_)
    cap = indptr[n] + 1
    hd = np.empty(cap, dtype=np.float64)
    hk = np.empty(cap, dtype=np.int64)
    touched = np.empty(n, dtype=np.int32)
    n_touched = 0
    dist[s] = 0.0
    hops[s] = 0
    size = _push(hd, hk, 0, 0.0, np.int64(s))
    while size > 0:
        key, size = _pop(hd, hk, size)
        v = key & 0xFFFFFFFF
        if done[v]:
            continue
        done[v] = True
        size, n_touched = _relax(
            v, indptr, nbr, wts, dist, hops, pred, done, hd, hk, size, touched, n_touched
        )
    return dist, hops, pred


@dataclass(frozen=True)
class PathTree:
    """The shortest-path tree from one source: per vertex its distance, hop count and predecessor
    (unreached: distance inf, hops ``UNREACHED``, predecessor -1)."""

    distance: np.ndarray  # (N,) float64
    hops: np.ndarray  # (N,) int64
    predecessor: np.ndarray  # (N,) int64


def path_tree(csr: Csr, source: int) -> PathTree:
    """The shortest-path tree from ``source`` over a symmetrised kNN graph.

    The same paths the engines score: least weight, then fewest edges, then the lowest-index
    predecessor.
    """
    n = csr.n_points
    if not 0 <= int(source) < n:
        raise IndexError(f"source must lie in 0..{n - 1}, got {source}")
    dist, hops, pred = _tree(
        np.ascontiguousarray(csr.indptr, dtype=np.int64),
        np.ascontiguousarray(csr.indices, dtype=np.int32),
        np.ascontiguousarray(csr.weights, dtype=np.float64),
        int(source),
    )
    return PathTree(dist, hops, pred)


def tree_path(pred: np.ndarray, source: int, target: int) -> list[int] | None:
    """The vertices of the tree path source -> target (both included), or None if unreached."""
    if target != source and pred[target] < 0:
        return None
    path = [int(target)]
    while path[-1] != source:
        path.append(int(pred[path[-1]]))
    return path[::-1]
