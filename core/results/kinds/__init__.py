"""One module per kind of stored result, each ending in its ``PARTS`` (registered in
``core.results.registry.RESULT_KINDS``), and the get-or-compute functions callers use.

Each ``*_entry`` function keys the request (feature key, kind, the engine's settings, engine version),
returns the stored entry when one is valid and otherwise runs the engine and stores its result with
provenance; each ``stored_*`` function gives the engine's own result back.
"""

from core.results.kinds.convexity import (
    convexity_entry,
    convexity_request,
    decode_curves,
    encode_curves,
    stored_convexity,
)
from core.results.kinds.criteria import (
    criteria_entry,
    criteria_key,
    criteria_request,
    decode_criteria,
    encode_criteria,
    stored_criteria,
)
from core.results.kinds.diagnostics import (
    decode_diagnostics,
    diagnostics_entry,
    diagnostics_request,
    encode_diagnostics,
    stored_diagnostics,
)
from core.results.kinds.entry import Progress
from core.results.kinds.grid import grid_result_key, store_grid_table, stored_grid_tables
from core.results.kinds.statistics import (
    resample_units,
    statistics_entry,
    statistics_key,
    statistics_request,
    stored_statistics,
)
from core.results.kinds.umap import stored_umap, umap_entry, umap_request

__all__ = [
    "Progress",
    "convexity_entry",
    "convexity_request",
    "criteria_entry",
    "criteria_key",
    "criteria_request",
    "decode_criteria",
    "decode_curves",
    "decode_diagnostics",
    "diagnostics_entry",
    "diagnostics_request",
    "encode_criteria",
    "encode_curves",
    "encode_diagnostics",
    "grid_result_key",
    "resample_units",
    "statistics_entry",
    "statistics_key",
    "statistics_request",
    "store_grid_table",
    "stored_convexity",
    "stored_criteria",
    "stored_diagnostics",
    "stored_grid_tables",
    "stored_statistics",
    "stored_umap",
    "umap_entry",
    "umap_request",
]
