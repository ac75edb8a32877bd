"""The ``grid`` kind: one grid's results table (``python -m core grid``), one entry per grid,
replaced as more cells finish. The table's record lives in the training layer above; this layer keeps
its JSON as given, checked to name its grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.io.records import Record
from core.results.provenance import provenance_from_meta
from core.results.registry import Computed, KindParts
from core.results.store import (
    StoredResult,
    jsonable,
    list_results,
    load_result,
    result_key,
    save_result,
)

__all__ = [
    "KIND",
    "PARTS",
    "GridData",
    "grid_request",
    "grid_result_key",
    "store_grid_table",
    "stored_grid_tables",
]

KIND = "grid"


@dataclass(frozen=True)
class GridData(Record):
    """What the store checks of a grid table: the grid it belongs to."""

    grid_id: str


def grid_request(grid_id: str) -> dict[str, Any]:
    """The key-relevant settings of a grid's table: the grid id."""
    return {"grid_id": grid_id}


def encode_grid(table: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> Computed:
    """A grid's table (``GridTable.to_dict()``) as stored, with the grid's settings from ``meta``."""
    settings = dict((meta or {}).get("settings") or {})
    return Computed(jsonable(dict(table)), {}, jsonable(settings))


def grid_result_key(grid_id: str) -> str:
    """The store key of a grid's table: one entry per grid (it is replaced as more cells finish)."""
    return result_key(f"grid:{grid_id}", KIND, grid_request(grid_id))


def store_grid_table(table: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Store a grid's results table (``GridTable.to_dict()``) with provenance; returns its key.

    ``meta``: model ids and weights, dataset, data fingerprints, layer count and device of the grid
    (the training layer builds it; this layer knows no grids), ``settings``: recipe, points, seeds,
    executor. Written atomically under the key's lock, replacing the grid's previous table.
    """
    grid_id = str(table["grid_id"])
    key = grid_result_key(grid_id)
    meta = {**meta, "key": f"grid:{grid_id}"}
    done = encode_grid(table, meta)
    prov = provenance_from_meta(
        dict(meta),
        kind=KIND,
        label_sets=list(meta.get("label_sets") or ()),
        settings=done.settings,
        extra={"grid_id": grid_id},
    )
    save_result(StoredResult(key, KIND, grid_request(grid_id), prov, done.data))
    return key


def stored_grid_tables() -> list[StoredResult]:
    """Every stored grid table (newest first), validated as any stored entry."""
    found = (load_result(e.key) for e in list_results(KIND))
    return [entry for entry in found if entry is not None]


PARTS = KindParts(
    schema=GridData.from_dict,
    request=grid_request,
    compute=encode_grid,
    encode=encode_grid,
    decode=lambda entry: dict(entry.data),
)
