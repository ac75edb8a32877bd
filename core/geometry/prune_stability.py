"""How firm a suggested prune point is: its margin to the rule's cut-off and how often it changes.

A prune point is a discrete decision taken on a noisy curve. For each rule (threshold and local peak,
``core.geometry.prune_point``) this reports the point on the full-data curve, its distribution over
half-samples of the dataset and over the estimator's seeds ("p = 8 in 17 of 20"), and the margin:
for the threshold rule how far the chosen layer stands above the bar (s_p - target) and how far the
layer before it stands below (target - s_{p-1}); for the local-peak rule how far the step after p
stays under its allowance (sqrt(se_p^2 + se_{p+1}^2) - (s_{p+1} - s_p)).

Half-samples have half the points and move more than datasets of the full size would, so a flag that
fired whenever any half-sample moved the point fired on points that are right most of the time. The
verdict is calibrated like an interval instead: each half-sample's deviation from the half-samples'
mean is scaled per layer to the population SE at the full N (``scale`` = SE / sd of the half-sample
scores, the same rate-corrected SE as the interval's) and added to the full-data curve, giving
pseudo-datasets of the full size; the rule's point on each says how often the point would move on
another dataset: a share with a Jeffreys ``level`` interval. "Moves" is said when that interval lies
wholly above ``MOVE_SHARE`` (the point moves in more than 1 dataset in 10, beyond doubt at that
level). The false-alarm rate of this flag on points that are stable in truth is measured by
simulation (``tests/test_prune_stability.py``, docs/reading-plots.md). The seed distribution (the
estimator at full N) is reported beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from core.geometry.prune_point import local_peak_point, suggest_prune_point
from core.io.records import Record

__all__ = ["MOVE_SHARE", "RuleStability", "PruneStability", "prune_stability", "pseudo_datasets"]

MOVE_SHARE = 0.1  # "moves": the point changes in more than this share of datasets, beyond doubt

Scores = Sequence[float] | np.ndarray  # one value per layer
ScoreRows = Sequence[Sequence[float]] | Sequence[np.ndarray] | np.ndarray  # one row per curve


@dataclass(frozen=True)
class RuleStability(Record):
    """One rule's prune point with its margins and its distributions over resamples and seeds."""

    rule: str  # "threshold" or "local peak"
    point: int
    margin: float  # >= 0: by how much the chosen layer passes the rule's test
    margin_before: (
        float | None
    )  # threshold rule: how far layer p - 1 misses the bar (None at p = 1)
    over_resamples: dict[str, int]  # prune point (as text, JSON keys) -> number of half-samples
    over_seeds: dict[str, int]  # prune point -> number of estimator seeds (empty when exact)
    over_datasets: dict[str, int] = field(default_factory=dict)  # points on pseudo-datasets
    move_share: float = float("nan")  # share of pseudo-datasets whose point differs
    move_low: float = float("nan")  # its Jeffreys interval
    move_high: float = float("nan")
    level: float = 0.9

    @property
    def moves(self) -> bool:
        """Whether the point moves in more than ``MOVE_SHARE`` of datasets beyond doubt (the share's
        interval lies above it); without pseudo-datasets, whether any resample or seed moves it."""
        if self.over_datasets:
            return self.move_low > MOVE_SHARE
        return not set(self.over_resamples) | set(self.over_seeds) <= {str(self.point)}

    @property
    def stable(self) -> bool:
        """The verdict's negation: the point is not shown to move."""
        return not self.moves

    def move_text(self) -> str:
        """'moves in 15 % of datasets (90 %: 4-33 %)' (empty without pseudo-datasets)."""
        if not self.over_datasets:
            return ""
        return (
            f"moves in {self.move_share:.0%} of datasets ({self.level:.0%}: "
            f"{self.move_low:.0%}-{self.move_high:.0%})"
        )

    def summary(self) -> str:
        """'p = 8 in 17 of 20 half-samples (p = 9 in 3); 5 of 5 seeds'."""
        parts = []
        for what, counts in (("half-samples", self.over_resamples), ("seeds", self.over_seeds)):
            if not counts:
                continue
            total = sum(counts.values())
            mine = counts.get(str(self.point), 0)
            others = ", ".join(
                f"p = {p} in {n}"
                for p, n in sorted(counts.items(), key=lambda kv: -kv[1])
                if p != str(self.point)
            )
            parts.append(
                f"p = {self.point} in {mine} of {total} {what}" + (f" ({others})" if others else "")
            )
        if self.over_datasets:
            parts.insert(0, self.move_text())
        return "; ".join(parts) if parts else f"p = {self.point}"


@dataclass(frozen=True)
class PruneStability(Record):
    """Both rules' stability for one curve."""

    label_set: str
    fraction: float
    threshold: RuleStability
    local_peak: RuleStability

    @property
    def stable(self) -> bool:
        """Whether both rules' points hold over every resample and seed."""
        return self.threshold.stable and self.local_peak.stable


def _full(layers: Sequence[int], values: Scores, n: int) -> np.ndarray:
    """Values placed at hidden states 0..n (NaN where a layer was not computed)."""
    out = np.full(n + 1, np.nan)
    out[np.asarray(layers, dtype=int)] = np.asarray(values, dtype=np.float64)
    return out


def _counts(points: Sequence[int]) -> dict[str, int]:
    return {str(p): n for p, n in sorted(Counter(int(p) for p in points).items())}


def pseudo_datasets(
    scores: np.ndarray, resample_scores: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """(B, layers) curves of the full size: the full curve plus each half-sample's deviation from
    the half-samples' mean, scaled per layer by ``scale`` (module docstring)."""
    table = np.asarray(resample_scores, dtype=np.float64)
    return scores[None, :] + (table - table.mean(axis=0)) * np.nan_to_num(scale)[None, :]


def _share(moved: int, total: int, level: float) -> tuple[float, float, float]:
    """(share, low, high): the Jeffreys interval of ``moved`` of ``total``."""
    a, b = moved + 0.5, total - moved + 0.5
    low = 0.0 if moved == 0 else float(stats.beta.ppf((1 - level) / 2, a, b))
    high = 1.0 if moved == total else float(stats.beta.ppf((1 + level) / 2, a, b))
    return moved / total, low, high


def _calibrated(rule: RuleStability, points: list[int], level: float) -> RuleStability:
    """``rule`` with its points over pseudo-datasets and the share that moved."""
    if not points:
        return rule
    share, low, high = _share(sum(p != rule.point for p in points), len(points), level)
    return RuleStability(
        rule.rule,
        rule.point,
        rule.margin,
        rule.margin_before,
        rule.over_resamples,
        rule.over_seeds,
        _counts(points),
        share,
        low,
        high,
        level,
    )


def prune_stability(
    name: str,
    layers: Sequence[int],
    scores: Scores,
    sems: Scores,
    resample_scores: ScoreRows = (),
    seed_scores: ScoreRows = (),
    seed_sems: ScoreRows = (),
    fraction: float = 0.95,
    scale: Scores | None = None,
    level: float = 0.9,
) -> PruneStability:
    """Both rules on the full curve, with margins, and on every half-sample and seed curve; with
    ``scale`` (per layer: population SE / sd of the half-sample scores) also on pseudo-datasets of
    the full size, whose share of moved points is the calibrated verdict (module docstring).

    Half-sample curves carry no design SE of their own here, so the local-peak rule uses the
    full curve's SEs on them.
    """
    n = int(max(layers))
    s = _full(layers, scores, n)
    se = np.nan_to_num(_full(layers, sems, n))
    p = suggest_prune_point(s, fraction)
    hidden = s[1:]
    target = fraction * float(np.nanmax(hidden))
    margin_before = None if p == 1 else float(target - s[p - 1])
    q = local_peak_point(s, se)
    step_allow = float(np.hypot(se[q], se[q + 1])) if q < n else 0.0
    if q < n:  # the step after q stays this far under its allowance
        peak_margin = float(step_allow - (s[q + 1] - s[q]))
    else:  # rising to the top: the last step passes its allowance by this much
        peak_margin = float((s[n] - s[n - 1]) - np.hypot(se[n - 1], se[n]))
    rs = [_full(layers, r, n) for r in resample_scores]
    ss = [_full(layers, r, n) for r in seed_scores]
    sse = [np.nan_to_num(_full(layers, r, n)) for r in seed_sems] or [se] * len(ss)
    threshold = RuleStability(
        "threshold",
        p,
        float(s[p] - target),
        margin_before,
        _counts([suggest_prune_point(r, fraction) for r in rs]),
        _counts([suggest_prune_point(r, fraction) for r in ss]),
    )
    peak = RuleStability(
        "local peak",
        q,
        peak_margin,
        None,
        _counts([local_peak_point(r, se) for r in rs]),
        _counts([local_peak_point(r, e) for r, e in zip(ss, sse, strict=True)]),
    )
    if scale is not None and len(rs) >= 2:
        pseudo = pseudo_datasets(s, np.array(rs), _full(layers, scale, n))
        threshold = _calibrated(
            threshold, [suggest_prune_point(r, fraction) for r in pseudo], level
        )
        peak = _calibrated(peak, [local_peak_point(r, se) for r in pseudo], level)
    return PruneStability(name, float(fraction), threshold, peak)
