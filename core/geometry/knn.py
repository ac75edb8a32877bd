"""Exact k-nearest-neighbour graphs, blocked so memory stays O(N x block) on CPU and GPU.

Candidates come from a float32 matrix product (fast on BLAS and tensor cores); their distances are then
recomputed exactly in float64 from coordinate differences, and a per-row error bound proves that no true
neighbour was missed (rows that cannot be proven are recomputed exhaustively). The result is therefore the
exact kNN graph, with ties broken by the lower point index, on every device.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba
import numpy as np
import torch

from core.errors import ConvexityInputError
from core.geometry.validation import as_features, power_of_two_scaled, unscaled_distances

FLOAT32_EPS = float(np.finfo(np.float32).eps)
CPU_TILE = 2048  # rows and columns per tile of the symmetric product on CPU (16 MB of float32)


@dataclass(frozen=True)
class Edges:
    """Directed edge lists of a symmetrised kNN graph, sorted by (src, dst); one device."""

    src: torch.Tensor  # (E,) int64
    dst: torch.Tensor  # (E,) int64
    weight: torch.Tensor  # (E,) float64, exact Euclidean distances


@dataclass(frozen=True)
class Csr:
    """A symmetrised kNN graph as numpy CSR arrays: ``indices[indptr[i]:indptr[i+1]]`` are point i's
    neighbours, ``weights`` the edges' exact distances."""

    indptr: np.ndarray  # (N+1,) int64
    indices: np.ndarray  # (E,) int32
    weights: np.ndarray  # (E,) float64

    @property
    def n_points(self) -> int:
        """Number of points in the graph."""
        return len(self.indptr) - 1


@dataclass(frozen=True)
class KnnGraph:
    """Each point's k nearest other points, sorted by (distance, index); tensors live on one device."""

    indices: torch.Tensor  # (N, k) int64
    distances: torch.Tensor  # (N, k) float64, exact Euclidean distances
    n_fallback_rows: int = (
        0  # rows whose candidates could not be proven complete and were redone exactly
    )

    @property
    def n_points(self) -> int:
        """Number of points in the graph."""
        return int(self.indices.shape[0])

    def undirected_edges(self) -> Edges:
        """Directed edge lists (src, dst, weight) of the symmetrised graph, sorted by (src, dst).

        An edge exists if either endpoint lists the other; both directions carry the same exact distance.
        Zero-weight edges (duplicate points) are kept: they are real edges.
        """
        n, k = self.indices.shape
        rows = torch.arange(n, device=self.indices.device).repeat_interleave(k)
        cols = self.indices.reshape(-1)
        weights = self.distances.reshape(-1)
        src = torch.cat([rows, cols])
        dst = torch.cat([cols, rows])
        w = torch.cat([weights, weights])
        key = src * n + dst
        key, order = torch.sort(key, stable=True)
        keep = torch.ones_like(key, dtype=torch.bool)
        keep[1:] = key[1:] != key[:-1]
        order = order[keep]
        return Edges(src[order], dst[order], w[order])

    def csr(self) -> Csr:
        """The symmetrised graph as numpy CSR arrays (indptr int64, indices int32, weights float64)."""
        edges = self.undirected_edges()
        counts = torch.bincount(edges.src, minlength=self.n_points)
        indptr = np.zeros(self.n_points + 1, dtype=np.int64)
        np.cumsum(counts.cpu().numpy(), out=indptr[1:])
        return Csr(
            indptr,
            edges.dst.cpu().numpy().astype(np.int32),
            edges.weight.cpu().numpy().astype(np.float64),
        )


@numba.njit(parallel=True, cache=True)
def _exact_distances_cpu(x, rows, cols, out):
    """Sequential float64 sums of squared differences, rows in parallel."""
    for a in numba.prange(rows.shape[0]):
        i = rows[a]
        for b in range(cols.shape[1]):
            j = cols[a, b]
            total = 0.0
            for t in range(x.shape[1]):
                diff = x[j, t] - x[i, t]
                total += diff * diff
            out[a, b] = np.sqrt(total)


def exact_distances(x64: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Float64 Euclidean distances from points ``rows`` (B,) to points ``cols`` (B, M), by differences.

    Differences (not the norm expansion) make duplicates exactly 0 and distances exactly symmetric.
    On CPU a compiled loop avoids the (B, M, D) temporary; on GPU the temporary is cheap.
    """
    if x64.device.type != "cpu":
        return torch.linalg.vector_norm(x64[cols] - x64[rows].unsqueeze(1), dim=-1)
    out = np.empty(tuple(cols.shape), dtype=np.float64)
    _exact_distances_cpu(x64.numpy(), rows.numpy(), cols.numpy(), out)
    return torch.from_numpy(out)


@numba.njit(cache=True, inline="always")
def _worst(v_row):
    """(largest value, its slot) of one row's kept candidates."""
    worst, slot = v_row[0], 0
    for q in range(1, v_row.shape[0]):
        if v_row[q] > worst:
            worst, slot = v_row[q], q
    return worst, slot


@numba.njit(parallel=True, cache=True)
def _offer(tile, row0, col0, sq, vals, cols):
    """Offer ``sq[c] - 2 <x_r, x_c>`` for the tile's rows r = row0 + a, columns c = col0 + b.

    Each row keeps its ``m`` smallest values so far in ``vals``/``cols`` (unsorted; a value replaces the
    row's current worst only when strictly smaller), so every value never kept is >= the final worst.
    """
    for a in numba.prange(tile.shape[0]):
        r = row0 + a
        v_row, c_row = vals[r], cols[r]
        worst, slot = _worst(v_row)
        for b in range(tile.shape[1]):
            c = col0 + b
            v = sq[c] - 2.0 * tile[a, b]
            if v < worst and c != r:
                v_row[slot], c_row[slot] = v, c
                worst, slot = _worst(v_row)


def _candidates_cpu(
    x32: torch.Tensor, sq: torch.Tensor, m: int, tile: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's m smallest ``||b||^2 - 2 <a, b>`` (ascending) and their columns, on CPU.

    The product is symmetric, so only tiles on and above the diagonal are multiplied (half a GEMM) and
    each tile is offered to its rows and, transposed, to its columns' rows.
    """
    n = x32.shape[0]
    vals = np.full((n, m), np.inf, dtype=np.float32)
    cols = np.zeros((n, m), dtype=np.int64)
    sq_np = sq.numpy()
    for i0 in range(0, n, tile):
        i1 = min(n, i0 + tile)
        for j0 in range(i0, n, tile):
            j1 = min(n, j0 + tile)
            g = torch.mm(x32[i0:i1], x32[j0:j1].T).numpy()
            _offer(g, i0, j0, sq_np, vals, cols)
            if j0 != i0:
                _offer(np.ascontiguousarray(g.T), j0, i0, sq_np, vals, cols)
    order = np.argsort(vals, axis=1, kind="stable")
    return (
        torch.from_numpy(np.take_along_axis(vals, order, axis=1)),
        torch.from_numpy(np.take_along_axis(cols, order, axis=1)),
    )


def _select_k(cand: torch.Tensor, dist: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest of each row by (distance, index): ties go to the lower point index."""
    order = torch.argsort(cand, dim=1)
    cand, dist = cand.gather(1, order), dist.gather(1, order)
    order = torch.sort(dist, dim=1, stable=True).indices[:, :k]
    return cand.gather(1, order), dist.gather(1, order)


def _exhaustive_row(
    x64: torch.Tensor, i: int, k: int, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k neighbours of point ``i`` from float64 differences to every point (the proof's fallback)."""
    n = x64.shape[0]
    row = torch.tensor([i], device=x64.device)
    parts = [
        exact_distances(x64, row, torch.arange(s, min(n, s + chunk), device=x64.device)[None])[0]
        for s in range(0, n, chunk)
    ]
    dist = torch.cat(parts)
    dist[i] = torch.inf
    cand = torch.arange(n, device=x64.device)[None]
    idx, d = _select_k(cand, dist[None], k)
    return idx[0], d[0]


def default_block_size(n: int, device: torch.device) -> int:
    """Rows per block so one (block x N) float32 distance slab stays near 96 MB (CPU) or 2 GB (GPU)."""
    budget = (2 << 30) if device.type == "cuda" else (96 << 20)
    return int(max(64, min(n, budget // max(1, 4 * n))))


def knn_graph(
    features: torch.Tensor, k: int, *, block_size: int | None = None, extra: int | None = None
) -> KnnGraph:
    """Exact kNN graph of ``features`` (N, D) on the tensor's device; a point is not its own neighbour."""
    features = as_features(features)
    scaled, exponent = power_of_two_scaled(features)  # exact: see core.geometry.validation
    if exponent:
        graph = knn_graph(scaled, k, block_size=block_size, extra=extra)
        return replace(graph, distances=unscaled_distances(graph.distances, exponent))
    n, d = features.shape
    if not 1 <= k < n:
        raise ConvexityInputError(f"k must be between 1 and N-1 = {n - 1}, got {k}")
    device = features.device
    x64 = features.to(torch.float64).contiguous()  # exact distances use the raw coordinates
    centred = x64 - x64.mean(dim=0, keepdim=True)  # centring shrinks float32 rounding
    x32 = centred.to(torch.float32)
    del centred
    sq = (x32 * x32).sum(dim=1)
    # Worst-case float32 error of ||a||^2 + ||b||^2 - 2<a,b>, rounding of the inputs included, is below
    # (d + 8) eps (|a|^2 + |b|^2); doubled for margin.
    bound = 2.0 * (d + 8) * FLOAT32_EPS * (sq + sq.max())
    n_cand = min(n - 1, k + (extra if extra is not None else max(k, 8)))
    block = block_size or default_block_size(n, device)
    out_idx = torch.empty((n, k), dtype=torch.int64, device=device)
    out_dist = torch.empty((n, k), dtype=torch.float64, device=device)
    fallback: list[int] = []
    if device.type == "cpu":
        approx_all, cand_all = _candidates_cpu(x32, sq, n_cand, CPU_TILE)
    else:
        xt = x32.T.contiguous()  # one transposed copy: the product streams it for every block
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = torch.arange(start, stop, device=device)
        if device.type == "cpu":
            approx, cand = approx_all[start:stop], cand_all[start:stop]
        else:
            # ||b||^2 - 2<a, b>: the row's own ||a||^2 does not change its ordering, added later
            d2 = torch.addmm(sq[None, :], x32[start:stop], xt, alpha=-2.0)
            d2[torch.arange(stop - start, device=device), rows] = torch.inf
            approx, cand = torch.topk(d2, n_cand, dim=1, largest=False, sorted=True)
            del d2
        exact = exact_distances(x64, rows, cand)
        idx, dist = _select_k(cand, exact, k)
        out_idx[start:stop], out_dist[start:stop] = idx, dist
        # Every point outside the candidates has approx >= approx[:, -1], so its exact squared distance
        # is at least approx[:, -1] - bound; if that exceeds the k-th exact one, nothing was missed.
        if n_cand < n - 1:
            last = approx[:, -1].double() + sq[rows].double()
            proven = last - bound[rows].double() > dist[:, -1] ** 2
            fallback.extend((rows[~proven]).tolist())
    chunk = max(1, (64 << 20) // max(1, 8 * d))
    for i in fallback:
        out_idx[i], out_dist[i] = _exhaustive_row(x64, i, k, chunk)
    return KnnGraph(out_idx, out_dist, n_fallback_rows=len(fallback))
