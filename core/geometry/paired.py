"""Paired differences of two curves on the same clips, with intervals from the same half-samples.

Two curves of the same clips (pretrained vs fine-tuned, two models, two label sets) share most of
their sampling noise: a clip set that happens to be easy is easy for both. Taking the difference
within each half-sample (the same units drawn for both sides) removes that shared part, so the
paired interval is narrower than the two separate intervals suggest. The interval is centred on the
full-data difference with half-width t_{B-1} x the population SE of the differences (half- and
quarter-sample differences, the same scheme as ``core.geometry.resampling``); a layer is marked where it excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from core.errors import ConvexityInputError
from core.geometry.resampling import CurveInterval, population_se
from core.io.records import Record

__all__ = ["PairedDifference", "difference_verdict", "layer_ranges", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference(Record):
    """A - B per hidden state with its paired ``level`` interval and a one-line verdict."""

    name_a: str
    name_b: str
    layers: tuple[int, ...]
    difference: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    level: float
    n_resamples: int
    verdict: str

    @classmethod
    def of(
        cls,
        a: CurveInterval,
        b: CurveInterval,
        bounds: tuple[np.ndarray, np.ndarray],
        n_resamples: int,
        names: tuple[str | None, str | None] = (None, None),
    ) -> PairedDifference:
        """A - B of two curves with the interval ``bounds`` (low, high), named (by default by their
        label sets) and given its verdict."""
        na, nb = names[0] or a.label_set, names[1] or b.label_set
        low, high = bounds
        return cls(
            name_a=na,
            name_b=nb,
            layers=a.layers,
            difference=tuple(float(x) - float(y) for x, y in zip(a.score, b.score, strict=True)),
            low=tuple(float(v) for v in low),
            high=tuple(float(v) for v in high),
            level=a.level,
            n_resamples=n_resamples,
            verdict=difference_verdict(na, nb, a.layers, low, high),
        )

    @property
    def excludes_zero(self) -> tuple[bool, ...]:
        """Per layer: whether the interval lies wholly above or below 0."""
        return tuple(lo > 0 or hi < 0 for lo, hi in zip(self.low, self.high, strict=True))


def layer_ranges(layers: Sequence[int]) -> str:
    """'2-4, 7' for layers 2, 3, 4, 7 (consecutive runs joined)."""
    out: list[str] = []
    run: list[int] = []
    for layer in sorted(int(i) for i in layers):
        if run and layer == run[-1] + 1:
            run.append(layer)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [layer]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def difference_verdict(name_a: str, name_b: str, layers: Sequence[int], low, high) -> str:
    """'A > B on layers 2-4; no clear difference on layers 0-1' from an interval of A - B."""
    above = [i for i, lo in zip(layers, low, strict=True) if lo > 0]
    below = [i for i, hi in zip(layers, high, strict=True) if hi < 0]
    parts = []
    if above:
        parts.append(f"{name_a} > {name_b} on {_on(above)}")
    if below:
        parts.append(f"{name_a} < {name_b} on {_on(below)}")
    if not parts:
        return f"no layer where {name_a} and {name_b} differ beyond resampling"
    rest = [i for i in layers if i not in above and i not in below]
    text = "; ".join(parts)
    return text + (f"; no clear difference on {_on(rest)}" if rest else "")


def _on(layers: Sequence[int]) -> str:
    """'layer 0' or 'layers 2-4, 7'."""
    return f"layer{'s' if len(layers) > 1 else ''} {layer_ranges(layers)}"


def _both(a: tuple, b: tuple) -> np.ndarray | None:
    """Design SEs of a difference of two independent estimates, sqrt(se_a^2 + se_b^2)."""
    if not a or not b:
        return None
    return np.hypot(np.asarray(a), np.asarray(b))


def paired_difference(
    a: CurveInterval, b: CurveInterval, name_a: str | None = None, name_b: str | None = None
) -> PairedDifference:
    """A - B with a paired interval; both must come from the same half-samples (same seed, scheme,
    number of resamples and layers, computed on the same clips: the caller checks the clips)."""
    if a.layers != b.layers:
        raise ConvexityInputError(f"the curves have different layers: {a.layers} vs {b.layers}")
    if (a.seed, a.n_resamples, a.scheme) != (b.seed, b.n_resamples, b.scheme):
        raise ConvexityInputError(
            "paired differences need the same half-samples on both sides: "
            f"A has seed {a.seed}, {a.n_resamples} resamples ({a.scheme}); "
            f"B has seed {b.seed}, {b.n_resamples} resamples ({b.scheme})"
        )
    if a.level != b.level:
        raise ConvexityInputError(f"interval levels differ: {a.level} vs {b.level}")
    diff = np.asarray(a.score) - np.asarray(b.score)
    table = np.asarray(a.resample_scores) - np.asarray(b.resample_scores)
    quarters = None
    if a.quarter_scores and b.quarter_scores:
        quarters = np.asarray(a.quarter_scores) - np.asarray(b.quarter_scores)
    se = np.asarray(
        population_se(
            table, quarters, _both(a.half_sems, b.half_sems), _both(a.quarter_sems, b.quarter_sems)
        ).se
    )
    half = stats.t.ppf(0.5 + a.level / 2, min(a.degrees, b.degrees)) * se
    return PairedDifference.of(a, b, (diff - half, diff + half), a.n_resamples, (name_a, name_b))
