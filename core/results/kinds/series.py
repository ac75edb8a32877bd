"""The ``series`` kind: the convexity of one clip selection under an ordered list of checkpoints
(``CheckpointSeries``, stored whole), keyed by the checkpoints' names and feature keys, the label sets
and the precision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.results.registry import Computed, KindParts
from core.results.series_data import CheckpointSeries
from core.results.store import jsonable

__all__ = ["KIND", "PARTS", "encode_series", "series_request"]

KIND = "series"


def series_request(
    checkpoints: Sequence[tuple[str, str]],
    label_sets: Sequence[str],
    precision: Mapping[str, Any],
) -> dict[str, Any]:
    """The key-relevant settings: (name, feature key) of each checkpoint in order, the label sets and
    the precision's key part."""
    return {
        "checkpoints": [[name, str(key)] for name, key in checkpoints],
        "label_sets": list(label_sets),
        "precision": dict(precision),
    }


def encode_series(series: CheckpointSeries, precision: Mapping[str, Any]) -> Computed:
    """A series as stored, with the precision's key part as settings."""
    return Computed(series.to_dict(), {}, jsonable(dict(precision)))


PARTS = KindParts(
    schema=CheckpointSeries.from_dict,
    request=series_request,
    compute=encode_series,
    encode=encode_series,
    decode=lambda entry: CheckpointSeries.from_dict(entry.data),
)
