"""Population intervals of a convexity curve by half-sampling the dataset's units.

The engine's standard error says how well a sampled estimate matches the exhaustive score of *these*
clips; a user choosing a prune point wants to know how the curve would move with other clips and
speakers. Here the dataset's units are resampled and the curve recomputed:

- word labels: speakers are the unit (a half-sample keeps all clips of half the speakers), because a
  word's region must generalise across voices;
- speaker labels: clips within each speaker (half of every speaker's clips), since the speakers are
  the classes themselves;
- without speaker ids: clips.

Scheme (half-samples with a nested quarter-sample each, without replacement). Graph convexity
depends on N (a denser graph has other shortest paths), so a bootstrap with replacement is wrong
twice: duplicates are distance-0 neighbours that reshape the graph, and N changes. For a statistic
whose variance falls as 1/n, half-samples vary over the C(n, n/2) halves about as much as the
full-sample estimate does over datasets of size n (the delete-d jackknife with d = n/2). Graph
convexity does not always fall as 1/n: measured by simulation, near chance its variance falls about
as n^-1.7 (pair noise dominates; half-samples overstate the spread, coverage 97 %) and near its
ceiling slower than 1/n (rare bad paths; half-samples understate it, coverage 78 %). So the rate is
measured too: with V_h and V_q the variances of the half- and quarter-sample scores and
Var_m = A m^-a, V_h = A n^-a (2^a - 1) and V_q = A n^-a (4^a - 1), so rho = V_q / V_h = 2^a + 1 and
Var_n = V_h / (rho - 2), where each V is the sub-samples' spread less the mean square of their own
design SEs (estimator noise is not population spread). rho is held to [1 + sqrt 2, 5] (a in
[0.5, 2]) against noise; where that guard acts it is reported (``CurveInterval.rate_clamped``, and
in the captions), since the interval there rests on the bound. (Pooling the layers' rates by random
effects was measured and not adopted: it over-covered the speaker-dominated layer, 96.7%; see
docs/reading-plots.md.) The
interval is centred on the full-data score (sub-samples are biased by their smaller N; their spread
is what is used) with half-width t_{B-1} x sqrt(Var_n). A layer whose sub-samples all score the same
(a perfect 1.0) has a zero-width interval and is marked degenerate. The t quantile's degrees of
freedom are B - 1, and at most n_units - 1: a spread over half-samples of n units is an estimate
from n units, however many half-samples are drawn (8 speakers give at most 7). Coverage by simulation:
tests/test_curve_statistics.py, bench/curve_statistics.py, docs/reading-plots.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from core.errors import ConvexityInputError
from core.geometry.convexity import ConvexityCurve, layerwise_convexity
from core.geometry.limits import MAX_RESAMPLES
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.geometry.validation import encode_labels
from core.io.records import Record

__all__ = [
    "MAX_RESAMPLES",
    "CurveInterval",
    "PopulationSE",
    "ResampleUnits",
    "check_half_sampling",
    "class_units",
    "classes_are_units",
    "design_groups",
    "half_samples",
    "interval_from_resamples",
    "nested_samples",
    "population_se",
    "resampled_curves",
]

MIN_UNITS = 8  # a class needs units in every quarter-sample: at least 8 per class
RATE_BOUNDS = (1.0 + math.sqrt(2.0), 5.0)  # last guard on rho = V_q / V_h: rate a in [0.5, 2]


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
        units: Sequence[Hashable] | np.ndarray,
        strata: Sequence[Hashable] | np.ndarray | None = None,
        within: str | None = None,
    ) -> ResampleUnits:
        """Integer-coded units (and strata) from any hashable ids."""
        codes, _ = encode_labels(list(units), None, "units")
        s = None if strata is None else encode_labels(list(strata), len(codes), "strata")[0]
        return cls(codes, s, unit, within)

    @property
    def n_units(self) -> int:
        """How many distinct units there are to halve."""
        return len(np.unique(self.units))

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
    whole = classes_are_units(codes, ru)
    if whole and ru.n_units < MIN_UNITS:
        raise ConvexityInputError(
            f"{name}: {ru.n_units} {ru.unit}s; half-sampling {ru.describe()} needs at least "
            f"{MIN_UNITS}"
        )
    for c in () if whole else np.flatnonzero(counts >= 2):
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


def classes_are_units(codes: np.ndarray, ru: ResampleUnits) -> bool:
    """Whether every unit is one whole class (speaker labels halved by speaker): half-samples then
    draw classes, and it is the number of classes that must allow it."""
    pairs = np.unique(np.stack([codes, ru.units]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def class_units(ru: ResampleUnits) -> ResampleUnits | None:
    """Units that draw whole strata (e.g. whole speakers) instead of clips within each, or None
    when ``ru`` has no strata."""
    if ru.strata is None or not ru.within:
        return None
    return ResampleUnits(ru.strata, None, ru.within)


def half_samples(ru: ResampleUnits, n_resamples: int, seed: int = 0) -> list[np.ndarray]:
    """Sorted point indices of each half-sample: half of the units of every stratum, without
    replacement; half-sample b is seeded by (seed, b), so more resamples keep the first ones."""
    return [half for half, _ in nested_samples(ru, n_resamples, seed)]


def nested_samples(
    ru: ResampleUnits, n_resamples: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(half-sample, quarter-sample inside it) point indices for b = 0..n_resamples - 1."""
    out = []
    groups = _groups(ru)
    for b in range(n_resamples):
        rng = np.random.default_rng([int(seed), b])
        halves = [rng.choice(g, len(g) // 2, replace=False) for g in groups]
        quarters = [rng.choice(h, len(h) // 2, replace=False) for h in halves]
        out.append(
            (
                np.flatnonzero(np.isin(ru.units, np.concatenate(halves))),
                np.flatnonzero(np.isin(ru.units, np.concatenate(quarters))),
            )
        )
    return out


@dataclass(frozen=True)
class PopulationSE(Record):
    """Per layer: the population SE at the full N, the variance rate a it used, the layer's own
    rate before the guard, and whether the last guard on the rate still acted."""

    se: tuple[float, ...]
    rate: tuple[float, ...]
    raw_rate: tuple[float, ...]
    clamped: tuple[bool, ...]


def _spread(table: np.ndarray, sems: np.ndarray | None) -> np.ndarray:
    """Variance over the rows less the rows' mean squared design SE (never below 0)."""
    v = np.var(table, axis=0, ddof=1)
    if sems is not None and np.size(sems):
        v = np.maximum(v - np.mean(np.asarray(sems, dtype=np.float64) ** 2, axis=0), 0.0)
    return v


def population_se(
    halves: np.ndarray,
    quarters: np.ndarray | None,
    half_sems: np.ndarray | None = None,
    quarter_sems: np.ndarray | None = None,
) -> PopulationSE:
    """Population SE at the full N with the variance rate per layer from (B, layers) sub-sample
    scores (module docstring: each layer's own rate, held to a in [0.5, 2], the guard reported).

    ``*_sems``: the sub-samples' own design SEs (sampled estimates); their mean square is the part
    of each spread that is estimator noise, not population spread, and is subtracted. Without
    quarter-samples the rate is taken as 1 (the plain delete-d jackknife).
    """
    h = np.asarray(halves, dtype=np.float64)
    v_h = _spread(h, half_sems)
    if quarters is None:
        ones = tuple(1.0 for _ in v_h)
        return PopulationSE(tuple(float(v) for v in np.sqrt(v_h)), ones, ones, (False,) * len(v_h))
    v_q = _spread(np.asarray(quarters, dtype=np.float64), quarter_sems)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(v_h > 0, v_q / v_h, 3.0)
    clamped = ((raw < RATE_BOUNDS[0]) | (raw > RATE_BOUNDS[1])) & (v_h > 0)
    rho = np.clip(raw, *RATE_BOUNDS)
    return PopulationSE(
        se=tuple(float(v) for v in np.sqrt(v_h / (rho - 2.0))),
        rate=tuple(float(v) for v in np.log2(rho - 1.0)),
        raw_rate=tuple(float(v) for v in np.log2(np.maximum(raw - 1.0, 1e-12))),
        clamped=tuple(bool(c) for c in clamped),
    )


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
    resample_scores: tuple[tuple[float, ...], ...]  # (resamples, layers): half-samples
    level: float
    seed: int
    scheme: str  # e.g. "half-samples: half of the speakers"
    quarter_scores: tuple[tuple[float, ...], ...] = ()  # (resamples, layers): nested quarters
    rate: tuple[float, ...] = ()  # variance rate a per layer (Var ~ n^-a), held to [0.5, 2]
    raw_rate: tuple[float, ...] = ()  # each layer's own rate before the guard
    rate_clamped: tuple[bool, ...] = ()  # whether the last guard on the rate acted (docstring)
    question: str = ""  # what it is an interval of, in words (``core.geometry.interval_kinds``)
    half_sems: tuple[tuple[float, ...], ...] = ()  # the sub-samples' own design SEs
    quarter_sems: tuple[tuple[float, ...], ...] = ()
    dof: int = 0  # degrees of freedom of the t quantile (0: n_resamples - 1)

    @property
    def degenerate(self) -> tuple[bool, ...]:
        """Per layer: every half-sample scored the same (e.g. a perfect 1.0): a zero-width interval."""
        return tuple(s == 0.0 for s in self.se)

    @property
    def n_resamples(self) -> int:
        """Number of half-samples behind the interval."""
        return len(self.resample_scores)

    @property
    def degrees(self) -> int:
        """Degrees of freedom of the interval's t quantile."""
        return self.dof or self.n_resamples - 1

    def guard_note(self) -> str:
        """Where the last guard on the variance rate still acted, in words ('' where nowhere)."""
        held = [layer for layer, c in zip(self.layers, self.rate_clamped, strict=False) if c]
        if not held:
            return ""
        where = ", ".join(str(i) for i in held)
        return (
            f"variance rate held to its bound (a in [0.5, 2]) on hidden state"
            f"{'s' if len(held) > 1 else ''} {where}: the interval there rests on the bound"
        )


def interval_from_resamples(
    name: str,
    full: ConvexityCurve | Sequence[float] | np.ndarray,
    resampled: np.ndarray,
    *,
    level: float,
    seed: int,
    scheme: str,
    layers: Sequence[int] | None = None,
    quarters: np.ndarray | None = None,
    half_sems: np.ndarray | None = None,
    quarter_sems: np.ndarray | None = None,
    n_units: int | None = None,
    question: str = "",
) -> CurveInterval:
    """The interval of one curve from its full-data scores and (B, layers) half-sample scores (and
    their nested quarter-samples' scores, which measure the variance rate); ``n_units``: how many
    units were halved (caps the degrees of freedom, module docstring)."""
    if layers is None:
        if not isinstance(full, ConvexityCurve):
            raise ConvexityInputError(f"{name}: plain full-data scores need their layers")
        layers = full.layers
    score = np.asarray(full.scores if isinstance(full, ConvexityCurve) else full, dtype=np.float64)
    table = np.asarray(resampled, dtype=np.float64)
    pse = population_se(table, quarters, half_sems, quarter_sems)
    se = np.asarray(pse.se)
    dof = table.shape[0] - 1 if n_units is None else max(1, min(table.shape[0], n_units) - 1)
    half = stats.t.ppf(0.5 + level / 2, dof) * se
    return CurveInterval(
        label_set=name,
        layers=tuple(int(i) for i in layers),
        score=tuple(float(v) for v in score),
        low=tuple(float(v) for v in score - half),
        high=tuple(float(v) for v in score + half),
        se=tuple(float(v) for v in se),
        resample_scores=tuple(tuple(float(v) for v in row) for row in table),
        level=float(level),
        seed=int(seed),
        scheme=scheme,
        quarter_scores=()
        if quarters is None
        else tuple(tuple(float(v) for v in row) for row in np.asarray(quarters)),
        rate=pse.rate,
        raw_rate=pse.raw_rate,
        rate_clamped=pse.clamped,
        question=question,
        half_sems=_rows(half_sems),
        quarter_sems=_rows(quarter_sems),
        dof=dof,
    )


def _rows(table: np.ndarray | None) -> tuple[tuple[float, ...], ...]:
    """A (B, layers) array as nested tuples (empty for None)."""
    return () if table is None else tuple(tuple(float(v) for v in row) for row in np.asarray(table))


def design_groups(names: Sequence[str], units: Mapping[str, ResampleUnits]) -> list[list[str]]:
    """Label sets grouped by identical units: each group shares its half-samples' engine calls."""
    groups: dict[tuple, list[str]] = {}
    for name in names:
        ru = units[name]
        strata = None if ru.strata is None else ru.strata.tobytes()
        groups.setdefault((ru.unit, ru.within, ru.units.tobytes(), strata), []).append(name)
    return list(groups.values())


def resampled_curves(
    features: np.ndarray | torch.Tensor,
    labels: Mapping[str, Sequence[Hashable] | np.ndarray],
    units: Mapping[str, ResampleUnits],
    n_resamples: int,
    options: ConvexityOptions = DEFAULT_OPTIONS,
    *,
    resample_seed: int = 0,
    layers: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, tuple[np.ndarray, ...]]:
    """Label set -> (half-sample scores, nested quarter-sample scores, their design SEs), each
    (B, layers), every curve estimated with ``options``.

    Label sets with the same units share each half-sample's engine call (graphs and trees);
    ``progress(layers_done)`` is called after every engine call with the layers it computed.
    """
    groups = design_groups(list(labels), units)
    arrays = {name: np.asarray(lab) for name, lab in labels.items()}
    out: dict[str, list[list]] = {name: [[], [], [], []] for name in labels}
    for names in groups:
        for pair in nested_samples(units[names[0]], n_resamples, resample_seed):
            for which, idx in enumerate(pair):
                x = np.ascontiguousarray(features[idx])
                sub = {n: arrays[n][idx] for n in names}
                curves = layerwise_convexity(x, sub, options, layers=layers)
                for n in names:
                    out[n][which].append(curves[n].scores)
                    out[n][2 + which].append(curves[n].sems)
                if progress is not None:
                    progress(len(next(iter(curves.values())).layers))
    return {name: tuple(np.array(part) for part in parts) for name, parts in out.items()}
