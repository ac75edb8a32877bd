"""The stored plans table: a model's redundancy blocks, their stability and its plans' retraining-free scores.

The ``plans-table`` result kind: the records a plans table is made of, its store request
(the key's fields), and ``plans_entry`` / ``decode_plans`` to write and read it with provenance. The
computation itself lives in ``core.training.plans_table`` (it runs pruned encoders and probes, a layer
above this one) and is handed in as a function, so the CLI and the dashboard read one stored table
instead of recomputing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ResultError
from core.geometry.redundancy import BlockStability, Redundancy
from core.io.records import Record
from core.models.plans import PruningPlan
from core.results.registry import Computed, KindParts

__all__ = [
    "INTERVAL",
    "KIND",
    "PARTS",
    "PLANS_KIND",
    "ENGINE_VERSION",
    "PlanScore",
    "PlansTable",
    "ProbeScore",
    "decode_plans",
    "plans_entry",
    "plans_result_key",
]

KIND = PLANS_KIND = "plans-table"
ENGINE_VERSION = "1"  # of the stored table; bump when its figures change
INTERVAL = (
    "percentile bootstrap interval of test accuracy over resampled test clips (probe held fixed)"
)


@dataclass(frozen=True)
class ProbeScore(Record):
    """One probe's test accuracy and its interval (see :data:`INTERVAL`)."""

    probe: str
    accuracy: float
    low: float
    high: float


@dataclass(frozen=True)
class PlanScore(Record):
    """A plan's retraining-free scores, where its features came from, its size and the cost."""

    plan: PruningPlan
    parameters: int
    features: str
    scores: tuple[ProbeScore, ...]
    n_train: int
    n_test: int
    seconds: float
    interval: str = INTERVAL

    def score(self, probe: str) -> ProbeScore:
        """The score of one probe by name."""
        for s in self.scores:
            if s.probe == probe:
                return s
        raise KeyError(probe)


@dataclass(frozen=True)
class PlansTable(Record):
    """Blocks of one similarity map, their half-sample stability, and every plan's scores (full first)."""

    similarity: str
    redundancy: Redundancy
    stability: BlockStability | None
    plans: tuple[PlanScore, ...]
    options: dict[str, Any]  # the probe options (labels, k, bootstrap, seed)
    seconds: float = 0.0
    interval: str = INTERVAL
    similarity_map: tuple[tuple[float, ...], ...] = ()

    @property
    def full(self) -> PlanScore:
        """The full model's row (the reference of every change)."""
        for score in self.plans:
            if score.plan.is_full:
                return score
        raise ResultError("a plans table without the full model")

    @property
    def probes(self) -> tuple[str, ...]:
        """The probes scored, in order."""
        return tuple(s.probe for s in self.full.scores)

    def kind(self, score: PlanScore) -> str:
        """'full', 'top' (a prune point), 'block drop' (a detected block's plan, or all blocks'
        together) or 'typed' (a plan asked for by name)."""
        plan = score.plan
        if plan.is_full:
            return "full"
        if plan.is_top:
            return "top"
        blocks = [block.dropped for block in self.redundancy.blocks] + [self.redundancy.dropped]
        return "block drop" if plan.dropped in blocks else "typed"

    def change(self, score: PlanScore, probe: str) -> float:
        """A plan's accuracy minus the full model's under one probe."""
        return score.score(probe).accuracy - self.full.score(probe).accuracy

    def matrix(self) -> np.ndarray:
        """The similarity map over hidden states 0..L."""
        return np.asarray(self.similarity_map, dtype=np.float64)

    def at_size(self, size: int) -> tuple[PlanScore, ...]:
        """The plans keeping ``size`` layers."""
        return tuple(s for s in self.plans if s.plan.size == size)


def plans_result_key(feature_key: str, request: Mapping[str, Any]) -> str:
    """The store key of a plans table of feature set ``feature_key`` for ``request``."""
    from core.results.store import result_key

    return result_key(feature_key, PLANS_KIND, dict(request))


def plans_entry(
    meta: Mapping[str, Any],
    request: Mapping[str, Any],
    compute: Callable[[], PlansTable],
    *,
    refresh: bool = False,
) -> tuple[Any, bool]:
    """(entry, from_store): the stored table of feature set ``meta`` (its ``FeatureSet.meta`` with
    ``key``) for ``request``, else ``compute()`` stored with provenance (``decode_plans`` reads it)."""
    from core.results.provenance import provenance_from_meta
    from core.results.store import StoredResult, get_or_compute, jsonable

    if not meta.get("key"):
        raise ResultError("the feature set has no cache key; its plans table is not stored")
    key = plans_result_key(str(meta["key"]), request)

    def build() -> StoredResult:
        table = compute()
        prov = provenance_from_meta(
            dict(meta),
            kind=PLANS_KIND,
            label_sets=[str(table.options.get("labels", ""))],
            settings=jsonable(dict(request)),
        )
        return StoredResult(key, PLANS_KIND, jsonable(dict(request)), prov, table.to_dict())

    return get_or_compute(key, build, refresh=refresh)


def decode_plans(entry: Any) -> PlansTable:
    """The table of a stored ``plans-table`` entry (a ``StoredResult``)."""
    if entry.kind != PLANS_KIND:
        raise ResultError(f"entry {entry.key[:12]} is a {entry.kind!r} result, not a plans table")
    return PlansTable.from_dict(entry.data)


def _request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The key-relevant settings of a plans table: the plans request as given."""
    return dict(request)


def _encode(table: PlansTable) -> Computed:
    """A plans table as stored (no arrays; the similarity map is part of the record)."""
    return Computed(table.to_dict())


PARTS = KindParts(
    schema=PlansTable.from_dict,
    request=_request,
    compute=lambda compute: _encode(compute()),
    encode=_encode,
    decode=decode_plans,
)
