"""The shape of each result kind's JSON part, checked on every read of the store.

An entry's checksum and key say it is intact and keyed to its own request; these records say its
``data`` is what its kind's readers expect (a convexity entry whose ``data`` is ``{}``, resealed, is
otherwise intact). A read whose data does not parse here is treated as missing: recomputed, never a
``KeyError`` in a page. Only the fields the readers use are checked; writers may add more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import RecordError
from core.io.records import Record, from_dict
from core.results.plans_kind import PlansTable
from core.results.series_data import CheckpointSeries

__all__ = ["check_data"]


@dataclass(frozen=True)
class _ClassScore(Record):
    score: float
    sem: float
    n_points: int
    n_pairs: int


@dataclass(frozen=True)
class _LayerResult(Record):
    score: float
    sem: float
    per_class: dict[str, _ClassScore]
    excluded_classes: tuple[Any, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Curve(Record):
    layers: tuple[int, ...]
    results: tuple[_LayerResult, ...]


@dataclass(frozen=True)
class _ConvexityData(Record):
    curves: dict[str, _Curve]
    order: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Criterion(Record):
    name: str
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _CriteriaData(Record):
    criteria: dict[str, _Criterion]


@dataclass(frozen=True)
class _UmapData(Record):
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class _Scores(Record):
    scores: tuple[float, ...]


@dataclass(frozen=True)
class _RunCurvesData(Record):
    pretrained: dict[str, _Scores] | None = None
    finetuned: dict[str, _Scores] = field(default_factory=dict)


@dataclass(frozen=True)
class _StatisticsSet(Record):
    label_set: str
    layers: tuple[int, ...]
    scores: tuple[float, ...]
    sems: tuple[float, ...]


@dataclass(frozen=True)
class _CurveStatisticsData(Record):
    sets: dict[str, _StatisticsSet]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _GridData(Record):
    grid_id: str


@dataclass(frozen=True)
class _DiagnosedClass(Record):
    label: str
    n_points: int
    convexity: float
    n_components: int
    largest_component: int
    purity: float
    bridge_paths: float


@dataclass(frozen=True)
class _DiagnosedSet(Record):
    classes: tuple[str, ...]
    per_class: tuple[_DiagnosedClass, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _DiagnosticsData(Record):
    layer: int
    k: int
    n_points: int
    sets: dict[str, _DiagnosedSet]
    order: tuple[str, ...] = ()


SCHEMAS: dict[str, type[Record]] = {
    "convexity": _ConvexityData,
    "criteria": _CriteriaData,
    "umap": _UmapData,
    "finetune-convexity": _RunCurvesData,
    "grid": _GridData,
    "series": CheckpointSeries,
    "aligned-umap": _UmapData,
    "diagnostics": _DiagnosticsData,
    "curve-statistics": _CurveStatisticsData,
    "plans-table": PlansTable,
}


def check_data(kind: str, data: Any) -> str | None:
    """Why ``data`` is not what a ``kind`` entry's readers expect, or None when it is."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        return f"unknown kind {kind!r}"
    try:
        parsed = from_dict(schema, data, where="data")
    except RecordError as exc:
        return str(exc)
    if isinstance(parsed, _ConvexityData):
        for name, curve in parsed.curves.items():
            if len(curve.layers) != len(curve.results):
                return f"data.curves[{name!r}]: {len(curve.layers)} layers, {len(curve.results)} results"
        if parsed.order and set(parsed.order) != set(parsed.curves):
            return "data.order names other curves than data.curves"
    if isinstance(parsed, _DiagnosticsData):
        for name, part in parsed.sets.items():
            if len(part.classes) != len(part.per_class):
                return (
                    f"data.sets[{name!r}]: {len(part.classes)} classes, {len(part.per_class)} rows"
                )
    if isinstance(parsed, _CurveStatisticsData):
        from core.geometry.curve_statistics import CurveStatistics  # the readers' own record

        try:
            CurveStatistics.from_dict(data)
        except RecordError as exc:
            return str(exc)
    return None
