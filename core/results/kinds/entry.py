"""What every kind's get-or-compute shares: a feature set's keyed meta and one stored entry of a kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.errors import ResultError
from core.results.provenance import provenance_from_meta
from core.results.registry import Computed, result_kind
from core.results.store import StoredResult, get_or_compute, jsonable, result_key

__all__ = ["Progress", "feature_meta", "stored_entry"]

Progress = Callable[[int, int], None]


def feature_meta(fs: Any) -> dict[str, Any]:
    """A feature set's meta with its key (a FeatureSet or a plain meta dict)."""
    meta = dict(getattr(fs, "meta", fs))
    key = getattr(fs, "key", None) or meta.get("key")
    if not key:
        raise ResultError(
            "the feature set has no cache key; results of uncached features are not stored"
        )
    meta["key"] = key
    return meta


def stored_entry(
    meta: Mapping[str, Any],
    kind: str,
    label_sets: Sequence[str],
    request: Mapping[str, Any],
    compute: Callable[[], Computed],
    refresh: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of one request of ``kind`` keyed by ``meta["key"]``: the stored entry when
    one is valid, else ``compute()`` stored with its provenance (``extra``: more provenance fields)."""
    name = result_kind(kind).name
    key = result_key(meta["key"], name, request)

    def build() -> StoredResult:
        done = compute()
        prov = provenance_from_meta(
            dict(meta),
            kind=name,
            label_sets=list(label_sets),
            settings=jsonable(done.settings),
            extra=None if extra is None else dict(extra),
        )
        return StoredResult(
            key, name, jsonable(dict(request)), prov, jsonable(done.data), done.arrays
        )

    return get_or_compute(key, build, refresh=refresh)
