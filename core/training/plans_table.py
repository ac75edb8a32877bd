"""The plans table: redundancy blocks of a layer-similarity map, how stable they are, and the plans they
imply beside the top-p plans of equal size, each scored without retraining; computed once into the store.

Which plans: the full model; each block's plan (keep its first layer, drop the rest); all blocks
together when there are several; and for each of those the top-p plan keeping as many layers. Each is
scored by :func:`core.training.probe_score.score_plan`.

Block stability: the similarity map is recomputed on seeded half-samples of the clips (the unit the
curve statistics halve: speakers for word labels, clips within each speaker for speaker labels;
``core.results.kinds.resample_units`` and ``core.geometry.resampling.half_samples``), the same rule
(criterion, threshold) finds blocks in each, and each full-data block reports the share of half-samples
in which it reappears exactly and in which its start and its end reappear (``BlockStability``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.data.features import CacheEntry, FeatureSet
from core.errors import Cancelled, ResultError, TrainingError
from core.geometry.criteria import CRITERIA
from core.geometry.redundancy import BlockStability, Redundancy, block_stability, redundancy_blocks
from core.geometry.resampling import half_samples
from core.io.records import Record
from core.models.encoder import SpeechEncoder
from core.models.plans import PruningPlan
from core.results.kinds import resample_units
from core.results.kinds.plans import (
    ENGINE_VERSION,
    PlanScore,
    PlansTable,
    decode_plans,
    plans_entry,
    plans_result_key,
)
from core.training.probe_score import ProbeOptions, reuses_cache, score_plan

__all__ = [
    "DEFAULT_THRESHOLD",
    "SIMILARITY",
    "PlansRequest",
    "StoredPlans",
    "compute_plans_table",
    "half_sample_stability",
    "plans_key",
    "read_plans_table",
    "stored_plans_table",
    "table_plans",
]

SIMILARITY = ("linear_cka", "mutual_knn")
DEFAULT_THRESHOLD = {"linear_cka": 0.9, "mutual_knn": 0.5}
PROBE_COST = 0.05  # fitting and bootstrapping one plan's probes, in clips of a pruned run


@dataclass(frozen=True)
class PlansRequest(Record):
    """What a plans table computes: the similarity map and threshold, the probes, the stability draws."""

    similarity: str = "linear_cka"
    threshold: float | None = None  # None: DEFAULT_THRESHOLD of the similarity
    options: ProbeOptions = field(default_factory=ProbeOptions)
    stability_resamples: int = 20  # 0: no stability
    stability_seed: int = 0
    extra: tuple[tuple[int, ...], ...] = ()  # kept layers of further plans to score (e.g. typed)

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITY:
            raise TrainingError(
                f"similarity must be one of {', '.join(SIMILARITY)}, got {self.similarity!r}"
            )
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise TrainingError(f"the threshold must be a finite number, got {self.threshold!r}")
        if self.stability_resamples < 0:
            raise TrainingError("stability resamples must be 0 or more")

    @property
    def cut(self) -> float:
        """The threshold in use."""
        return DEFAULT_THRESHOLD[self.similarity] if self.threshold is None else self.threshold

    def key_fields(self) -> dict[str, Any]:
        """The store request: everything that changes the table, the threshold resolved."""
        return {
            "similarity": self.similarity,
            "threshold": float(self.cut),
            "probes": self.options.to_dict(),
            "stability_resamples": self.stability_resamples,
            "stability_seed": self.stability_seed,
            "engine": ENGINE_VERSION,
        } | ({"extra": [list(k) for k in self.extra]} if self.extra else {})


@dataclass(frozen=True)
class StoredPlans:
    """A plans table read from (or just written to) the store, with its provenance."""

    table: PlansTable
    provenance: Any  # core.results.Provenance
    key: str
    from_store: bool


def table_plans(
    redundancy: Redundancy, n_layers: int, extra: tuple[tuple[int, ...], ...] = ()
) -> list[PruningPlan]:
    """The full model, each block's plan, all blocks together (if several), each ``extra`` plan (kept
    layers), and the top plan of each size; largest first, the top plan before the others of its size."""
    plans = [PruningPlan.top(n_layers, n_layers)]
    for kept in extra:
        plan = PruningPlan.keep(kept, n_layers)
        plans += [plan, PruningPlan.top(plan.size, n_layers)]
    drops = [block.dropped for block in redundancy.blocks]
    if len(drops) > 1:
        drops.append(redundancy.dropped)
    for dropped in drops:
        plan = PruningPlan.drop(dropped, n_layers)
        plans += [plan, PruningPlan.top(plan.size, n_layers)]
    unique = list(dict.fromkeys(plans))
    return sorted(unique, key=lambda q: (-q.size, not q.is_top, q.kept))


def _distinct_halves(units: np.ndarray, strata: np.ndarray | None) -> int:
    """How many different half-samples the units allow (product over strata of C(n, n/2))."""
    groups = np.zeros_like(units) if strata is None else strata
    out = 1
    for s in np.unique(groups):
        n = len(np.unique(units[groups == s]))
        out *= math.comb(n, n // 2)
    return out


def half_sample_stability(
    features: FeatureSet, full: Redundancy, request: PlansRequest
) -> BlockStability | None:
    """The blocks' reappearance over seeded half-samples (None when asked for none, or when the clips
    allow fewer than 2 distinct half-samples); never more draws than distinct halves."""
    if not request.stability_resamples or not full.blocks:
        return None
    units = resample_units(features, [request.options.labels])[request.options.labels]
    n = min(request.stability_resamples, _distinct_halves(units.units, units.strata))
    if n < 2:
        return None
    spec = CRITERIA[request.similarity]
    maps = [
        np.asarray(spec.compute(features.features[idx]).values)
        for idx in half_samples(units, n, request.stability_seed)
    ]
    return block_stability(full, maps, request.stability_seed, units.describe())


def compute_plans_table(
    full: SpeechEncoder,
    features: FeatureSet,
    base: CacheEntry,
    request: PlansRequest,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PlansTable:
    """Blocks, stability and every plan's scores. ``progress(done, total)`` counts work in clips of a
    pruned run, each plan's probes a small share more (all a cached plan costs), so the bar is full only
    when the last probes are; ``should_stop()`` cancels between batches."""
    t0 = time.perf_counter()
    similarity = CRITERIA[request.similarity].compute(features.features)
    redundancy = redundancy_blocks(similarity.values, request.cut, criterion=request.similarity)
    stability = half_sample_stability(features, redundancy, request)
    plans = table_plans(redundancy, features.n_layers, request.extra)
    n_clips = len(features.paths)
    probes = max(
        1, round(PROBE_COST * n_clips)
    )  # after a plan's clips ran: the bar is not full yet
    costs = [probes + (0 if reuses_cache(full, p) else n_clips) for p in plans]
    total = sum(costs)
    done = 0

    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled("the plans table was cancelled")

    def step(offset: int) -> Callable[[int, int], None]:
        def report(clips: int, _of: int) -> None:
            check()
            if progress is not None:
                progress(offset + clips, total)

        return report

    scores: list[PlanScore] = []
    for plan, cost in zip(plans, costs, strict=True):
        check()
        scores.append(score_plan(full, features, base, plan, request.options, progress=step(done)))
        done += cost
        if progress is not None:
            progress(done, total)
    values = np.asarray(similarity.values, dtype=np.float64)
    return PlansTable(
        similarity=request.similarity,
        redundancy=redundancy,
        stability=stability,
        plans=tuple(scores),
        options=request.options.to_dict(),
        seconds=time.perf_counter() - t0,
        similarity_map=tuple(tuple(float(v) for v in row) for row in values),
    )


def plans_key(features: FeatureSet, request: PlansRequest) -> str:
    """The store key of the table of ``features`` for ``request`` (nothing computed)."""
    if features.key is None:
        raise ResultError("the feature set has no cache key; its plans table is not stored")
    return plans_result_key(features.key, request.key_fields())


def stored_plans_table(
    full: SpeechEncoder,
    features: FeatureSet,
    base: CacheEntry,
    request: PlansRequest,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    refresh: bool = False,
) -> StoredPlans:
    """The table through the results store: read back when stored, else computed and stored."""
    meta = {**features.meta, "key": features.key}
    entry, from_store = plans_entry(
        meta,
        request.key_fields(),
        lambda: compute_plans_table(full, features, base, request, progress, should_stop),
        refresh=refresh,
    )
    return StoredPlans(decode_plans(entry), entry.provenance, entry.key, from_store)


def read_plans_table(features: FeatureSet, request: PlansRequest) -> StoredPlans | None:
    """The stored table of ``features`` for ``request``, or None when none is stored (nothing computed)."""
    from core.results.store import load_result

    entry = load_result(plans_key(features, request))
    if entry is None:
        return None
    return StoredPlans(decode_plans(entry), entry.provenance, entry.key, True)
