"""How firm a suggested prune point is: its margin to the rule's cut-off and how often it changes.

A prune point is a discrete decision taken on a noisy curve. For each rule (threshold and local peak,
``core.geometry.prune_point``) this reports the point on the full-data curve, its distribution over
half-samples of the dataset and over the estimator's seeds ("p = 8 in 17 of 20"), and the margin:
for the threshold rule how far the chosen layer stands above the bar (s_p - target) and how far the
layer before it stands below (target - s_{p-1}); for the local-peak rule how far the step after p
stays under its allowance (sqrt(se_p^2 + se_{p+1}^2) - (s_{p+1} - s_p)). A point that any resample
or seed moves is flagged as unstable, not presented as a fact.

Half-samples have half the points, and graph convexity shifts with N, so their prune points describe
how the decision moves with the draw of units at a smaller size; the seed distribution is at full N.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.geometry.prune_point import local_peak_point, suggest_prune_point
from core.io.records import Record

__all__ = ["RuleStability", "PruneStability", "prune_stability"]

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

    @property
    def stable(self) -> bool:
        """Whether every resample and seed gives the full-data point."""
        seen = set(self.over_resamples) | set(self.over_seeds)
        return seen <= {str(self.point)}

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


def prune_stability(
    name: str,
    layers: Sequence[int],
    scores: Scores,
    sems: Scores,
    resample_scores: ScoreRows = (),
    seed_scores: ScoreRows = (),
    seed_sems: ScoreRows = (),
    fraction: float = 0.95,
) -> PruneStability:
    """Both rules on the full curve, with margins, and on every half-sample and seed curve.

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
    return PruneStability(name, float(fraction), threshold, peak)
