"""Store-backed computations: convexity curves, criteria and UMAP layouts of a feature set, computed once.

Each ``stored_*`` function keys the request (feature key, kind, the engine's settings, engine version),
returns the stored entry when one is valid and otherwise runs the engine and stores its result with
provenance. The convexity request is what its ``ConvexityOptions`` compute (``key_fields``: not where or
how it runs), the layers and the label sets, so a new engine setting enters the key through the record.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from core.errors import LabError, ResultError
from core.geometry import convexity as convexity_engine
from core.geometry import criteria as criteria_engine
from core.geometry import curve_statistics as statistics_engine
from core.geometry import diagnostics as diagnostics_engine
from core.geometry import projections as projection_engine
from core.geometry.convexity import ClassConvexity, ConvexityCurve, ConvexityResult
from core.geometry.criteria import CriterionResult
from core.geometry.curve_statistics import CurveStatistics
from core.geometry.diagnostics import CLIP_COLUMNS, ClassDiagnostics, LayerDiagnostics
from core.geometry.options import (
    DEFAULT_K,
    DEFAULT_OPTIONS,
    DEFAULT_STATISTICS,
    DEFAULT_UMAP,
    ConvexityOptions,
    StatisticsOptions,
    UmapOptions,
)
from core.geometry.resampling import ResampleUnits
from core.results.provenance import provenance_from_meta
from core.results.store import (
    StoredResult,
    get_or_compute,
    jsonable,
    list_results,
    load_result,
    result_key,
    save_result,
)

Progress = Callable[[int, int], None]


def _meta(fs: Any) -> dict[str, Any]:
    """A feature set's meta with its key (a FeatureSet or a plain meta dict)."""
    meta = dict(getattr(fs, "meta", fs))
    key = getattr(fs, "key", None) or meta.get("key")
    if not key:
        raise ResultError(
            "the feature set has no cache key; results of uncached features are not stored"
        )
    meta["key"] = key
    return meta


def _entry(
    meta: Mapping[str, Any],
    kind: str,
    label_sets: Sequence[str],
    request: dict[str, Any],
    compute: Callable[[], tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]],
    refresh: bool,
) -> tuple[StoredResult, bool]:
    """Get or compute one entry; ``compute`` returns (data, arrays, the engine's reported settings)."""
    key = result_key(meta["key"], kind, request)

    def build() -> StoredResult:
        data, arrays, settings = compute()
        prov = provenance_from_meta(
            dict(meta), kind=kind, label_sets=list(label_sets), settings=jsonable(settings)
        )
        return StoredResult(key, kind, jsonable(request), prov, jsonable(data), arrays)

    return get_or_compute(key, build, refresh=refresh)


# --------------------------------------------------------------------------------------------------
# Convexity curves


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
        "order": list(
            curves
        ),  # JSON objects are stored with sorted keys; this keeps the caller's order
        "curves": {
            name: {"layers": list(c.layers), "results": [r.to_dict() for r in c.results]}
            for name, c in curves.items()
        },
    }


def _known(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are fields of dataclass ``cls`` (newer writers may add more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def decode_curves(data: Mapping[str, Any]) -> dict[str, ConvexityCurve]:
    """Inverse of ``encode_curves`` (class labels come back as strings)."""
    out = {}
    for name in data.get("order") or list(data["curves"]):
        c = data["curves"][name]
        results = []
        for r in c["results"]:
            per_class: dict[Hashable, ClassConvexity] = {
                cls: ClassConvexity(**_known(ClassConvexity, v))
                for cls, v in r["per_class"].items()
            }
            results.append(
                ConvexityResult(
                    **_known(ConvexityResult, r)
                    | {"per_class": per_class, "excluded_classes": tuple(r["excluded_classes"])}
                )
            )
        out[name] = ConvexityCurve(name, tuple(int(x) for x in c["layers"]), tuple(results))
    return out


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
    meta = _meta(fs)
    request = convexity_request(list(labels), options, layers)

    def compute() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        curves = convexity_engine.layerwise_convexity(
            fs.features, dict(labels), options, layers=layers, progress=progress
        )
        settings = dict(next(iter(curves.values())).results[0].settings)
        settings.pop("n_shortest_path_trees", None)
        return encode_curves(curves), {}, settings

    return _entry(meta, "convexity", list(labels), request, compute, refresh)


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


# --------------------------------------------------------------------------------------------------
# Curve statistics: chance level, population intervals, prune-point stability

STATISTICS_KIND = "curve-statistics"


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
    meta = _meta(fs)
    labels = {n: list(fs.labels(n)) for n in names}
    units = resample_units(fs, names)
    request = statistics_request(list(names), units, options, statistics)

    def compute() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        result = statistics_engine.curve_statistics(
            fs.features, labels, units, options, statistics, progress=progress, on_units=on_units
        )
        return result.to_dict(), {}, dict(result.settings)

    return _entry(meta, STATISTICS_KIND, list(names), request, compute, refresh)


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
    return result_key(_meta(fs)["key"], STATISTICS_KIND, request)


# --------------------------------------------------------------------------------------------------
# Criteria


def encode_criteria(
    results: Mapping[str, CriterionResult],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON part, arrays) of named criterion results."""
    data: dict[str, Any] = {"criteria": {}}
    arrays: dict[str, np.ndarray] = {}
    for name, r in results.items():
        arrays[f"{name}.values"] = np.asarray(r.values, dtype=np.float64)
        if r.uncertainty is not None:
            arrays[f"{name}.uncertainty"] = np.asarray(r.uncertainty, dtype=np.float64)
        data["criteria"][name] = {
            "name": r.name,
            "kind": r.kind,
            "settings": r.settings,
            "higher_is_better": r.higher_is_better,
            "prune_rule": r.prune_rule,
            "seconds": r.seconds,
            "details": r.details,
        }
    return data, arrays


def decode_criteria(entry: StoredResult) -> dict[str, CriterionResult]:
    """Inverse of ``encode_criteria``."""
    return {
        name: CriterionResult(
            **_known(CriterionResult, doc),
            values=entry.arrays[f"{name}.values"],
            uncertainty=entry.arrays.get(f"{name}.uncertainty"),
        )
        for name, doc in entry.data["criteria"].items()
    }


def stored_criteria(
    fs: Any,
    label_set: str,
    request: Mapping[str, Any],
    compute: Callable[[], Mapping[str, CriterionResult]],
    *,
    refresh: bool = False,
) -> tuple[dict[str, CriterionResult], bool]:
    """(criteria, from_store): ``compute()`` (e.g. ``run_criteria``) through the store, keyed by ``request``."""
    entry, hit = _criteria_store(fs, label_set, request, compute, refresh)
    return decode_criteria(entry), hit


def _criteria_store(
    fs: Any,
    label_set: str,
    request: Mapping[str, Any],
    compute: Callable[[], Mapping[str, CriterionResult]],
    refresh: bool,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of ``compute()`` keyed by ``request`` and the label set."""

    def run() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        data, arrays = encode_criteria(compute())
        return data, arrays, dict(request)

    request = {"label_set": label_set, **request}
    return _entry(_meta(fs), "criteria", [label_set], dict(request), run, refresh)


# Criterion arguments that say where/how it runs or what it shares, not what it computes: not in the key
# (``k`` is the request's own entry, passed to every graph criterion by ``run_criteria``).
CRITERIA_RUNTIME_ARGS = {"features", "labels", "graphs", "k", "n_jobs", "blas_threads", "device"}


def criteria_request(
    labels: Sequence[Hashable],
    *,
    k: int = DEFAULT_K,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The stored-criteria request: names, k and every chosen criterion's keywords (defaults filled in).

    The keywords come from each criterion function's signature, so a changed default changes the key;
    the linear probe's folds are capped by the smallest class (stratified folds need each class in each).
    """
    from collections import Counter

    chosen = list(names) if names is not None else list(criteria_engine.CRITERIA)
    options: dict[str, dict[str, Any]] = {}
    for name in chosen:
        spec = criteria_engine.CRITERIA[name]
        options[name] = {
            arg: p.default
            for arg, p in inspect.signature(spec.compute).parameters.items()
            if arg not in CRITERIA_RUNTIME_ARGS and p.default is not inspect.Parameter.empty
        }
    if "linear_probe" in options and len(labels):
        smallest = min(Counter(labels).values())
        folds = int(options["linear_probe"].get("n_splits", 5))
        options["linear_probe"]["n_splits"] = max(2, min(folds, smallest))
    return {"names": None if names is None else list(names), "k": int(k), "options": options}


def criteria_entry(
    fs: Any,
    label_set: str,
    *,
    k: int = DEFAULT_K,
    names: Sequence[str] | None = None,
    graphs: Mapping[int, Any] | None = None,
    on_error: Callable[[str, LabError], None] | None = None,
    progress: Progress | None = None,
    refresh: bool = False,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of the criteria of ``fs``'s ``label_set`` labels, computed one by one.

    A criterion that fails with a ``LabError`` is reported to ``on_error`` and left out (re-raised when
    there is no ``on_error``); ``graphs`` are kNN graphs already built (e.g. by the convexity engine).
    """
    labels = list(fs.labels(label_set))
    request = criteria_request(labels, k=k, names=names)
    chosen = list(request["options"])

    def compute() -> dict[str, CriterionResult]:
        shared = dict(graphs or {})
        done: dict[str, CriterionResult] = {}
        for i, name in enumerate(chosen):
            if criteria_engine.CRITERIA[name].uses_graphs and len(shared) < fs.features.shape[1]:
                shared = criteria_engine.knn_graphs(fs.features, k, shared)  # once, for all of them
            try:
                done |= criteria_engine.run_criteria(
                    fs.features,
                    labels,
                    names=[name],
                    graphs=shared,
                    k=k,
                    options=request["options"],
                )
            except LabError as exc:
                if on_error is None:
                    raise
                on_error(name, exc)
            if progress is not None:
                progress(i + 1, len(chosen))
        return done

    return _criteria_store(fs, label_set, request, compute, refresh)


def criteria_key(fs: Any, label_set: str, *, k: int = DEFAULT_K) -> str:
    """The store key ``criteria_entry`` uses for these inputs (nothing computed)."""
    request = criteria_request(list(fs.labels(label_set)), k=k)
    return result_key(_meta(fs)["key"], "criteria", {"label_set": label_set, **request})


# --------------------------------------------------------------------------------------------------
# UMAP layouts


def umap_request(options: UmapOptions = DEFAULT_UMAP) -> dict[str, Any]:
    """The key-relevant settings: the whole ``UmapOptions`` record."""
    return options.to_dict()


def umap_entry(
    fs: Any,
    options: UmapOptions = DEFAULT_UMAP,
    *,
    progress: Progress | None = None,
    refresh: bool = False,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of the aligned UMAP layouts (L+1, N, 2) of feature set ``fs``."""
    request = umap_request(options)

    def run() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        layout = projection_engine.layer_embeddings(fs.features, options, progress=progress)
        layout = np.asarray(layout, dtype=np.float32)
        return {"shape": list(layout.shape)}, {"layout": layout}, dict(request)

    return _entry(_meta(fs), "umap", [], request, run, refresh)


def stored_umap(
    fs: Any,
    request: Mapping[str, Any],
    compute: Callable[[], np.ndarray],
    *,
    refresh: bool = False,
) -> tuple[np.ndarray, bool]:
    """(layouts (L+1, N, 2), from_store): ``compute()`` through the store, keyed by ``request``."""

    def run() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        layout = np.asarray(compute(), dtype=np.float32)
        return {"shape": list(layout.shape)}, {"layout": layout}, dict(request)

    entry, hit = _entry(_meta(fs), "umap", [], dict(request), run, refresh)
    return entry.arrays["layout"], hit


# --------------------------------------------------------------------------------------------------
# Per-clip and per-class diagnostics (one layer, one or more label sets)

DIAGNOSTICS_KIND = "diagnostics"


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


def encode_diagnostics(
    tables: Mapping[str, LayerDiagnostics],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(JSON part, per-clip columns as arrays ``<label set>.<column>``) of one layer's tables."""
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
    return data, arrays


def decode_diagnostics(entry: StoredResult) -> dict[str, LayerDiagnostics]:
    """Inverse of ``encode_diagnostics`` (ResultError when a column is missing or of the wrong length)."""
    data, out = entry.data, {}
    n = int(data["n_points"])
    for name in data.get("order") or list(data["sets"]):
        part = data["sets"][name]
        cols = {}
        for col in ("codes", *CLIP_COLUMNS):
            arr = entry.arrays.get(f"{name}.{col}")
            if arr is None or arr.shape != (n,):
                raise ResultError(f"diagnostics entry {entry.key[:12]}: column {name}.{col} is bad")
            cols[col] = arr
        out[name] = LayerDiagnostics(
            label_set=name,
            layer=int(data["layer"]),
            k=int(data["k"]),
            classes=tuple(part["classes"]),
            per_class=tuple(
                ClassDiagnostics(**_known(ClassDiagnostics, c)) for c in part["per_class"]
            ),
            settings=dict(part.get("settings") or {}),
            timings=dict(part.get("timings") or {}),
            **cols,
        )
    return out


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
    meta = _meta(fs)
    request = diagnostics_request(layer, label_sets, k, max_sources_per_class, seed)

    def compute() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
        labels = {name: fs.labels(name) for name in label_sets}
        tables = diagnostics_engine.diagnose_layer(
            fs.features[:, int(layer), :],
            labels,
            k=k,
            layer=int(layer),
            max_sources_per_class=max_sources_per_class,
            seed=seed,
            device=device,
            engine=engine,
            progress=progress,
        )
        data, arrays = encode_diagnostics(tables)
        settings = dict(next(iter(tables.values())).settings)
        return data, arrays, settings

    entry, hit = _entry(meta, DIAGNOSTICS_KIND, list(label_sets), request, compute, refresh)
    try:
        decode_diagnostics(entry)
    except (ResultError, KeyError, TypeError, ValueError):  # malformed columns: treat as missing
        entry, hit = _entry(meta, DIAGNOSTICS_KIND, list(label_sets), request, compute, True)
    return entry, hit


def stored_diagnostics(
    fs: Any, layer: int, label_sets: Sequence[str], **kwargs: Any
) -> dict[str, LayerDiagnostics]:
    """``diagnose_layer`` of one hidden state of ``fs`` through the results store (name -> table)."""
    entry, _ = diagnostics_entry(fs, layer, label_sets, **kwargs)
    return decode_diagnostics(entry)


# --------------------------------------------------------------------------------------------------
# Grid tables (``python -m core grid``)

GRID_KIND = "grid"


def grid_result_key(grid_id: str) -> str:
    """The store key of a grid's table: one entry per grid (it is replaced as more cells finish)."""
    return result_key(f"grid:{grid_id}", GRID_KIND, {"grid_id": grid_id})


def store_grid_table(table: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Store a grid's results table (``GridTable.to_dict()``) with provenance; returns its key.

    ``meta``: model ids and weights, dataset, data fingerprints, layer count and device of the grid
    (the training layer builds it; this layer knows no grids), ``settings``: recipe, points, seeds,
    executor. Written atomically under the key's lock, replacing the grid's previous table.
    """
    grid_id = str(table["grid_id"])
    key = grid_result_key(grid_id)
    meta = {**meta, "key": f"grid:{grid_id}"}
    prov = provenance_from_meta(
        dict(meta),
        kind=GRID_KIND,
        label_sets=list(meta.get("label_sets") or ()),
        settings=jsonable(dict(meta.get("settings") or {})),
        extra={"grid_id": grid_id},
    )
    save_result(StoredResult(key, GRID_KIND, {"grid_id": grid_id}, prov, jsonable(dict(table))))
    return key


def stored_grid_tables() -> list[StoredResult]:
    """Every stored grid table (newest first), validated as any stored entry."""
    found = (load_result(e.key) for e in list_results(GRID_KIND))
    return [entry for entry in found if entry is not None]
