"""The ``umap`` kind: aligned UMAP layouts (L+1, N, 2) of every hidden state of one feature set."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.geometry import projections as projection_engine
from core.geometry.options import DEFAULT_UMAP, UmapOptions
from core.io.records import Record
from core.results.kinds.entry import Progress, feature_meta, stored_entry
from core.results.registry import Computed, KindParts
from core.results.store import StoredResult

__all__ = [
    "KIND",
    "PARTS",
    "LayoutData",
    "compute_umap",
    "encode_layout",
    "stored_umap",
    "umap_entry",
    "umap_request",
]

KIND = "umap"


@dataclass(frozen=True)
class LayoutData(Record):
    """The JSON part of a layout entry: the layout array's shape (the array is ``layout``)."""

    shape: tuple[int, int, int]


def umap_request(options: UmapOptions = DEFAULT_UMAP) -> dict[str, Any]:
    """The key-relevant settings: the whole ``UmapOptions`` record."""
    return options.to_dict()


def encode_layout(layout: Any, settings: Mapping[str, Any] | None = None) -> Computed:
    """A layout (float32) as stored: its shape as JSON, the array as ``layout``."""
    layout = np.asarray(layout, dtype=np.float32)
    return Computed({"shape": list(layout.shape)}, {"layout": layout}, dict(settings or {}))


def decode_layout(entry: StoredResult) -> np.ndarray:
    """A stored layout's array."""
    return np.asarray(entry.arrays["layout"])


def compute_umap(
    features: Any, options: UmapOptions = DEFAULT_UMAP, progress: Progress | None = None
) -> Computed:
    """``layer_embeddings`` of ``features``, encoded for the store (its settings: the options)."""
    layout = projection_engine.layer_embeddings(features, options, progress=progress)
    return encode_layout(layout, umap_request(options))


def umap_entry(
    fs: Any,
    options: UmapOptions = DEFAULT_UMAP,
    *,
    progress: Progress | None = None,
    refresh: bool = False,
) -> tuple[StoredResult, bool]:
    """(entry, from_store) of the aligned UMAP layouts (L+1, N, 2) of feature set ``fs``."""
    request = umap_request(options)
    compute = lambda: compute_umap(fs.features, options, progress)  # noqa: E731
    return stored_entry(feature_meta(fs), KIND, [], request, compute, refresh)


def stored_umap(
    fs: Any,
    request: Mapping[str, Any],
    compute: Callable[[], np.ndarray],
    *,
    refresh: bool = False,
) -> tuple[np.ndarray, bool]:
    """(layouts (L+1, N, 2), from_store): ``compute()`` through the store, keyed by ``request``."""
    entry, hit = stored_entry(
        feature_meta(fs), KIND, [], request, lambda: encode_layout(compute(), request), refresh
    )
    return decode_layout(entry), hit


PARTS = KindParts(
    schema=LayoutData.from_dict,
    request=umap_request,
    compute=compute_umap,
    encode=encode_layout,
    decode=decode_layout,
)
