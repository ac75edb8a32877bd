"""Everything needed to trust a convexity curve: chance level, population interval, prune-point stability.

One call per feature set: (1) the real curves and K permuted-label curves in one engine call
(``core.geometry.chance``); (2) B half-samples of the dataset's units (``core.geometry.resampling``);
(3) the curve again with other estimator seeds when it is sampled; (4) both prune rules on all of them
(``core.geometry.prune_stability``). What to compute comes as one ``StatisticsOptions`` record, which
is also the results store's request for this kind (``key_fields``).

Label sets resampled by clips within strata (speaker labels: clips within each speaker) get a second
interval that draws whole strata instead, because "the same speakers with other recordings" and
"other speakers" are different questions (``core.geometry.interval_kinds``). Speakers are then the
classes, and the score moves with their count, so that interval is of the mean score of other sets
of *half* as many speakers, and says so (``core.geometry.rarefaction``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ConvexityInputError
from core.geometry.chance import ChanceLevel, chance_curves
from core.geometry.convexity import ConvexityCurve, layerwise_convexity
from core.geometry.interval_kinds import interval_kind
from core.geometry.limits import MAX_SEEDS
from core.geometry.options import (
    DEFAULT_OPTIONS,
    DEFAULT_STATISTICS,
    ConvexityOptions,
    StatisticsOptions,
)
from core.geometry.prune_stability import PruneStability, prune_stability
from core.geometry.rarefaction import rarefied_interval
from core.geometry.resampling import (
    CurveInterval,
    ResampleUnits,
    check_half_sampling,
    class_units,
    design_groups,
    interval_from_resamples,
    resampled_curves,
)
from core.geometry.validation import as_features
from core.io.records import Record

if TYPE_CHECKING:
    import torch

__all__ = [
    "CurveStatistics",
    "LabelSetStatistics",
    "StatisticsPlan",
    "curve_statistics",
    "pseudo_scale",
    "statistics_plan",
    "MAX_SEEDS",
]

ENGINE_VERSION = "4"  # of the stored figures; bump when they change (4: other speakers at half)


Progress = Callable[[int, int], None]
Units = Callable[[float, float], None]

# Cost of one layer of each part, in layers of the real curves alone (both label sets, one engine
# call), measured with bench/curve_statistics.py on the sample (tiny.en and base agree within 10 %):
# the curve with its chance level tracks 23 label sets per tree (1.5x); a seed curve is the curve
# again (1x); a half- or quarter-sample curve has fewer points and one design (0.23x).
PHASE_COST = {"curve_and_chance": 1.5, "curve": 1.0, "seeds": 1.0, "resamples": 0.23}


@dataclass(frozen=True)
class StatisticsPlan(Record):
    """The layer steps of one ``curve_statistics`` call per part, with their relative costs, so
    time left is estimated from measured seconds per unit of work rather than per step."""

    steps: dict[str, int]  # part -> layer steps
    cost: dict[str, float]  # part -> cost of one step, in real-curve layers

    @property
    def units(self) -> float:
        """The whole call's work, in real-curve layers."""
        return float(sum(n * self.cost[part] for part, n in self.steps.items()))

    @property
    def n_steps(self) -> int:
        """Layer steps over all engine calls."""
        return int(sum(self.steps.values()))

    def seconds(self, curve_seconds: float, n_layers: int) -> float:
        """Expected seconds from the measured seconds of the real curves alone over ``n_layers``."""
        return self.units * curve_seconds / max(n_layers, 1)


def statistics_plan(
    n_layers: int, n_permutations: int, n_resamples: int, n_seeds: int, n_designs: int
) -> StatisticsPlan:
    """The parts of a ``curve_statistics`` call of ``n_layers`` layers (seeds assumed needed:
    a call whose curves turn out exact skips them, and its plan shrinks then)."""
    first = "curve_and_chance" if n_permutations else "curve"
    steps = {
        first: n_layers,
        "seeds": n_layers * n_seeds,
        "resamples": n_layers * 2 * n_resamples * n_designs,
    }
    return StatisticsPlan(steps, {part: PHASE_COST[part] for part in steps})


@dataclass(frozen=True)
class LabelSetStatistics(Record):
    """One label set's curve with its chance level, population interval and prune-point stability."""

    label_set: str
    layers: tuple[int, ...]
    scores: tuple[float, ...]
    sems: tuple[float, ...]  # design SE of the full-data estimate (0 where exact)
    exact: tuple[bool, ...]
    n_points: int
    n_classes: int
    chance: ChanceLevel | None = None
    interval: CurveInterval | None = None  # as resampled by the label set's own units
    stability: PruneStability | None = None
    other_speakers: CurveInterval | None = None  # speaker labels: whole speakers drawn
    seed_scores: tuple[tuple[float, ...], ...] = ()  # (seeds, layers): the estimator's other seeds

    def intervals(self) -> dict[str, CurveInterval]:
        """Every interval of this label set by the name of the question it answers."""
        out = {}
        for iv in (self.interval, self.other_speakers):
            if iv is not None:
                out[iv.question or iv.scheme] = iv
        return out

    def normalised(self) -> np.ndarray:
        """(score - chance) / (1 - chance) per layer (NaN without a chance level)."""
        from core.geometry.chance import chance_normalised

        if self.chance is None:
            return np.full(len(self.scores), np.nan)
        return chance_normalised(self.scores, self.chance.mean)

    def stability_at(self, fraction: float) -> PruneStability | None:
        """Prune-point stability with the threshold rule at ``fraction`` of the maximum, from the
        stored half-sample and seed curves (the local-peak rule does not depend on it)."""
        if self.stability is None or abs(fraction - self.stability.fraction) < 1e-9:
            return self.stability
        iv = self.interval
        again = prune_stability(
            self.label_set,
            self.layers,
            self.scores,
            self.sems,
            iv.resample_scores if iv is not None else (),
            self.seed_scores,
            (),
            fraction,
            scale=pseudo_scale(iv),
            level=self.stability.threshold.level,
        )
        return replace(again, local_peak=self.stability.local_peak)


@dataclass(frozen=True)
class CurveStatistics(Record):
    """Curve statistics of several label sets of one feature set, with what produced them."""

    sets: dict[str, LabelSetStatistics]
    settings: dict[str, Any]
    seconds: dict[str, float]
    order: tuple[str, ...] = ()  # the caller's order of label sets (JSON objects come back sorted)

    def ordered(self) -> list[LabelSetStatistics]:
        """The label sets in the caller's order."""
        names = [n for n in self.order if n in self.sets] or list(self.sets)
        return [self.sets[n] for n in names]


def curve_statistics(
    features: Any,
    labels: Mapping[str, Sequence[Hashable] | np.ndarray],
    units: Mapping[str, ResampleUnits],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    statistics: StatisticsOptions = DEFAULT_STATISTICS,
    *,
    progress: Progress | None = None,
    on_units: Units | None = None,
) -> CurveStatistics:
    """Chance levels, population intervals (half-samples of ``units[name]``, and of whole strata
    where the units are clips within strata), prune-point stability over resamples and other
    estimator seeds (skipped where the curve is exact), for every label set of ``features``
    (N, L+1, D), as ``statistics`` asks.

    ``options`` (k, precision, seed, device) apply to every curve computed here; the seed curves use
    seeds ``options.seed + 1..n_seeds``. ``progress(done, total)`` counts layers over all engine calls;
    ``on_units(done, total)`` the same work weighted by each part's cost (``StatisticsPlan``), for an
    honest time left.
    """
    _check_request(labels, units, statistics)
    job = _job(features, labels, units, options, statistics)
    counter = _LayerCounter(_job_plan(job), progress, on_units)
    seconds: dict[str, float] = {}
    t_start = t0 = time.perf_counter()
    real, chance = _real_curves(job, counter)
    seconds["curve_and_chance"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sampled = any(not all(c.exact) for c in real.values())
    seed_curves = _seed_curves(job, sampled, counter)
    seconds["seeds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    resampled = _resampled(job, counter)
    seconds["resamples"] = time.perf_counter() - t0
    curves = _Curves(real, chance, seed_curves, resampled, sampled)
    sets = _all_label_sets(job, curves)
    seconds["total"] = time.perf_counter() - t_start
    return CurveStatistics(sets, _settings(job, curves), seconds, tuple(labels))


@dataclass(frozen=True)
class _Job:
    """One ``curve_statistics`` call's checked inputs: features, label sets, units and options."""

    x: torch.Tensor  # (N, layers, D)
    labels: Mapping[str, Sequence[Hashable] | np.ndarray]
    units: Mapping[str, ResampleUnits]
    options: ConvexityOptions
    statistics: StatisticsOptions
    layers: list[int]  # the layers every curve is computed at
    # whole-strata units of the label sets that have a second interval
    others: dict[str, ResampleUnits]

    @property
    def resample_labels(self) -> dict[str, Sequence[Hashable] | np.ndarray]:
        """The label sets half-sampled: each by its own units, and again by whole strata."""
        return dict(self.labels) | {_other(n): self.labels[n] for n in self.others}

    @property
    def resample_units(self) -> dict[str, ResampleUnits]:
        """The units of :attr:`resample_labels`."""
        return dict(self.units) | {_other(n): u for n, u in self.others.items()}


@dataclass(frozen=True)
class _Curves:
    """What the engine calls of one job returned: the real curves, chance levels, seed curves and
    sub-sample scores, and whether the real curves are sampled (so the seed curves were needed)."""

    real: dict[str, ConvexityCurve]
    chance: dict[str, ChanceLevel]
    seeds: list[dict[str, ConvexityCurve]]
    resampled: dict[str, tuple[np.ndarray, ...]]
    sampled: bool


def _job(
    features: Any,
    labels: Mapping[str, Sequence[Hashable] | np.ndarray],
    units: Mapping[str, ResampleUnits],
    options: ConvexityOptions,
    statistics: StatisticsOptions,
) -> _Job:
    """The features as an array, the chosen layers and the second-interval units, in one record."""
    x = as_features(features, "N, layers, D")
    chosen = list(range(x.shape[1])) if statistics.layers is None else list(statistics.layers)
    others = _other_units(labels, units, statistics.n_resamples)
    return _Job(x, labels, units, options, statistics, chosen, others)


def _job_plan(job: _Job) -> StatisticsPlan:
    """The layer steps of ``job``'s engine calls, for its progress counter."""
    st = job.statistics
    n_designs = (
        len(design_groups(list(job.resample_labels), job.resample_units)) if st.n_resamples else 0
    )
    return statistics_plan(
        len(job.layers), st.n_permutations, st.n_resamples, st.n_seeds, n_designs
    )


def _real_curves(
    job: _Job, counter: _LayerCounter
) -> tuple[dict[str, ConvexityCurve], dict[str, ChanceLevel]]:
    """The real curves with their chance levels in one engine call (no chance without permutations)."""
    st = job.statistics
    if st.n_permutations:
        return chance_curves(
            job.x,
            job.labels,
            job.options,
            n_permutations=st.n_permutations,
            permutation_seed=st.permutation_seed,
            layers=job.layers,
            progress=counter.engine("curve_and_chance"),
        )
    real = layerwise_convexity(
        job.x, dict(job.labels), job.options, layers=job.layers, progress=counter.engine("curve")
    )
    return real, {}


def _seed_curves(
    job: _Job, sampled: bool, counter: _LayerCounter
) -> list[dict[str, ConvexityCurve]]:
    """The curves again with estimator seeds ``options.seed + 1..n_seeds``; none where they are exact."""
    if not sampled:
        counter.skip("seeds")
    return [
        layerwise_convexity(
            job.x,
            dict(job.labels),
            job.options.with_(seed=job.options.seed + j),
            layers=job.layers,
            progress=counter.engine("seeds"),
        )
        for j in range(1, job.statistics.n_seeds + 1 if sampled else 1)
    ]


def _resampled(job: _Job, counter: _LayerCounter) -> dict[str, tuple[np.ndarray, ...]]:
    """Every label set's half- and quarter-sample scores (none without resamples)."""
    st = job.statistics
    if not st.n_resamples:
        return {}
    return resampled_curves(
        job.x,
        job.resample_labels,
        job.resample_units,
        st.n_resamples,
        job.options,
        resample_seed=st.resample_seed,
        layers=job.layers,
        progress=counter.part("resamples"),
    )


def _all_label_sets(job: _Job, curves: _Curves) -> dict[str, LabelSetStatistics]:
    """Each label set's statistics, in the order of the real curves."""
    st = job.statistics
    return {
        name: _label_set_statistics(
            curve,
            curves.chance.get(name),
            curves.resampled.get(name),
            [sc[name] for sc in curves.seeds],
            n_points=int(job.x.shape[0]),
            statistics=st,
            units=job.units[name] if st.n_resamples else None,
            other=(job.others[name], curves.resampled[_other(name)])
            if name in job.others
            else None,
        )
        for name, curve in curves.real.items()
    }


def _settings(job: _Job, curves: _Curves) -> dict[str, Any]:
    """What produced the statistics: the request, the seeds used, the schemes and the engine's settings."""
    st = job.statistics
    schemes = {n: _scheme(job.units[n]) if st.n_resamples else None for n in job.labels}
    engine_settings = dict(next(iter(curves.real.values())).results[0].settings)
    engine_settings.pop("layer", None)
    engine_settings.pop("n_shortest_path_trees", None)
    return {k: v for k, v in st.key_fields().items() if k != "layers"} | {
        "n_seeds": st.n_seeds if curves.sampled else 0,
        "scheme": schemes,
        "engine": engine_settings,
    }


OTHER = "@other-speakers"  # names a label set's whole-strata resampling in the engine calls


def _other(name: str) -> str:
    return name + OTHER


def _other_units(
    labels: Mapping[str, Sequence[Hashable] | np.ndarray],
    units: Mapping[str, ResampleUnits],
    n_resamples: int,
) -> dict[str, ResampleUnits]:
    """Label sets resampled by clips within strata whose strata can also be half-sampled whole:
    their second interval's units (other speakers, same count)."""
    out: dict[str, ResampleUnits] = {}
    if not n_resamples:
        return out
    for name, lab in labels.items():
        whole = class_units(units[name])
        if whole is None:
            continue
        try:
            check_half_sampling(lab, whole, n_resamples, name)
        except ConvexityInputError:
            continue  # too few speakers for it: the label set keeps its own interval only
        out[name] = whole
    return out


def _check_request(
    labels: Mapping[str, Sequence[Hashable] | np.ndarray],
    units: Mapping[str, ResampleUnits],
    statistics: StatisticsOptions,
) -> None:
    """One clear line for a request that cannot be answered, before any engine call."""
    if statistics.n_resamples:
        for name, lab in labels.items():
            if name not in units:
                raise ConvexityInputError(f"no resampling units given for label set {name!r}")
            check_half_sampling(lab, units[name], statistics.n_resamples, name)


def _scheme(units: ResampleUnits) -> str:
    """The interval's scheme as captions and settings name it."""
    return f"half-samples: {units.describe()}"


def _interval(
    curve: ConvexityCurve,
    resampled: tuple[np.ndarray, ...],
    units: ResampleUnits,
    statistics: StatisticsOptions,
) -> CurveInterval:
    """One population interval of ``curve`` from its sub-samples' scores."""
    halves, quarters, half_sems, quarter_sems = resampled
    return interval_from_resamples(
        curve.name,
        curve,
        halves,
        quarters=quarters,
        half_sems=half_sems,
        quarter_sems=quarter_sems,
        level=statistics.level,
        seed=statistics.resample_seed,
        scheme=_scheme(units),
        n_units=units.n_units,
        question=interval_kind(units).name,
    )


def pseudo_scale(interval: CurveInterval | None) -> np.ndarray | None:
    """Per layer: the interval's population SE over the sd of its half-sample scores, which maps a
    half-sample's deviation to a dataset of the full size (``prune_stability``); None without one."""
    if interval is None or interval.n_resamples < 2:
        return None
    sd = np.std(np.asarray(interval.resample_scores), axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, np.asarray(interval.se) / sd, 0.0)


def _label_set_statistics(
    curve: ConvexityCurve,
    chance: ChanceLevel | None,
    resampled: tuple[np.ndarray, ...] | None,
    seed_curves: list[ConvexityCurve],
    *,
    n_points: int,
    statistics: StatisticsOptions,
    units: ResampleUnits | None,
    other: tuple[ResampleUnits, tuple[np.ndarray, ...]] | None = None,
) -> LabelSetStatistics:
    """One label set's statistics from its curve, chance level, sub-sample scores and seed curves
    (``other``: the units and sub-sample scores of its whole-strata interval)."""
    name = curve.name
    interval = None
    if resampled is not None and units is not None:
        interval = _interval(curve, resampled, units, statistics)
    seed_scores = [sc.scores for sc in seed_curves]
    stability = None
    if len(curve.layers) >= 2 and min(curve.layers) == 0:
        stability = prune_stability(
            name,
            curve.layers,
            curve.scores,
            curve.sems,
            resampled[0] if resampled is not None else (),
            seed_scores,
            [sc.sems for sc in seed_curves],
            statistics.fraction,
            scale=pseudo_scale(interval),
            level=statistics.level,
        )
    return LabelSetStatistics(
        label_set=name,
        layers=tuple(int(i) for i in curve.layers),
        scores=tuple(float(v) for v in curve.scores),
        sems=tuple(float(v) for v in curve.sems),
        exact=tuple(bool(e) for e in curve.exact),
        n_points=n_points,
        n_classes=len(curve.results[0].per_class),
        chance=chance,
        interval=interval,
        stability=stability,
        seed_scores=tuple(tuple(float(v) for v in row) for row in seed_scores),
        other_speakers=None if other is None else _other_interval(curve, *other, statistics),
    )


def _other_interval(
    curve: ConvexityCurve,
    units: ResampleUnits,
    resampled: tuple[np.ndarray, ...],
    statistics: StatisticsOptions,
) -> CurveInterval:
    """The "other speakers" interval: speakers are the classes, so the score moves with their count
    and half-samples of them cannot be scaled back to the full count; the interval is of the mean
    score at half the count instead, centred on the half-samples' mean (``core.geometry.rarefaction``)."""
    n = units.n_units
    return rarefied_interval(
        curve.name,
        curve.layers,
        resampled[0],
        share=(n // 2) / n,
        n_units=n,
        level=statistics.level,
        seed=statistics.resample_seed,
        scheme=f"half-samples: {n // 2} of the {n} {units.unit}s, mean over them",
        question=interval_kind(units, classes=True).name,
    )


class _LayerCounter:
    """Layers done over all engine calls, reported to ``progress(done, total)`` and, weighted by
    each part's cost, to ``on_units(done, total)``."""

    def __init__(self, plan: StatisticsPlan, progress: Progress | None, on_units: Units | None):
        self.steps = dict(plan.steps)
        self.cost = dict(plan.cost)
        self.done = 0
        self.units = 0.0
        self.progress = progress
        self.on_units = on_units

    @property
    def total(self) -> int:
        return int(sum(self.steps.values()))

    def skip(self, part: str) -> None:
        """A part that turned out not to be needed leaves the totals."""
        self.steps[part] = 0

    def tick(self, part: str, n: int) -> None:
        """``n`` more layers of ``part`` are done."""
        self.done += n
        self.units += n * self.cost[part]
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)
        if self.on_units is not None:
            total = sum(k * self.cost[p] for p, k in self.steps.items())
            self.on_units(min(self.units, total), total)

    def part(self, part: str) -> Callable[[int], None]:
        """A callback for ``n`` more layers of ``part``."""
        return lambda n: self.tick(part, n)

    def engine(self, part: str) -> Progress:
        """An engine progress callback (done, total of its own call) that forwards each layer."""
        last = [0]

        def cb(done: int, _total: int) -> None:
            self.tick(part, done - last[0])
            last[0] = done

        return cb
