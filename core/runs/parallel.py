"""Feature extraction in clip-range shards and convexity one (feature set, layer) per call, on any executor.

- feature extraction -> clip-range shards (:mod:`core.data.sharded`), assembled by the driver into
  the same cache entry a local run writes;
- convexity of many (feature set, layer) pairs -> one call each (label sets of one layer stay
  together: they share that layer's kNN graph).

On the ``ray`` executor each call is a Ray task (:meth:`core.runs.ray_executor.RayExecutor.map`);
on ``local`` they run one after another in this process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.runs.ray_executor import require_ray

__all__ = ["extract_features_sharded", "parallel_convexity"]


def extract_features_sharded(
    model: Any,
    selection: Any,
    executor: Any,
    *,
    n_shards: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
) -> Any:
    """Features of (model, selection) extracted in clip-range shards on ``executor``, cached as usual.

    Shards write their rows next to the cache entry when the worker shares the cache (``out_dir``),
    else return them through the object store; the driver assembles and commits the entry. ``model``
    (a ``ModelRequest`` or a name) travels as asked: each worker resolves it on its own machine, and
    the driver refuses shards whose weights are not the entry's.
    """
    from core.data.features import plan_entry, read_valid_entry
    from core.data.sharded import assemble_shards, plan_shards

    entry, _ = plan_entry(model, selection, "cpu")
    found, _ = read_valid_entry(entry.directory, entry.key)
    if found is not None:
        return found
    cpus = executor.connect().cluster_resources().get("CPU", 1) if executor.name == "ray" else 1
    ranges = plan_shards(len(entry.table), n_shards or max(1, int(cpus)), align=batch_size)
    spec = getattr(executor, "spec", None)
    shared = spec is not None and spec.results != "object-store"
    out_dir = str(entry.directory / ".shards") if shared else None
    t0 = time.perf_counter()
    calls = [(model, selection, a, b, batch_size, device, out_dir) for a, b in ranges]
    shards = executor.map(_shard, calls, gpu=True)
    return assemble_shards(model, selection, shards, seconds=time.perf_counter() - t0)


def _shard(
    model: Any,
    selection: Any,
    start: int,
    stop: int,
    batch_size: int,
    device: str | None,
    out_dir: str | None,
) -> Any:
    """One shard (a module-level function, so Ray pickles it by reference); falls back to memory."""
    from core.data.sharded import extract_shard

    if out_dir is not None and not out_dir.startswith(os.environ.get("CONVEXITY_LAB_CACHE", "?")):
        out_dir = None  # this worker does not share the driver's cache: ship the rows back
    return extract_shard(
        model,
        selection,
        start,
        stop,
        batch_size=batch_size,
        device=device,
        out_dir=out_dir,
    )


def _convexity_layer(
    features: Any, labels: Mapping[str, Any], layer: int, options: ConvexityOptions
) -> Any:
    """Convexity of every label set at one layer (features: an array or a cache key)."""
    from core.geometry.convexity import layerwise_convexity

    if isinstance(features, str):
        from core.data.features import load_cached_features

        features = load_cached_features(features).features
    elif type(features).__name__ == "ObjectRef":  # nested in the call's args: not resolved by Ray
        features = require_ray().get(features)
    return layerwise_convexity(features, dict(labels), options, layers=[layer])


def parallel_convexity(
    items: Sequence[tuple[Any, Mapping[str, Any]]],
    executor: Any,
    options: ConvexityOptions = DEFAULT_OPTIONS,
    *,
    layers: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """``layerwise_convexity(features, labels, options)`` for many feature sets, one task per
    (set, layer).

    ``items``: (features array or cached-features key, {label set name: labels}). Returns, per item,
    {name: ConvexityCurve} equal to the one-process result (the pair sampling is seeded per layer).
    """
    from core.geometry.convexity import ConvexityCurve

    ray = executor.connect() if executor.name == "ray" else None
    calls, shape = [], []
    for features, labels in items:
        n_states = _n_states(features)
        chosen = list(range(n_states)) if layers is None else [int(i) for i in layers]
        ref = ray.put(features) if ray is not None and not isinstance(features, str) else features
        calls += [(ref, dict(labels), i, options) for i in chosen]
        shape.append(chosen)
    flat = executor.map(_convexity_layer, calls, gpu=False)
    out, pos = [], 0
    for chosen in shape:
        parts = flat[pos : pos + len(chosen)]
        pos += len(chosen)
        out.append(
            {
                name: ConvexityCurve(name, tuple(chosen), tuple(p[name].results[0] for p in parts))
                for name in parts[0]
            }
        )
    return out


def _n_states(features: Any) -> int:
    """Hidden states (L+1) of a feature array or cached-features key."""
    if isinstance(features, str):
        from core.data.features import load_cached_features

        return int(load_cached_features(features).features.shape[1])
    return int(features.shape[1])
