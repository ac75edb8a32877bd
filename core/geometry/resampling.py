"""Population intervals of a convexity curve by half-sampling the dataset's units.

The engine's standard error says how well a sampled estimate matches the exhaustive score of *these*
clips; a user choosing a prune point wants to know how the curve would move with other clips and
speakers. Here the dataset's units are resampled and the curve recomputed:

- word labels: speakers are the unit (a half-sample keeps all clips of half the speakers), because a
  word's region must generalise across voices;
- speaker labels: clips within each speaker (half of every speaker's clips), since the speakers are
  the classes themselves;
- without speaker ids: clips.

Scheme (half-sampling, a delete-d jackknife with d = n/2, without replacement). Graph convexity
depends on N (a denser graph has other shortest paths), so a bootstrap with replacement is wrong
twice: duplicates are distance-0 neighbours that reshape the graph, and N changes. Half-samples of a
smooth statistic vary, over the C(n, n/2) halves, about as much as the full-sample estimate does over
datasets of size n (the delete-d jackknife variance r/d * Var_S with r = d). The interval is centred
on the full-data score (half-samples are biased by their smaller N; their spread is not), with
half-width t_{B-1} x the standard deviation of the B half-sample scores, times ``SPREAD_SCALE``.
``SPREAD_SCALE`` is the calibration the simulation (tests/test_curve_statistics.py, bench/
curve_statistics.py) supports; see docs/reading-plots.md for the coverage table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from core.errors import ConvexityInputError
from core.geometry.convexity import ConvexityCurve, layerwise_convexity
from core.geometry.validation import encode_labels
from core.io.records import Record

__all__ = [
    "MAX_RESAMPLES",
    "CurveInterval",
    "ResampleUnits",
    "check_half_sampling",
    "design_groups",
    "half_samples",
    "interval_from_resamples",
    "resampled_curves",
]

MAX_RESAMPLES = 200  # beyond this the interval's width changes by < 5 %; the cost keeps growing
MIN_UNITS = 4  # a class needs units in both halves of most splits: at least 4 per class
SPREAD_SCALE = 1.0  # calibration factor on the half-sample spread (1: the delete-d jackknife)


@dataclass(frozen=True)
class ResampleUnits:
    """What a half-sample draws for one label set: ``units[i]`` is point i's unit, halved within
    ``strata`` (None: over the whole set); ``unit`` / ``within`` name them for captions."""

    units: np.ndarray
    strata: np.ndarray | None
    unit: str
    within: str | None = None

    @classmethod
    def of(
        cls,
        unit: str,
        units: Sequence[Hashable],
        strata: Sequence[Hashable] | None = None,
        within: str | None = None,
    ) -> ResampleUnits:
        """Integer-coded units (and strata) from any hashable ids."""
        codes, _ = encode_labels(list(units), None, "units")
        s = None if strata is None else encode_labels(list(strata), len(codes), "strata")[0]
        return cls(codes, s, unit, within)

    def describe(self) -> str:
        """'half of the speakers' or 'half of the clips within each speaker'."""
        what = f"half of the {self.unit}s"
        return what + (f" within each {self.within}" if self.within else "")


def _groups(ru: ResampleUnits) -> list[np.ndarray]:
    """The distinct units of each stratum (one stratum when there are none)."""
    strata = np.zeros_like(ru.units) if ru.strata is None else ru.strata
    return [np.unique(ru.units[strata == s]) for s in np.unique(strata)]


def check_half_sampling(
    labels: Sequence[Hashable] | np.ndarray, ru: ResampleUnits, n_resamples: int, name: str
) -> None:
    """One clear line if ``n_resamples`` half-samples of these units cannot give an interval."""
    if not isinstance(n_resamples, int | np.integer) or not 2 <= n_resamples <= MAX_RESAMPLES:
        raise ConvexityInputError(
            f"population intervals need 2 to {MAX_RESAMPLES} resamples, got {n_resamples!r}"
        )
    codes, classes = encode_labels(labels, len(ru.units), name)
    counts = np.bincount(codes, minlength=len(classes))
    for c in np.flatnonzero(counts >= 2):
        n_units = len(np.unique(ru.units[codes == c]))
        if n_units < MIN_UNITS:
            raise ConvexityInputError(
                f"{name} class {classes[c]!r} has {n_units} {ru.unit}(s); half-sampling "
                f"{ru.describe()} needs at least {MIN_UNITS} per class"
            )
    distinct = math.prod(math.comb(len(g), len(g) // 2) for g in _groups(ru))
    if distinct < n_resamples:
        raise ConvexityInputError(
            f"{name}: only {distinct} distinct half-samples of {ru.describe()}; ask for at most "
            f"that many resamples"
        )


def half_samples(ru: ResampleUnits, n_resamples: int, seed: int = 0) -> list[np.ndarray]:
    """Sorted point indices of each half-sample: half of the units of every stratum, without
    replacement; half-sample b is seeded by (seed, b), so more resamples keep the first ones."""
    out = []
    groups = _groups(ru)
    for b in range(n_resamples):
        rng = np.random.default_rng([int(seed), b])
        keep = np.concatenate([rng.choice(g, len(g) // 2, replace=False) for g in groups])
        out.append(np.flatnonzero(np.isin(ru.units, keep)))
    return out


@dataclass(frozen=True)
class CurveInterval(Record):
    """A population interval per hidden state: the full-data score with a ``level`` interval whose
    width comes from the spread of the half-sample scores (the curve over other draws of units)."""

    label_set: str
    layers: tuple[int, ...]
    score: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    se: tuple[float, ...]  # the population standard error the interval uses
    resample_scores: tuple[tuple[float, ...], ...]  # (resamples, layers)
    level: float
    seed: int
    scheme: str  # e.g. "half-samples: half of the speakers"

    @property
    def n_resamples(self) -> int:
        """Number of half-samples behind the interval."""
        return len(self.resample_scores)


def interval_from_resamples(
    name: str,
    full: ConvexityCurve | Sequence[float],
    resampled: np.ndarray,
    *,
    level: float,
    seed: int,
    scheme: str,
    layers: Sequence[int] | None = None,
) -> CurveInterval:
    """The interval of one curve from its full-data scores and (B, layers) half-sample scores."""
    score = np.asarray(getattr(full, "scores", full), dtype=np.float64)
    table = np.asarray(resampled, dtype=np.float64)
    se = SPREAD_SCALE * table.std(axis=0, ddof=1)
    half = stats.t.ppf(0.5 + level / 2, table.shape[0] - 1) * se
    return CurveInterval(
        label_set=name,
        layers=tuple(int(i) for i in (layers if layers is not None else full.layers)),
        score=tuple(float(v) for v in score),
        low=tuple(float(v) for v in score - half),
        high=tuple(float(v) for v in score + half),
        se=tuple(float(v) for v in se),
        resample_scores=tuple(tuple(float(v) for v in row) for row in table),
        level=float(level),
        seed=int(seed),
        scheme=scheme,
    )


def design_groups(names: Sequence[str], units: Mapping[str, ResampleUnits]) -> list[list[str]]:
    """Label sets grouped by identical units: each group shares its half-samples' engine calls."""
    groups: dict[tuple, list[str]] = {}
    for name in names:
        ru = units[name]
        strata = None if ru.strata is None else ru.strata.tobytes()
        groups.setdefault((ru.unit, ru.within, ru.units.tobytes(), strata), []).append(name)
    return list(groups.values())


def resampled_curves(
    features: np.ndarray,
    labels: Mapping[str, Sequence[Hashable] | np.ndarray],
    units: Mapping[str, ResampleUnits],
    n_resamples: int,
    *,
    resample_seed: int = 0,
    progress: Callable[[int], None] | None = None,
    **engine_kwargs: object,
) -> dict[str, np.ndarray]:
    """Label set -> (B, layers) scores of the curve recomputed on each half-sample.

    Label sets with the same units share each half-sample's engine call (graphs and trees);
    ``progress(layers_done)`` is called after every engine call with the layers it computed.
    """
    groups = design_groups(list(labels), units)
    arrays = {name: np.asarray(lab) for name, lab in labels.items()}
    out: dict[str, list[np.ndarray]] = {name: [] for name in labels}
    for names in groups:
        for idx in half_samples(units[names[0]], n_resamples, resample_seed):
            x = np.ascontiguousarray(features[idx])
            curves = layerwise_convexity(x, {n: arrays[n][idx] for n in names}, **engine_kwargs)
            for n in names:
                out[n].append(curves[n].scores)
            if progress is not None:
                progress(len(next(iter(curves.values())).layers))
    return {name: np.array(rows) for name, rows in out.items()}
