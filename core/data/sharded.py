"""Feature extraction of one (model, selection) split into clip ranges, assembled into the usual cache entry.

Any executor can run the shards (``core.runs.ray_executor`` runs them as Ray tasks): each shard
extracts the clips ``[start, stop)`` of the selection's table with the same code a local run uses
(:func:`core.data.features.compute_rows`) and either writes its rows to a ``.npy`` in the entry's folder
(``out_dir``: when workers share the cache path) or returns them (shipped back through the caller's
transport, e.g. Ray's object store). :func:`assemble_shards` writes each shard's kept rows at its row
offset into one temp memmap under the key's lock, and commits it exactly like
:func:`core.data.features.extract_features` (``features.npy`` by rename, then ``meta.json`` with the
checksum), so the entry is the one a local run makes: same key, same rows, same lists, same checks.
Shard boundaries are multiples of the batch size, so every batch holds the same clips as locally.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data.datasets import ClipTable
from core.data.features import (
    FeatureError,
    FeatureSet,
    Selection,
    begin_entry,
    commit_entry,
    compute_rows,
    encoder_facts,
    entry_lock,
    key_identity,
    plan_entry,
    prepare_encoder,
    read_valid_entry,
    resolve_ref,
)
from core.io.leftovers import writer_tag
from core.models.encoder import SpeechEncoder
from core.models.loading import ResolvedModel
from core.models.request import ModelRequest

__all__ = ["Shard", "assemble_shards", "extract_shard", "plan_shards"]


def plan_shards(n_clips: int, n_shards: int, align: int = 32) -> list[tuple[int, int]]:
    """Split ``0..n_clips`` into at most ``n_shards`` contiguous ranges whose starts are multiples of ``align``."""
    align = max(1, int(align))
    blocks = max(1, -(-n_clips // align))
    per = -(-blocks // max(1, int(n_shards)))
    return [
        (b * align, min(n_clips, (b + per) * align))
        for b in range(0, blocks, per)
        if b * align < n_clips
    ]


@dataclass
class Shard:
    """One extracted clip range: kept rows (global table indices), skipped clips, rows or their file,
    and the identity (cache-key part) of the model that computed them."""

    start: int
    stop: int
    kept: list[int]
    skipped: list[dict[str, str]]
    facts: dict[str, Any]
    stats: dict[str, Any]
    identity: dict[str, Any] = field(default_factory=dict)
    features: np.ndarray | None = None
    path: str | None = None
    notes: list[str] = field(default_factory=list)

    def rows(self) -> np.ndarray:
        """The shard's (kept, L+1, D) rows, from memory or its file."""
        if self.features is not None:
            return self.features
        if self.path is None:
            raise FeatureError(f"shard {self.start}:{self.stop} carries no rows")
        return np.load(self.path, mmap_mode="r", allow_pickle=False)


def _table(selection: Selection | ClipTable) -> ClipTable:
    """The full clip table the shards index into."""
    return selection.table() if isinstance(selection, Selection) else selection


def extract_shard(
    model: ResolvedModel | ModelRequest | SpeechEncoder | str | os.PathLike,
    selection: Selection | ClipTable,
    start: int,
    stop: int,
    *,
    batch_size: int = 32,
    device: str | None = None,
    out_dir: str | os.PathLike | None = None,
) -> Shard:
    """Extract clips ``[start, stop)``; rows go to ``out_dir`` (a file) or come back in memory."""
    table = _table(selection)
    sub = table.take(range(start, min(stop, len(table))))
    encoder = prepare_encoder(resolve_ref(model), device)
    scratch = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir())
    scratch.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=scratch, prefix=f".shard-{start}-{writer_tag()}", suffix=".npy.tmp"
    )
    os.close(fd)
    rows = compute_rows(encoder, sub, Path(tmp), batch_size=batch_size, progress=None)
    arr, kept, skipped, stats = rows.features, rows.kept, rows.skipped, rows.stats
    facts = encoder_facts(encoder)
    shard = Shard(
        start, stop, [start + k for k in kept], skipped, facts, stats, key_identity(encoder)
    )
    if out_dir is None:
        shard.features = np.array(arr)
        del arr, rows
        Path(tmp).unlink(missing_ok=True)
    else:
        shard.path = tmp
    return shard


def _describe(identity: dict[str, Any]) -> str:
    """One phrase naming a model identity: key, weights, input mode, depth."""
    return (
        f"{identity.get('model_key')} ({identity.get('weights')}, {identity.get('input_mode')} "
        f"input, {identity.get('n_layers')} layers)"
    )


def assemble_shards(
    model: ResolvedModel | ModelRequest | SpeechEncoder | str | os.PathLike,
    selection: Selection | ClipTable,
    shards: list[Shard],
    *,
    seconds: float | None = None,
) -> FeatureSet:
    """Write the shards at their row offsets into the (model, selection) cache entry and commit it
    (refused unless every shard was computed by the entry's model: same weights, input mode, depth)."""
    entry, _ = plan_entry(model, selection, "cpu")
    shards = sorted(shards, key=lambda s: s.start)
    covered = [(s.start, min(s.stop, len(entry.table))) for s in shards]
    starts = [0] + [b for _, b in covered[:-1]]
    if not shards or [a for a, _ in covered] != starts or covered[-1][1] != len(entry.table):
        raise FeatureError(f"shards {covered} do not cover the {len(entry.table)} clips exactly")
    facts = shards[0].facts
    for s in shards:
        if s.identity != entry.identity:
            raise FeatureError(
                f"shard {s.start}:{s.stop} was computed by {_describe(s.identity)}, "
                f"the entry is for {_describe(entry.identity)}"
            )
    kept = [i for s in shards for i in s.kept]
    if not kept:
        first = next((s.skipped[0] for s in shards if s.skipped), None)
        why = f" (first: {first['path']}: {first['reason']})" if first else ""
        raise FeatureError(f"none of the {len(entry.table)} clips could be read{why}")
    with entry_lock(entry.key):
        found, _ = read_valid_entry(entry.directory, entry.key)
        if found is not None:
            return found
        tmp = begin_entry(entry.directory)
        try:
            shape = (len(kept), facts["n_layers"] + 1, facts["hidden_size"])
            mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            row = 0
            for s in shards:
                rows = s.rows()
                if rows.shape[0] != len(s.kept) or rows.shape[1:] != shape[1:]:
                    raise FeatureError(
                        f"shard {s.start}:{s.stop} has rows {rows.shape}, expected {len(s.kept)} x {shape[1:]}"
                    )
                mm[row : row + len(s.kept)] = rows
                row += len(s.kept)
            mm.flush()
            del mm
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            for s in shards:
                if s.path is not None:
                    Path(s.path).unlink(missing_ok=True)
            shutil.rmtree(entry.directory / ".shards", ignore_errors=True)
        total = seconds if seconds is not None else sum(s.stats["seconds"] for s in shards)
        stats = {
            "seconds": round(total, 3),
            "clips_per_s": round(len(kept) / total, 2) if total > 0 else None,
            "batch_size": shards[0].stats["batch_size"],
            "final_batch_size": min(s.stats["final_batch_size"] for s in shards),
            "oom_retries": sum(s.stats["oom_retries"] for s in shards),
            "shards": len(shards),
            "assembled_at": time.time(),
        }
        skipped = [c for s in shards for c in s.skipped]
        return commit_entry(entry, tmp, facts, kept, skipped, stats)
