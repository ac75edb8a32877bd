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

    def undirected_edges(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
        return src[order], dst[order], w[order]

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The symmetrised graph as numpy CSR arrays (indptr int64, indices int32, weights float64)."""
        src, dst, w = self.undirected_edges()
        counts = torch.bincount(src, minlength=self.n_points)
        indptr = np.zeros(self.n_points + 1, dtype=np.int64)
        np.cumsum(counts.cpu().numpy(), out=indptr[1:])
        return indptr, dst.cpu().numpy().astype(np.int32), w.cpu().numpy().astype(np.float64)


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


@numba.njit(parallel=True, cache=True)
def _smallest_cpu(d2, m, out_val, out_idx):
    """Per row, the m smallest values (ascending) and their columns: one pass, a running worst slot."""
    for r in numba.prange(d2.shape[0]):
        vals = np.full(m, np.inf, dtype=np.float32)
        cols = np.zeros(m, dtype=np.int64)
        worst, slot = np.float32(np.inf), 0
        row = d2[r]
        for j in range(row.shape[0]):
            v = row[j]
            if v < worst:  # replace the current worst candidate, then find the new worst
                vals[slot], cols[slot] = v, j
                worst, slot = vals[0], 0
                for q in range(1, m):
                    if vals[q] > worst:
                        worst, slot = vals[q], q
        order = np.argsort(vals)
        for q in range(m):
            out_val[r, q], out_idx[r, q] = vals[order[q]], cols[order[q]]


def smallest_per_row(d2: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(d2, m, largest=False)`` (values ascending); a single-pass compiled loop on CPU."""
    if d2.device.type != "cpu":
        return torch.topk(d2, m, dim=1, largest=False, sorted=True)
    values = np.empty((d2.shape[0], m), dtype=np.float32)
    columns = np.empty((d2.shape[0], m), dtype=np.int64)
    _smallest_cpu(d2.numpy(), m, values, columns)
    return torch.from_numpy(values), torch.from_numpy(columns)


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
    xt = x32.T.contiguous()  # one transposed copy: BLAS streams it for every block
    slab = torch.empty((min(block, n), n), dtype=torch.float32, device=device)
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = torch.arange(start, stop, device=device)
        # ||b||^2 - 2<a, b>: the row's own ||a||^2 does not change its ordering, so it is added later
        d2 = torch.addmm(sq[None, :], x32[start:stop], xt, alpha=-2.0, out=slab[: stop - start])
        d2[torch.arange(stop - start, device=device), rows] = torch.inf
        approx, cand = smallest_per_row(d2, n_cand)
        exact = exact_distances(x64, rows, cand)
        idx, dist = _select_k(cand, exact, k)
        out_idx[start:stop], out_dist[start:stop] = idx, dist
        # Every point outside the candidates has approx >= approx[:, -1], so its exact squared distance
        # is at least approx[:, -1] - bound; if that exceeds the k-th exact one, nothing was missed.
        if n_cand < n - 1:
            last = approx[:, -1].double() + sq[rows].double()
            proven = last - bound[rows].double() > dist[:, -1] ** 2
            fallback.extend((rows[~proven]).tolist())
    del slab, xt
    chunk = max(1, (64 << 20) // max(1, 8 * d))
    for i in fallback:
        out_idx[i], out_dist[i] = _exhaustive_row(x64, i, k, chunk)
    return KnnGraph(out_idx, out_dist, n_fallback_rows=len(fallback))
