"""The ``criteria`` kind: layer-selection criteria of one label set of a feature set.

Each criterion's ``CriterionResult`` is stored with its curve or matrix and uncertainty as arrays
(``<name>.values``, ``<name>.uncertainty``) and its other fields as JSON, checked against the engine's
record with the array fields left out.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from core.errors import LabError, RecordError
from core.geometry import criteria as criteria_engine
from core.geometry.criteria import CriterionResult
from core.geometry.options import DEFAULT_K
from core.io.records import check_fields, from_dict
from core.results.kinds.entry import Progress, feature_meta, stored_entry
from core.results.registry import Computed, KindParts
from core.results.store import StoredResult, result_key

__all__ = [
    "ARRAY_FIELDS",
    "CRITERIA_RUNTIME_ARGS",
    "KIND",
    "PARTS",
    "criteria_entry",
    "criteria_key",
    "criteria_request",
    "decode_criteria",
    "encode_criteria",
    "stored_criteria",
]

KIND = "criteria"
ARRAY_FIELDS = ("values", "uncertainty")  # stored as arrays, not in the JSON part
# Criterion arguments that say where/how it runs or what it shares, not what it computes: not in the key
# (``k`` is the request's own entry, passed to every graph criterion by ``run_criteria``).
CRITERIA_RUNTIME_ARGS = {"features", "labels", "graphs", "k", "n_jobs", "blas_threads", "device"}


def check_criteria(data: Any) -> dict[str, dict[str, Any]]:
    """The JSON part of a criteria entry, each criterion checked against ``CriterionResult`` (its
    arrays left out); RecordError when it is not one."""
    if not isinstance(data, Mapping) or not isinstance(data.get("criteria"), Mapping):
        raise RecordError("data.criteria: expected an object")
    return {
        str(name): check_fields(
            CriterionResult, doc, leave_out=ARRAY_FIELDS, where=f"data.criteria[{name!r}]"
        )
        for name, doc in data["criteria"].items()
    }


def encode_criteria(results: Mapping[str, CriterionResult]) -> Computed:
    """Named criterion results as stored: JSON part and arrays."""
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
    return Computed(data, arrays)


def decode_criteria(entry: StoredResult) -> dict[str, CriterionResult]:
    """Inverse of ``encode_criteria``."""
    return {
        name: from_dict(
            CriterionResult,
            {
                **doc,
                "values": entry.arrays[f"{name}.values"],
                "uncertainty": entry.arrays.get(f"{name}.uncertainty"),
            },
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

    keyed = {"label_set": label_set, **request}

    def run() -> Computed:
        done = encode_criteria(compute())
        return Computed(done.data, done.arrays, dict(keyed))

    return stored_entry(feature_meta(fs), KIND, [label_set], keyed, run, refresh)


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


def compute_criteria(
    features: Any,
    labels: Sequence[Hashable],
    request: Mapping[str, Any],
    *,
    graphs: Mapping[int, Any] | None = None,
    on_error: Callable[[str, LabError], None] | None = None,
    progress: Progress | None = None,
) -> Computed:
    """The criteria of ``request`` (``criteria_request``), one by one, encoded for the store.

    A criterion that fails with a ``LabError`` is reported to ``on_error`` and left out (re-raised when
    there is no ``on_error``); ``graphs`` are kNN graphs already built (e.g. by the convexity engine).
    """
    k = int(request["k"])
    chosen = list(request["options"])
    shared = dict(graphs or {})
    done: dict[str, CriterionResult] = {}
    for i, name in enumerate(chosen):
        if criteria_engine.CRITERIA[name].uses_graphs and len(shared) < features.shape[1]:
            shared = criteria_engine.knn_graphs(features, k, shared)  # once, for all of them
        try:
            done |= criteria_engine.run_criteria(
                features, labels, names=[name], graphs=shared, k=k, options=request["options"]
            )
        except LabError as exc:
            if on_error is None:
                raise
            on_error(name, exc)
        if progress is not None:
            progress(i + 1, len(chosen))
    return encode_criteria(done)


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
    """(entry, from_store) of the criteria of ``fs``'s ``label_set`` labels, computed one by one
    (``compute_criteria``)."""
    labels = list(fs.labels(label_set))
    request = criteria_request(labels, k=k, names=names)
    keyed = {"label_set": label_set, **request}

    def run() -> Computed:
        done = compute_criteria(
            fs.features, labels, request, graphs=graphs, on_error=on_error, progress=progress
        )
        return Computed(done.data, done.arrays, dict(keyed))

    return stored_entry(feature_meta(fs), KIND, [label_set], keyed, run, refresh)


def criteria_key(fs: Any, label_set: str, *, k: int = DEFAULT_K) -> str:
    """The store key ``criteria_entry`` uses for these inputs (nothing computed)."""
    request = criteria_request(list(fs.labels(label_set)), k=k)
    return result_key(feature_meta(fs)["key"], KIND, {"label_set": label_set, **request})


PARTS = KindParts(
    schema=check_criteria,
    request=criteria_request,
    compute=compute_criteria,
    encode=encode_criteria,
    decode=decode_criteria,
)
