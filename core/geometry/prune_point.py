"""Prune points of a per-layer curve: where the task's curve stops rising.

Two rules, shown side by side so a user can see which one a sweep proves right:
- threshold (the paper-style default): the first layer >= 1 whose score reaches 95 % of the maximum
  over layers 1..L. Robust to noise, but a curve that creeps up to the last layer (Whisper's last
  state includes the final LayerNorm) makes it keep every layer.
- local peak: the first layer after which the curve stops rising by more than the standard error of
  the step. Prunes harder on curves that peak early and then plateau or creep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ConvexityInputError
from core.io.records import Record

DEFAULT_FRACTION = 0.95


def suggest_prune_point(
    scores: Sequence[float] | np.ndarray, fraction: float = DEFAULT_FRACTION, baseline: float = 0.0
) -> int:
    """First hidden-state index p >= 1 whose score reaches ``fraction`` of the maximum over 1..L.

    ``scores`` holds one value per hidden state 0..L (index 0, the input to layer 1, is never proposed).
    With ``baseline`` b the test is s_p - b >= fraction (max - b), e.g. b = chance accuracy for a probe;
    b = 0 is the plain rule used for convexity curves. NaN scores are ignored; if every score of 1..L is
    NaN the answer is L (prune nothing).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.shape[0] < 2:
        raise ConvexityInputError(
            f"need one score per hidden state 0..L with L >= 1, got shape {s.shape}"
        )
    if not 0.0 < fraction <= 1.0:
        raise ConvexityInputError(f"fraction must lie in (0, 1], got {fraction}")
    hidden = s[1:]
    if np.all(np.isnan(hidden)):
        return int(s.shape[0] - 1)
    top = float(np.nanmax(hidden))
    target = baseline + fraction * (top - baseline) if top >= baseline else top
    reached = np.flatnonzero(
        np.nan_to_num(hidden, nan=-np.inf) >= target - 1e-12 * max(1.0, abs(target))
    )
    return int(reached[0]) + 1


def local_peak_point(
    scores: Sequence[float] | np.ndarray, sems: Sequence[float] | np.ndarray | None = None
) -> int:
    """First hidden-state index p >= 1 after which the curve stops rising by more than its SE.

    p is the first of 1..L-1 with ``s[p+1] - s[p] <= sqrt(se[p]^2 + se[p+1]^2)`` (the standard error
    of the step); L if the curve keeps rising to the top. With ``sems`` None (or zeros) this is the
    first local maximum from layer 1 on. NaN scores count as "not rising"; NaN SEs as 0.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or s.shape[0] < 2:
        raise ConvexityInputError(
            f"need one score per hidden state 0..L with L >= 1, got shape {s.shape}"
        )
    se = np.zeros_like(s) if sems is None else np.nan_to_num(np.asarray(sems, dtype=np.float64))
    if se.shape != s.shape:
        raise ConvexityInputError(f"sems shape {se.shape} differs from scores shape {s.shape}")
    n_layers = s.shape[0] - 1
    for p in range(1, n_layers):
        step = s[p + 1] - s[p]
        if not step > float(np.hypot(se[p], se[p + 1])):  # NaN step: not rising
            return p
    return n_layers


@dataclass(frozen=True)
class PrunePointChoice(Record):
    """Both prune-point rules on one curve, with the numbers a user needs to check them."""

    threshold_point: int  # the paper-style rule: first layer >= fraction of the max over 1..L
    local_peak: int  # first layer after which the curve stops rising by more than its SE
    fraction: float
    max_layer: int
    max_score: float
    target: float  # fraction * max: the score the threshold rule needs to reach

    def explanation(self, label: str = "the task's labels") -> str:
        """One short paragraph that says what each rule suggests and why."""
        text = (
            f"Suggested prune point p = {self.threshold_point}: the first layer whose convexity of "
            f"{label} reaches {self.fraction:.0%} of its maximum ({self.max_score:.3f} at layer "
            f"{self.max_layer}, so the bar is {self.target:.3f}). Local-peak rule: p = "
            f"{self.local_peak}, the first layer after which the curve stops rising by more than "
            "its standard error."
        )
        if self.local_peak < self.threshold_point:
            text += (
                " The curve still creeps up after its first peak, so the threshold rule keeps "
                "more layers; a sweep over both points shows which one was right."
            )
        elif self.local_peak == self.threshold_point:
            text += " Both rules agree."
        return text


def choose_prune_points(
    scores: Sequence[float] | np.ndarray,
    sems: Sequence[float] | np.ndarray | None = None,
    fraction: float = DEFAULT_FRACTION,
) -> PrunePointChoice:
    """The threshold rule and the local-peak rule on one curve (hidden states 0..L)."""
    s = np.asarray(scores, dtype=np.float64)
    p = suggest_prune_point(s, fraction)
    hidden = s[1:]
    if np.all(np.isnan(hidden)):
        top_layer, top = s.shape[0] - 1, float("nan")
    else:
        top_layer = int(np.nanargmax(hidden)) + 1
        top = float(hidden[top_layer - 1])
    return PrunePointChoice(
        threshold_point=p,
        local_peak=local_peak_point(s, sems),
        fraction=float(fraction),
        max_layer=top_layer,
        max_score=top,
        target=fraction * top,
    )
