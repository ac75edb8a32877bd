"""Everything needed to trust a convexity curve: chance level, population interval, prune-point stability.

One call per feature set: (1) the real curves and K permuted-label curves in one engine call
(``core.geometry.chance``); (2) B half-samples of the dataset's units (``core.geometry.resampling``);
(3) the curve again with other estimator seeds when it is sampled; (4) both prune rules on all of them
(``core.geometry.prune_stability``). The keywords of :func:`curve_statistics` (less the runtime ones)
are the results store's request for this kind, so a new option changes the key without other edits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core.errors import ConvexityInputError
from core.geometry.chance import MAX_PERMUTATIONS, ChanceLevel, chance_curves
from core.geometry.convexity import ConvexityCurve, layerwise_convexity
from core.geometry.limits import MAX_SEEDS
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.geometry.prune_stability import PruneStability, prune_stability
from core.geometry.resampling import (
    CurveInterval,
    ResampleUnits,
    check_half_sampling,
    design_groups,
    interval_from_resamples,
    resampled_curves,
)
from core.geometry.validation import as_features
from core.io.records import Record

__all__ = [
    "CurveStatistics",
    "LabelSetStatistics",
    "StatisticsPlan",
    "curve_statistics",
    "statistics_plan",
    "MAX_SEEDS",
]

ENGINE_VERSION = "2"  # of the stored figures; bump when they change


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
    interval: CurveInterval | None = None
    stability: PruneStability | None = None
    seed_scores: tuple[tuple[float, ...], ...] = ()  # (seeds, layers): the estimator's other seeds

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
        again = prune_stability(
            self.label_set,
            self.layers,
            self.scores,
            self.sems,
            self.interval.resample_scores if self.interval is not None else (),
            self.seed_scores,
            (),
            fraction,
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
    *,
    n_permutations: int = 10,
    permutation_seed: int = 0,
    n_resamples: int = 20,
    resample_seed: int = 0,
    n_seeds: int = 5,
    level: float = 0.9,
    fraction: float = 0.95,
    layers: Sequence[int] | None = None,
    progress: Progress | None = None,
    on_units: Units | None = None,
) -> CurveStatistics:
    """Chance levels (``n_permutations``; 0 skips), population intervals (``n_resamples`` half-samples
    of ``units[name]``; 0 skips), prune-point stability over resamples and ``n_seeds`` other estimator
    seeds (skipped where the curve is exact), for every label set of ``features`` (N, L+1, D).

    ``options`` (k, precision, seed, device) apply to every curve computed here; the seed curves use
    seeds ``options.seed + 1..n_seeds``. ``progress(done, total)`` counts layers over all engine calls;
    ``on_units(done, total)`` the same work weighted by each part's cost (``StatisticsPlan``), for an
    honest time left.
    """
    _check_request(labels, units, n_permutations, n_resamples, n_seeds, level)
    x = as_features(features, "N, layers, D")
    chosen = list(range(x.shape[1])) if layers is None else [int(i) for i in layers]
    n_designs = len(design_groups(list(labels), units)) if n_resamples else 0
    plan = statistics_plan(len(chosen), n_permutations, n_resamples, n_seeds, n_designs)
    counter = _LayerCounter(plan, progress, on_units)
    seconds: dict[str, float] = {}
    t_start = t0 = time.perf_counter()
    if n_permutations:
        real, chance = chance_curves(
            x,
            labels,
            options,
            n_permutations=n_permutations,
            permutation_seed=permutation_seed,
            layers=chosen,
            progress=counter.engine("curve_and_chance"),
        )
    else:
        real = layerwise_convexity(
            x, dict(labels), options, layers=chosen, progress=counter.engine("curve")
        )
        chance = {}
    seconds["curve_and_chance"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sampled = any(not all(c.exact) for c in real.values())
    if not sampled:
        counter.skip("seeds")
    seed_curves = [
        layerwise_convexity(
            x,
            dict(labels),
            options.with_(seed=options.seed + j),
            layers=chosen,
            progress=counter.engine("seeds"),
        )
        for j in range(1, n_seeds + 1 if sampled else 1)
    ]
    seconds["seeds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    resampled = (
        resampled_curves(
            x,
            labels,
            units,
            n_resamples,
            options,
            resample_seed=resample_seed,
            layers=chosen,
            progress=counter.part("resamples"),
        )
        if n_resamples
        else {}
    )
    seconds["resamples"] = time.perf_counter() - t0
    schemes = {n: _scheme(units[n]) if n_resamples else None for n in labels}
    sets = {
        name: _label_set_statistics(
            curve,
            chance.get(name),
            resampled.get(name),
            [sc[name] for sc in seed_curves],
            n_points=int(x.shape[0]),
            level=level,
            fraction=fraction,
            resample_seed=resample_seed,
            units=units[name] if n_resamples else None,
        )
        for name, curve in real.items()
    }
    seconds["total"] = time.perf_counter() - t_start
    engine_settings = dict(next(iter(real.values())).results[0].settings)
    engine_settings.pop("layer", None)
    engine_settings.pop("n_shortest_path_trees", None)
    settings = {
        "n_permutations": n_permutations,
        "permutation_seed": permutation_seed,
        "n_resamples": n_resamples,
        "resample_seed": resample_seed,
        "n_seeds": n_seeds if sampled else 0,
        "level": level,
        "fraction": fraction,
        "scheme": schemes,
        "engine": engine_settings,
    }
    return CurveStatistics(sets, settings, seconds, tuple(labels))


def _check_request(
    labels: Mapping[str, Sequence[Hashable] | np.ndarray],
    units: Mapping[str, ResampleUnits],
    n_permutations: int,
    n_resamples: int,
    n_seeds: int,
    level: float,
) -> None:
    """One clear line for a request that cannot be answered, before any engine call."""
    if not 0.5 <= level < 1.0:
        raise ConvexityInputError(f"interval level must lie in [0.5, 1), got {level!r}")
    if n_permutations and not 2 <= n_permutations <= MAX_PERMUTATIONS:
        raise ConvexityInputError(
            f"chance level needs 2 to {MAX_PERMUTATIONS} permutations (or 0), got {n_permutations}"
        )
    if not 0 <= n_seeds <= MAX_SEEDS:
        raise ConvexityInputError(f"estimator seeds must lie in 0..{MAX_SEEDS}, got {n_seeds}")
    if n_resamples:
        for name, lab in labels.items():
            if name not in units:
                raise ConvexityInputError(f"no resampling units given for label set {name!r}")
            check_half_sampling(lab, units[name], n_resamples, name)


def _scheme(units: ResampleUnits) -> str:
    """The interval's scheme as captions and settings name it."""
    return f"half-samples: {units.describe()}"


def _label_set_statistics(
    curve: ConvexityCurve,
    chance: ChanceLevel | None,
    resampled: tuple[np.ndarray, ...] | None,
    seed_curves: list[ConvexityCurve],
    *,
    n_points: int,
    level: float,
    fraction: float,
    resample_seed: int,
    units: ResampleUnits | None,
) -> LabelSetStatistics:
    """One label set's statistics from its curve, chance level, sub-sample scores and seed curves."""
    name = curve.name
    interval = None
    if resampled is not None and units is not None:
        halves, quarters, half_sems, quarter_sems = resampled
        interval = interval_from_resamples(
            name,
            curve,
            halves,
            quarters=quarters,
            half_sems=half_sems,
            quarter_sems=quarter_sems,
            level=level,
            seed=resample_seed,
            scheme=_scheme(units),
            n_units=units.n_units,
        )
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
            fraction,
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
