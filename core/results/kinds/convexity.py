"""The ``convexity`` kind: named convexity curves of one feature set, every layer's full result.

The stored JSON has one definition, :class:`ConvexityData`, built from the engine's own records
(``ConvexityResult``, ``ClassConvexity``): the store checks every read against it and decoding parses
through it. The request is what the ``ConvexityOptions`` compute (``key_fields``: not where or how it
runs), the layers and the label sets.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.geometry import convexity as convexity_engine
from core.geometry.convexity import ConvexityCurve, ConvexityResult
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.io.records import Record
from core.results.kinds.entry import Progress, feature_meta, stored_entry
from core.results.registry import Computed, KindParts
from core.results.store import StoredResult

__all__ = [
    "KIND",
    "PARTS",
    "ConvexityData",
    "StoredCurve",
    "compute_convexity",
    "convexity_entry",
    "convexity_request",
    "decode_curves",
    "encode_curves",
    "stored_convexity",
]

KIND = "convexity"


@dataclass(frozen=True)
class StoredCurve(Record):
    """One named curve as stored: ``results[i]`` belongs to hidden state ``layers[i]``."""

    layers: tuple[int, ...]
    results: tuple[ConvexityResult, ...]

    def __post_init__(self) -> None:
        if len(self.layers) != len(self.results):
            raise ValueError(f"{len(self.layers)} layers, {len(self.results)} results")


@dataclass(frozen=True)
class ConvexityData(Record):
    """The JSON part of a convexity entry: curves by name and the caller's order of names (JSON
    objects are stored with sorted keys)."""

    curves: dict[str, StoredCurve]
    order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.order and set(self.order) != set(self.curves):
            raise ValueError("order names other curves than curves")

    def decoded(self) -> dict[str, ConvexityCurve]:
        """The named engine curves, in the caller's order (class labels come back as strings)."""
        names = self.order or tuple(self.curves)
        return {
            name: ConvexityCurve(name, self.curves[name].layers, self.curves[name].results)
            for name in names
        }


def convexity_request(
    label_sets: Sequence[str],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    layers: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The key-relevant settings: what ``options`` compute, the layers and the label sets."""
    request = options.key_fields()
    request["layers"] = None if layers is None else [int(i) for i in layers]
    request["label_sets"] = list(label_sets)
    return request


def encode_curves(curves: Mapping[str, ConvexityCurve]) -> dict[str, Any]:
    """JSON form of named convexity curves (every layer's full result, per-class numbers included)."""
    return {
        "order": list(curves),
        "curves": {
            name: {"layers": list(c.layers), "results": [r.to_dict() for r in c.results]}
            for name, c in curves.items()
        },
    }


def decode_curves(data: Mapping[str, Any]) -> dict[str, ConvexityCurve]:
    """Inverse of ``encode_curves`` (RecordError when ``data`` is not a convexity entry's)."""
    return ConvexityData.from_dict(data).decoded()


def _encode(curves: Mapping[str, ConvexityCurve]) -> Computed:
    """Curves as stored, with the settings the engine reported for them."""
    settings = dict(next(iter(curves.values())).results[0].settings)
    settings.pop("n_shortest_path_trees", None)
    return Computed(encode_curves(curves), {}, settings)


def compute_convexity(
    features: Any,
    labels: Mapping[str, Sequence[Hashable]],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    layers: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> Computed:
    """``layerwise_convexity`` of ``features`` for ``labels``, encoded for the store."""
    curves = convexity_engine.layerwise_convexity(
        features, dict(labels), options, layers=layers, progress=progress
    )
    return _encode(curves)


def convexity_entry(
    fs: Any,
    labels: Mapping[str, Sequence[Hashable]],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    *,
    layers: Sequence[int] | None = None,
    progress: Progress | None = None,
    refresh: bool = False,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of the convexity curves of ``labels`` (name -> labels) on feature set ``fs``."""
    meta = feature_meta(fs)
    request = convexity_request(list(labels), options, layers)
    return stored_entry(
        meta,
        KIND,
        list(labels),
        request,
        lambda: compute_convexity(fs.features, labels, options, layers, progress),
        refresh,
    )


def stored_convexity(
    fs: Any,
    labels: Mapping[str, Sequence[Hashable]],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    **runtime: Any,
) -> dict[str, ConvexityCurve]:
    """``layerwise_convexity(fs.features, labels, options)`` through the results store (``runtime``:
    ``convexity_entry``'s layers, progress, refresh)."""
    entry, _ = convexity_entry(fs, labels, options, **runtime)
    return decode_curves(entry.data)


PARTS = KindParts(
    schema=ConvexityData.from_dict,
    request=convexity_request,
    compute=compute_convexity,
    encode=_encode,
    decode=lambda entry: decode_curves(entry.data),
)
