"""The suggested prune point of a per-layer curve: where the task's curve stops rising (the paper's rule)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import ConvexityInputError

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
