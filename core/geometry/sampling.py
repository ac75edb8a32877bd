"""Which points get a shortest-path tree, and the stratified estimate of a class score built from them.

A tree from source s scores all n - 1 class-mates of s, so the sampling unit is the source and a class
score is a mean of per-source means. Per-source means vary a lot and depend strongly on how "pure" the
source's neighbourhood is, so sources are drawn by stratified random sampling: each class is cut into up to
``MAX_STRATA`` equal-size strata by kNN label purity (share of the point's k neighbours with its label; ties
by point index, so strata never depend on the random draw), and every stratum gets a share of the sources
proportional to its size, drawn uniformly without replacement (lowest ranks of a seeded random permutation
shared by all label sets, so they share trees).

Estimate: sum_h W_h mean_h, W_h = N_h / n, exactly unbiased for the exhaustive class mean; with every point
chosen it *is* the exhaustive mean. Standard error: sqrt(sum_h W_h^2 (1 - m_h/N_h) s_h^2 / m_h), the
textbook stratified-sampling formula (Cochran, Sampling Techniques, ch. 5), s_h^2 the sample variance of
the per-source means in stratum h.

Precision targets (``main_stage``): a pilot sample sizes the main sample so that the standard error of
the *layer* score meets a target: either a given SE, or that of P pairs per class drawn uniformly (the
authors' scheme). Sources go where per-source means vary most (Neyman allocation across classes,
``neyman_totals``), sized for an upper confidence bound of the pilot's pooled variance. The main sample
is drawn with a second, independent permutation, so its size does not depend on its own values and the
estimate stays unbiased with a valid standard error; pilot trees that the main sample also needs are
reused. Should the main sample miss a given SE, it is topped up from the same permutation (sized from its
own estimates: a sequential step whose bias is of smaller order than the SE, and is tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

MAX_STRATA = 8
SHRINK = 0.5  # weight of a class's own pilot variance in the allocation (the rest: the pooled one)
MIN_PER_STRATUM = 4  # first-stage sources per stratum: enough for a usable variance estimate


@dataclass(frozen=True)
class Design:
    """A layer's sampling design for all label sets: each point's stratum and the chosen sources."""

    strata: np.ndarray  # (N, Q) int32: stratum of the point within its class, per label set
    chosen: np.ndarray  # (N, Q) bool: point is a source for label set q


def knn_purity(codes: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """(N, Q) share of each point's k nearest neighbours that share its label, per label set."""
    return np.stack([(c[neighbours] == c[:, None]).mean(axis=1) for c in codes], axis=1)


def first_stage_size(n: int, max_pairs: int | None, minimum: int = 2) -> int:
    """Sources for a class of n points: enough for ``max_pairs`` pairs (at least ``minimum``), or all."""
    return n if max_pairs is None else min(n, max(minimum, math.ceil(max_pairs / (n - 1))))


def _allocate(groups: list[np.ndarray], total: int, current: list[int]) -> list[int]:
    """Proportional allocation of ``total`` sources over strata, never below ``current`` or the minimum."""
    n = sum(len(g) for g in groups)
    return [
        min(len(g), max(cur, MIN_PER_STRATUM, math.ceil(total * len(g) / n)))
        for g, cur in zip(groups, current, strict=True)
    ]


def _strata_groups(design: Design, q: int, members: np.ndarray) -> list[np.ndarray]:
    """The class's members split by stratum (non-empty strata only)."""
    ids = design.strata[members, q]
    return [members[ids == h] for h in range(int(ids.max()) + 1)]


def _draw(groups: list[np.ndarray], sizes: list[int], rank: np.ndarray, out: np.ndarray) -> None:
    """Mark the ``sizes[h]`` lowest-ranked members of each stratum in the boolean column ``out``."""
    for g, m in zip(groups, sizes, strict=True):
        out[g[np.argsort(rank[g], kind="stable")[:m]]] = True


def first_stage(
    codes: np.ndarray,
    kept: list[np.ndarray],
    rank: np.ndarray,
    purity: np.ndarray,
    max_pairs: int | None,
    minimum: int = 2,
) -> Design:
    """Stratify every kept class by purity; draw enough sources for ``max_pairs`` pairs (or all)."""
    n_points, n_sets = codes.shape[1], codes.shape[0]
    strata = np.zeros((n_points, n_sets), dtype=np.int32)
    chosen = np.zeros((n_points, n_sets), dtype=bool)
    for q in range(n_sets):
        for c in kept[q]:
            members = np.flatnonzero(codes[q] == c)
            m0 = first_stage_size(len(members), max_pairs, minimum)
            n_strata = max(1, min(MAX_STRATA, m0 // MIN_PER_STRATUM))
            by_purity = members[np.argsort(purity[members, q], kind="stable")]
            groups = [np.sort(g) for g in np.array_split(by_purity, n_strata)]
            for h, g in enumerate(groups):
                strata[g, q] = h
            _draw(groups, _allocate(groups, m0, [0] * n_strata), rank, chosen[:, q])
    return Design(strata, chosen)


@dataclass(frozen=True)
class ClassEstimate:
    """A class's stratified estimate from its sources' score sums."""

    score: float
    variance: float
    n_sources: int
    n_pairs: int
    pair_var: float
    within: float  # pooled within-stratum variance of per-source means
    within_df: int  # its degrees of freedom


def class_estimate(
    design: Design, q: int, members: np.ndarray, point_sums: np.ndarray
) -> ClassEstimate:
    """Stratified estimate of one class (``members``: its points) from per-point sums (N, Q, 2)."""
    n = len(members)
    score = variance = within = 0.0
    n_sources = within_df = 0
    for g in _strata_groups(design, q, members):
        picked = g[design.chosen[g, q]]
        r = point_sums[picked, q, 0] / (n - 1)
        m_h, weight = len(r), len(g) / n
        n_sources += m_h
        score += weight * float(r.mean())
        if m_h > 1:
            var_h = float(np.var(r, ddof=1))
            within += weight * var_h
            within_df += m_h - 1
            variance += weight**2 * (1 - m_h / len(g)) * var_h / m_h
    sampled = members[design.chosen[members, q]]
    if n_sources == n:  # exhaustive: the plain mean, free of the weights' rounding
        score = float(point_sums[sampled, q, 0].sum() / (n * (n - 1)))
    n_pairs = n_sources * (n - 1)
    pair_mean = float(point_sums[sampled, q, 0].sum()) / n_pairs
    pair_var = max(0.0, float(point_sums[sampled, q, 1].sum()) / n_pairs - pair_mean**2)
    pair_var *= n_pairs / max(1, n_pairs - 1)
    return ClassEstimate(score, max(0.0, variance), n_sources, n_pairs, pair_var, within, within_df)


def authors_target_variance(
    design: Design, q: int, kept: np.ndarray, codes: np.ndarray, point_sums: np.ndarray, pairs: int
) -> float:
    """Variance of the layer score had every class drawn ``pairs`` uniform pairs without replacement.

    Per class sigma^2 / P (1 - P / (n (n - 1))) with sigma^2 the pair-score variance seen so far; the
    layer's is their sum over C^2 (classes are sampled independently).
    """
    total = 0.0
    for c in kept:
        members = np.flatnonzero(codes[q] == c)
        n = len(members)
        est = class_estimate(design, q, members, point_sums)
        total += est.pair_var / pairs * max(0.0, 1.0 - pairs / (n * (n - 1)))
    return total / len(kept) ** 2


def neyman_totals(
    within: np.ndarray, sizes: np.ndarray, floor: np.ndarray, budget: float
) -> np.ndarray:
    """Sources per class minimising their total subject to sum_c within_c (1/m_c - 1/n_c) <= budget.

    The Lagrange solution m_c = sqrt(lambda within_c) clipped to [floor_c, n_c] (Neyman allocation
    across classes; Cochran ch. 5.5), lambda found by bisection. ``budget`` is C^2 times the target
    variance of the layer score.
    """
    floor = np.minimum(floor, sizes).astype(np.float64)
    sizes = sizes.astype(np.float64)

    def excess(m: np.ndarray) -> float:
        return float((within * (1.0 / m - 1.0 / sizes)).sum()) - budget

    if excess(floor) <= 0.0:
        return floor.astype(np.int64)
    if budget <= 0.0:
        return sizes.astype(np.int64)
    lo, hi = 0.0, 1.0
    while excess(np.clip(np.sqrt(hi * within), floor, sizes)) > 0.0 and hi < 1e30:
        hi *= 4.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if excess(np.clip(np.sqrt(mid * within), floor, sizes)) > 0.0:
            lo = mid
        else:
            hi = mid
    return np.ceil(np.clip(np.sqrt(hi * within), floor, sizes) - 1e-9).astype(np.int64)


def main_stage(
    current: Design,
    codes: np.ndarray,
    kept: list[np.ndarray],
    rank: np.ndarray,
    point_sums: np.ndarray,
    target_var: list[float],
) -> Design:
    """A larger sample sized from ``current`` so that each label set's layer variance meets its target.

    Under proportional allocation a class's stratified variance is within / m - within / n; sources
    are spread across classes by ``neyman_totals`` (more where per-source means vary more), sized for
    the 80% upper confidence bound of the pooled within-stratum variance. Drawn from ``rank``: with the
    pilot's ranking independent of it, the sample's size does not depend on its own values (unbiased);
    drawn again from the same ``rank`` with larger sizes, it extends ``current`` (a top-up).
    """
    chosen = np.zeros_like(current.chosen)
    for q in range(codes.shape[0]):
        members_of = [np.flatnonzero(codes[q] == c) for c in kept[q]]
        ests = [class_estimate(current, q, m, point_sums) for m in members_of]
        df = sum(e.within_df for e in ests)
        inflation = df / chi2.ppf(0.2, df) if df > 0 else 1.0
        within = np.array([e.within for e in ests]) * inflation
        # pilots of a few sources misjudge skewed classes: shrink each towards the pooled variance
        within = SHRINK * within + (1 - SHRINK) * within.mean()
        sizes = np.array([len(m) for m in members_of])
        floor = np.array([max(2, e.n_sources) for e in ests])
        totals = neyman_totals(within, sizes, floor, target_var[q] * len(kept[q]) ** 2)
        for members, total in zip(members_of, totals, strict=True):
            groups = _strata_groups(current, q, members)
            now = [int(current.chosen[g, q].sum()) for g in groups]
            _draw(groups, _allocate(groups, int(total), now), rank, chosen[:, q])
    return Design(current.strata, chosen)


def layer_variance(
    design: Design, q: int, kept: np.ndarray, codes: np.ndarray, point_sums: np.ndarray
) -> float:
    """Estimated variance of the layer score (mean over classes) of label set ``q``."""
    total = sum(
        class_estimate(design, q, np.flatnonzero(codes[q] == c), point_sums).variance for c in kept
    )
    return total / len(kept) ** 2
