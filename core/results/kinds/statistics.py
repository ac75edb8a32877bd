"""The ``curve-statistics`` kind: chance level, population intervals and prune-point stability of the
curves of several label sets of one feature set (the engine's ``CurveStatistics`` record, stored whole)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.geometry import curve_statistics as statistics_engine
from core.geometry.curve_statistics import CurveStatistics
from core.geometry.options import (
    DEFAULT_OPTIONS,
    DEFAULT_STATISTICS,
    ConvexityOptions,
    StatisticsOptions,
)
from core.geometry.resampling import ResampleUnits
from core.results.kinds.entry import Progress, feature_meta, stored_entry
from core.results.registry import Computed, KindParts
from core.results.store import StoredResult, result_key

__all__ = [
    "KIND",
    "PARTS",
    "resample_units",
    "statistics_entry",
    "statistics_key",
    "statistics_request",
    "stored_statistics",
]

KIND = "curve-statistics"


def resample_units(fs: Any, names: Sequence[str]) -> dict[str, ResampleUnits]:
    """Per label set, what a half-sample draws: words by speaker (words must generalise across
    voices; by clip when a clip lacks a speaker id), speakers by clip within each speaker."""
    speakers = list(fs.labels("speaker"))
    clips = range(len(speakers))
    out = {}
    for name in names:
        if name in ("speaker", "speakers"):
            out[name] = ResampleUnits.of("clip", clips, speakers, within="speaker")
        elif all(speakers):
            out[name] = ResampleUnits.of("speaker", speakers)
        else:
            out[name] = ResampleUnits.of("clip", clips)
    return out


def statistics_request(
    label_sets: Sequence[str],
    units: Mapping[str, ResampleUnits],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    statistics: StatisticsOptions = DEFAULT_STATISTICS,
) -> dict[str, Any]:
    """The key-relevant settings: what ``statistics`` and ``options`` compute, the label sets and
    how each is resampled."""
    request = statistics.key_fields() | options.key_fields()
    request["label_sets"] = list(label_sets)
    request["units"] = {n: units[n].describe() for n in label_sets}
    return request


def _encode(result: CurveStatistics) -> Computed:
    """The statistics record as stored, with its settings."""
    return Computed(result.to_dict(), {}, dict(result.settings))


def compute_statistics(
    features: Any,
    labels: Mapping[str, Sequence[Any]],
    units: Mapping[str, ResampleUnits],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    statistics: StatisticsOptions = DEFAULT_STATISTICS,
    **runtime: Any,
) -> Computed:
    """``curve_statistics`` of ``features``, encoded for the store (``runtime``: progress, on_units)."""
    return _encode(
        statistics_engine.curve_statistics(features, labels, units, options, statistics, **runtime)
    )


def statistics_entry(
    fs: Any,
    names: Sequence[str],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    statistics: StatisticsOptions = DEFAULT_STATISTICS,
    *,
    progress: Progress | None = None,
    on_units: Callable[[float, float], None] | None = None,
    refresh: bool = False,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of the curve statistics of label sets ``names`` of feature set ``fs``
    (``on_units``: the work done in cost-weighted units, see ``curve_statistics``)."""
    meta = feature_meta(fs)
    labels = {n: list(fs.labels(n)) for n in names}
    units = resample_units(fs, names)
    request = statistics_request(list(names), units, options, statistics)
    return stored_entry(
        meta,
        KIND,
        list(names),
        request,
        lambda: compute_statistics(
            fs.features,
            labels,
            units,
            options,
            statistics,
            progress=progress,
            on_units=on_units,
        ),
        refresh,
    )


def stored_statistics(
    fs: Any,
    names: Sequence[str],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    statistics: StatisticsOptions = DEFAULT_STATISTICS,
    **runtime: Any,
) -> CurveStatistics:
    """``curve_statistics`` of ``fs``'s label sets ``names`` through the results store (``runtime``:
    ``statistics_entry``'s progress, on_units, refresh)."""
    entry, _ = statistics_entry(fs, names, options, statistics, **runtime)
    return CurveStatistics.from_dict(entry.data)


def statistics_key(
    fs: Any,
    names: Sequence[str],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    statistics: StatisticsOptions = DEFAULT_STATISTICS,
) -> str:
    """The store key ``statistics_entry`` uses for these inputs (nothing computed)."""
    request = statistics_request(list(names), resample_units(fs, names), options, statistics)
    return result_key(feature_meta(fs)["key"], KIND, request)


PARTS = KindParts(
    schema=CurveStatistics.from_dict,
    request=statistics_request,
    compute=compute_statistics,
    encode=_encode,
    decode=lambda entry: CurveStatistics.from_dict(entry.data),
)
