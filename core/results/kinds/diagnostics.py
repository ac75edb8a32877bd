"""The ``diagnostics`` kind: per-clip and per-class diagnostics of one hidden state for one or more
label sets (the engine's ``LayerDiagnostics``: per-class rows as JSON, per-clip columns as arrays
``<label set>.<column>``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import RecordError, ResultError
from core.geometry import diagnostics as diagnostics_engine
from core.geometry.diagnostics import CLIP_COLUMNS, LayerDiagnostics
from core.geometry.options import DEFAULT_K
from core.io.records import Record, check_fields
from core.results.kinds.entry import Progress, feature_meta, stored_entry
from core.results.registry import Computed, KindParts
from core.results.store import StoredResult

__all__ = [
    "KIND",
    "PARTS",
    "DiagnosticsData",
    "decode_diagnostics",
    "diagnostics_entry",
    "diagnostics_request",
    "encode_diagnostics",
    "stored_diagnostics",
]

KIND = "diagnostics"
COLUMNS = ("codes", *CLIP_COLUMNS)  # stored as arrays, one per label set
TABLE_FIELDS = ("label_set", "layer", "k")  # stored once for all sets


@dataclass(frozen=True)
class DiagnosticsData(Record):
    """The JSON part of a diagnostics entry: the layer, k, the clip count and each label set's
    ``LayerDiagnostics`` without its per-clip columns."""

    layer: int
    k: int
    n_points: int
    sets: dict[str, dict[str, Any]]
    order: tuple[str, ...] = ()

    def tables(self) -> dict[str, dict[str, Any]]:
        """Each set's checked table fields, in the caller's order."""
        out = {}
        for name in self.order or tuple(self.sets):
            part = check_fields(
                LayerDiagnostics,
                self.sets[name],
                leave_out=(*TABLE_FIELDS, *COLUMNS),
                where=f"data.sets[{name!r}]",
            )
            if len(part["classes"]) != len(part["per_class"]):
                raise RecordError(
                    f"data.sets[{name!r}]: {len(part['classes'])} classes, "
                    f"{len(part['per_class'])} rows"
                )
            out[name] = part
        return out


def check_diagnostics(data: Any) -> DiagnosticsData:
    """The parsed JSON part of a diagnostics entry (RecordError when it is not one)."""
    parsed = DiagnosticsData.from_dict(data)
    parsed.tables()
    return parsed


def diagnostics_request(
    layer: int,
    label_sets: Sequence[str],
    k: int = DEFAULT_K,
    max_sources_per_class: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The key-relevant settings of one layer's diagnostics: layer, label sets (in order), k, and
    the source sample (None: every clip's tree; the seed then plays no part)."""
    request: dict[str, Any] = {"layer": int(layer), "label_sets": list(label_sets), "k": int(k)}
    if max_sources_per_class is not None:
        request |= {"max_sources_per_class": int(max_sources_per_class), "seed": int(seed)}
    return request


def encode_diagnostics(tables: Mapping[str, LayerDiagnostics]) -> Computed:
    """One layer's tables as stored (per-clip columns as arrays ``<label set>.<column>``), with the
    first table's settings."""
    first = next(iter(tables.values()))
    data: dict[str, Any] = {
        "layer": first.layer,
        "k": first.k,
        "n_points": first.n_points,
        "order": list(tables),
        "sets": {},
    }
    arrays: dict[str, np.ndarray] = {}
    for name, t in tables.items():
        data["sets"][name] = {
            "classes": list(t.classes),
            "per_class": [c.to_dict() for c in t.per_class],
            "settings": t.settings,
            "timings": t.timings,
        }
        arrays[f"{name}.codes"] = np.asarray(t.codes, dtype=np.int32)
        for col in CLIP_COLUMNS:
            arrays[f"{name}.{col}"] = np.asarray(t.column(col))
    return Computed(data, arrays, dict(first.settings))


def decode_diagnostics(entry: StoredResult) -> dict[str, LayerDiagnostics]:
    """Inverse of ``encode_diagnostics`` (ResultError when a column is missing or of the wrong length)."""
    try:
        data = check_diagnostics(entry.data)
    except RecordError as exc:
        raise ResultError(f"diagnostics entry {entry.key[:12]}: {exc}") from None
    out = {}
    for name, part in data.tables().items():
        cols: dict[str, Any] = {}
        for col in COLUMNS:
            arr = entry.arrays.get(f"{name}.{col}")
            if arr is None or arr.shape != (data.n_points,):
                raise ResultError(f"diagnostics entry {entry.key[:12]}: column {name}.{col} is bad")
            cols[col] = arr
        out[name] = LayerDiagnostics(label_set=name, layer=data.layer, k=data.k, **part, **cols)
    return out


def compute_diagnostics(
    features: Any,
    labels: Mapping[str, Any],
    layer: int,
    *,
    k: int = DEFAULT_K,
    max_sources_per_class: int | None = None,
    seed: int = 0,
    device: Any = None,
    engine: str = "auto",
    progress: Progress | None = None,
) -> Computed:
    """``diagnose_layer`` of hidden state ``layer`` of ``features`` (N, L+1, D), encoded."""
    tables = diagnostics_engine.diagnose_layer(
        features[:, int(layer), :],
        labels,
        k=k,
        layer=int(layer),
        max_sources_per_class=max_sources_per_class,
        seed=seed,
        device=device,
        engine=engine,
        progress=progress,
    )
    return encode_diagnostics(tables)


def diagnostics_entry(
    fs: Any,
    layer: int,
    label_sets: Sequence[str],
    *,
    k: int = DEFAULT_K,
    max_sources_per_class: int | None = None,
    seed: int = 0,
    device: Any = None,
    engine: str = "auto",
    refresh: bool = False,
    progress: Progress | None = None,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of the per-clip and per-class diagnostics of ``fs`` at hidden state ``layer``
    (every clip's tree, or ``max_sources_per_class`` seeded sources per class); ``progress`` counts
    the trees run when it is computed."""
    meta = feature_meta(fs)
    request = diagnostics_request(layer, label_sets, k, max_sources_per_class, seed)

    def compute() -> Computed:
        labels = {name: fs.labels(name) for name in label_sets}
        return compute_diagnostics(
            fs.features,
            labels,
            layer,
            k=k,
            max_sources_per_class=max_sources_per_class,
            seed=seed,
            device=device,
            engine=engine,
            progress=progress,
        )

    entry, hit = stored_entry(meta, KIND, list(label_sets), request, compute, refresh)
    try:
        decode_diagnostics(entry)
    except (ResultError, KeyError, TypeError, ValueError):  # malformed columns: treat as missing
        entry, hit = stored_entry(meta, KIND, list(label_sets), request, compute, True)
    return entry, hit


def stored_diagnostics(
    fs: Any, layer: int, label_sets: Sequence[str], **kwargs: Any
) -> dict[str, LayerDiagnostics]:
    """``diagnose_layer`` of one hidden state of ``fs`` through the results store (name -> table)."""
    entry, _ = diagnostics_entry(fs, layer, label_sets, **kwargs)
    return decode_diagnostics(entry)


PARTS = KindParts(
    schema=check_diagnostics,
    request=diagnostics_request,
    compute=compute_diagnostics,
    encode=encode_diagnostics,
    decode=decode_diagnostics,
)
