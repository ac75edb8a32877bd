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
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ConvexityInputError
from core.geometry.chance import MAX_PERMUTATIONS, ChanceLevel, chance_curves
from core.geometry.convexity import EXACT_THRESHOLD, ConvexityCurve, layerwise_convexity
from core.geometry.limits import MAX_SEEDS
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

__all__ = ["CurveStatistics", "LabelSetStatistics", "curve_statistics", "MAX_SEEDS"]


Progress = Callable[[int, int], None]


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
    *,
    n_permutations: int = 10,
    permutation_seed: int = 0,
    n_resamples: int = 20,
    resample_seed: int = 0,
    n_seeds: int = 5,
    level: float = 0.9,
    fraction: float = 0.95,
    k: int = 10,
    max_pairs_per_class: int | None = 5000,
    target_se: float | None = None,
    match_pair_precision: bool = True,
    exact_threshold: float = EXACT_THRESHOLD,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    device: Any = None,
    engine: str = "auto",
    progress: Progress | None = None,
) -> CurveStatistics:
    """Chance levels (``n_permutations``; 0 skips), population intervals (``n_resamples`` half-samples
    of ``units[name]``; 0 skips), prune-point stability over resamples and ``n_seeds`` other estimator
    seeds (skipped where the curve is exact), for every label set of ``features`` (N, L+1, D).

    Precision keywords are ``layerwise_convexity``'s and apply to every curve computed here.
    ``progress(done, total)`` counts layers over all engine calls.
    """
    if not 0.5 <= level < 1.0:
        raise ConvexityInputError(f"interval level must lie in [0.5, 1), got {level!r}")
    if n_permutations and not 2 <= n_permutations <= MAX_PERMUTATIONS:
        raise ConvexityInputError(
            f"chance level needs 2 to {MAX_PERMUTATIONS} permutations (or 0), got {n_permutations}"
        )
    if not 0 <= n_seeds <= MAX_SEEDS:
        raise ConvexityInputError(f"estimator seeds must lie in 0..{MAX_SEEDS}, got {n_seeds}")
    x = as_features(features, "N, layers, D")
    if n_resamples:
        for name, lab in labels.items():
            if name not in units:
                raise ConvexityInputError(f"no resampling units given for label set {name!r}")
            check_half_sampling(lab, units[name], n_resamples, name)
    chosen = list(range(x.shape[1])) if layers is None else [int(i) for i in layers]
    eng = dict(
        k=k,
        max_pairs_per_class=max_pairs_per_class,
        target_se=target_se,
        match_pair_precision=match_pair_precision,
        exact_threshold=exact_threshold,
        layers=chosen,
        device=device,
        engine=engine,
    )
    n_designs = len(design_groups(list(labels), units)) if n_resamples else 0
    total = len(chosen) * (1 + n_seeds + 2 * n_resamples * n_designs)
    done = 0
    t_start = time.perf_counter()

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(min(done, total), total)

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    step = _layer_ticker(tick)
    if n_permutations:
        real, chance = chance_curves(
            x,
            labels,
            n_permutations=n_permutations,
            permutation_seed=permutation_seed,
            seed=seed,
            progress=step(),
            **eng,
        )
    else:
        real = layerwise_convexity(x, dict(labels), seed=seed, progress=step(), **eng)
        chance = {}
    seconds["curve_and_chance"] = time.perf_counter() - t0
    sampled = any(not all(c.exact) for c in real.values())
    t0 = time.perf_counter()
    seed_curves: list[dict[str, ConvexityCurve]] = []
    if sampled:
        for j in range(1, n_seeds + 1):
            seed_curves.append(
                layerwise_convexity(x, dict(labels), seed=seed + j, progress=step(), **eng)
            )
    total -= 0 if sampled else len(chosen) * n_seeds
    seconds["seeds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    resampled = (
        resampled_curves(
            x,
            labels,
            units,
            n_resamples,
            resample_seed=resample_seed,
            progress=tick,
            seed=seed,
            **eng,
        )
        if n_resamples
        else {}
    )
    seconds["resamples"] = time.perf_counter() - t0
    sets = {}
    for name, curve in real.items():
        interval = None
        if n_resamples:
            interval = interval_from_resamples(
                name,
                curve,
                resampled[name][0],
                quarters=resampled[name][1],
                half_sems=resampled[name][2],
                quarter_sems=resampled[name][3],
                level=level,
                seed=resample_seed,
                scheme=f"half-samples: {units[name].describe()}",
            )
        seed_scores = [sc[name].scores for sc in seed_curves]
        stability = (
            prune_stability(
                name,
                curve.layers,
                curve.scores,
                curve.sems,
                resampled[name][0] if name in resampled else (),
                seed_scores,
                [sc[name].sems for sc in seed_curves],
                fraction,
            )
            if len(curve.layers) >= 2 and min(curve.layers) == 0
            else None
        )
        sets[name] = LabelSetStatistics(
            label_set=name,
            layers=tuple(int(i) for i in curve.layers),
            scores=tuple(float(v) for v in curve.scores),
            sems=tuple(float(v) for v in curve.sems),
            exact=tuple(bool(e) for e in curve.exact),
            n_points=int(x.shape[0]),
            n_classes=len(curve.results[0].per_class),
            chance=chance.get(name),
            interval=interval,
            stability=stability,
            seed_scores=tuple(tuple(float(v) for v in row) for row in seed_scores),
        )
    seconds["total"] = time.perf_counter() - t_start
    settings = {
        "n_permutations": n_permutations,
        "permutation_seed": permutation_seed,
        "n_resamples": n_resamples,
        "resample_seed": resample_seed,
        "n_seeds": n_seeds if sampled else 0,
        "level": level,
        "fraction": fraction,
        "scheme": {
            n: (f"half-samples: {units[n].describe()}" if n_resamples else None) for n in labels
        },
        "engine": dict(next(iter(real.values())).results[0].settings),
    }
    settings["engine"].pop("layer", None)
    settings["engine"].pop("n_shortest_path_trees", None)
    return CurveStatistics(sets, settings, seconds, tuple(labels))


def _layer_ticker(tick: Callable[[int], None]) -> Callable[[], Callable[[int, int], None]]:
    """A factory of engine progress callbacks that forward each finished layer to ``tick``."""

    def make() -> Callable[[int, int], None]:
        last = [0]

        def cb(done: int, total: int) -> None:
            tick(done - last[0])
            last[0] = done

        return cb

    return make
