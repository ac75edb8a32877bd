"""The ``aligned-umap`` kind: UMAP layouts (checkpoints, N, 2) of one hidden state across the
checkpoints of a stored series, each fitted onto the previous one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.geometry.aligned import aligned_layouts
from core.geometry.options import DEFAULT_UMAP, UmapOptions
from core.results.kinds.entry import Progress
from core.results.kinds.umap import LayoutData, decode_layout
from core.results.registry import Computed, KindParts

__all__ = ["KIND", "PARTS", "aligned_request", "compute_aligned", "encode_aligned"]

KIND = "aligned-umap"


def aligned_request(
    series_key: str, layer: int, options: UmapOptions = DEFAULT_UMAP
) -> dict[str, Any]:
    """The key-relevant settings of an aligned layout: the series, the hidden state and the UMAP
    options."""
    return {"series": series_key, "layer": int(layer), **options.to_dict()}


def encode_aligned(layouts: np.ndarray, options: UmapOptions = DEFAULT_UMAP) -> Computed:
    """Aligned layouts as stored (the array as computed), with the UMAP options as settings."""
    return Computed({"shape": list(layouts.shape)}, {"layout": layouts}, options.to_dict())


def compute_aligned(
    features: Sequence[np.ndarray],
    options: UmapOptions = DEFAULT_UMAP,
    progress: Progress | None = None,
) -> Computed:
    """``aligned_layouts`` of one hidden state's features under each checkpoint, encoded."""
    return encode_aligned(aligned_layouts(features, options, progress=progress), options)


PARTS = KindParts(
    schema=LayoutData.from_dict,
    request=aligned_request,
    compute=compute_aligned,
    encode=encode_aligned,
    decode=decode_layout,
)
