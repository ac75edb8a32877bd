"""Per-layer mean-pooled features of a dataset selection, extracted in bounded memory and cached on disk.

``extract_features(model, selection)`` returns a :class:`FeatureSet` whose ``features`` array is
(N, L+1, D) float32: for every clip that could be read, the mean over valid frames of each of the L+1
hidden states (``SpeechEncoder.pooled``; index 0 = input of layer 1, index i = output of layer i).

Memory: audio is read in chunks (the next chunk is read while the current one runs through the model)
and each batch's pooled (B, L+1, D) is written straight into a preallocated ``.npy`` memmap, so memory
does not grow with N. Batches run under bf16 autocast on CUDA; on ``torch.OutOfMemoryError`` the batch
size is halved and the batch retried (down to 1).

Cache: ``cache_dir()/features/<key>/`` with ``features.npy`` and ``meta.json``. ``key`` is the
sha256 of a JSON document of: the model id and weights identity (the resolved model's,
``core.models.loading``: hub id + commit; local directory: sha256 of its weight/config files;
offline Whisper: sha256 of the source ``model.bin``; a hand-built encoder without a resolved model:
sha256 of its parameters), the dataset fingerprint of the selected clips (paths, labels, splits,
sizes, mtimes), the selection (dataset, task, split, max_clips, seed, min_clips, split_seed; the
speaker regex when one is given), the pooling ("mean-valid-frames"), the input mode (Whisper
"trimmed"/"padded", else "waveform") and the model's layer count. Writes are atomic (temp file +
``os.replace``), ``meta.json`` last as the commit marker; it records shape, dtype, byte size and
sha256 of ``features.npy``. A read checks all of them (the checksum once per file version per
process) and recomputes on any mismatch, with a one-line warning. An exclusive ``fcntl.flock`` on
``<key>.lock`` makes concurrent requests for one key compute it once. Nothing is pickled
(``np.load(..., allow_pickle=False)``).

Caveat: a ``SpeechEncoder`` loaded from a resolved model is identified by it (id, revision or weight
files) and layer count, not by hashing its parameters: weights changed in memory after loading (other
than pruning, which changes the layer count) need ``cache=False``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch

from core.data.audio import LoadResult, load_clips_report
from core.data.datasets import ClipTable
from core.data.source import ClipSource, Selection
from core.errors import FeatureError, RecordError, StorageError
from core.io.atomic import FILE_MODE, atomic_write_json, sha256_file_memo
from core.io.leftovers import STALE_AFTER_S, clean_leftovers, writer_tag
from core.io.locks import exclusive
from core.io.paths import cache_dir, cache_subdir
from core.io.records import Record
from core.models.classifier import autocast
from core.models.encoder import SpeechEncoder
from core.models.identity import ModelIdentity
from core.models.loading import ResolvedModel, as_resolved, encoder_identity
from core.models.request import ModelRequest

__all__ = [
    "POOLING",
    "CacheEntry",
    "FeatureError",
    "FeatureInfo",
    "FeatureSet",
    "Selection",
    "begin_entry",
    "commit_entry",
    "Rows",
    "compute_rows",
    "encoder_facts",
    "clean_feature_leftovers",
    "entry_lock",
    "extract_features",
    "feature_cache_root",
    "feature_key",
    "key_identity",
    "list_cached_features",
    "list_feature_infos",
    "load_cached_features",
    "plan_entry",
    "prepare_encoder",
    "read_valid_entry",
    "remove_cached_features",
    "resolve_cache_key",
    "resolve_ref",
    "write_rows",
]

log = logging.getLogger(__name__)

POOLING = "mean-valid-frames"
FORMAT_VERSION = 1
FEATURES_NAME = "features.npy"
META_NAME = "meta.json"

ProgressFn = Callable[[int, int], None]
# What extraction takes: a name (the default input window), a request, a resolved or a loaded model.
ModelRef = str | os.PathLike | ModelRequest | ResolvedModel | SpeechEncoder


# --------------------------------------------------------------------------------------------------
# Selection (defined with its source in core.data.source)


def _table_and_selection(
    table_selection: ClipTable | Selection,
) -> tuple[ClipTable, dict[str, Any]]:
    """The clip table to extract and the selection description for the key and meta."""
    if isinstance(table_selection, Selection):
        return table_selection.table(), table_selection.key_part()
    if isinstance(table_selection, ClipTable):
        return table_selection, {"dataset": table_selection.dataset, "table": "custom"}
    raise TypeError(f"expected a Selection or a ClipTable, got {type(table_selection).__name__}")


# --------------------------------------------------------------------------------------------------
# Model identity


def _model_identity(model: ModelIdentity, input_mode: str, n_layers: int) -> dict[str, Any]:
    """Everything about the model that enters the cache key: the registry's identity, input mode, depth."""
    return {
        "model_key": model.key,
        "model_id": model.id,
        "source": model.source,
        "weights": model.weights,
        "input_mode": input_mode,
        "n_layers": int(n_layers),
    }


@overload
def key_identity(model: SpeechEncoder) -> dict[str, Any]: ...
@overload
def key_identity(model: ResolvedModel | SpeechEncoder) -> dict[str, Any] | None: ...
def key_identity(model: ResolvedModel | SpeechEncoder) -> dict[str, Any] | None:
    """The model part of the cache key: a resolved model's (None while a hub model's weights are
    unknown: not cached yet), or a loaded encoder's (its current depth, so a pruned model keys apart)."""
    if isinstance(model, SpeechEncoder):
        return _model_identity(encoder_identity(model), model.input_mode, model.n_layers)
    if not model.identity.known:
        return None
    return _model_identity(model.identity, model.input_mode, model.n_layers)


def feature_key(identity: dict[str, Any], fingerprint: str, selection: dict[str, Any]) -> str:
    """The cache key: sha256 of the canonical JSON of model identity, data fingerprint, selection, pooling."""
    payload = {
        "format": FORMAT_VERSION,
        "model": identity,
        "dataset_fingerprint": fingerprint,
        "selection": selection,
        "pooling": POOLING,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# The result


IMPORTED_DATASET = "imported"  # the dataset of feature sets imported as arrays


@dataclass(frozen=True)
class FeatureInfo(Record):
    """What a feature set is, as the pages and exports read it: the summary part of ``meta.json``."""

    key: str
    model_key: str
    model_id: str
    describe: str
    family: str
    input_mode: str
    n_layers: int
    hidden_size: int
    dataset: str
    root: str
    n_clips: int
    device: str = ""
    created: str = ""
    seconds: float = 0.0
    final_layer_norm: bool = False
    selection: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> ClipSource:
        """The data and rules the clips came from, for runs launched from this feature set."""
        return ClipSource.from_meta(
            {
                "key": self.key,
                "dataset": self.dataset,
                "root": self.root,
                "selection": self.selection,
            }
        )

    @property
    def imported(self) -> bool:
        """Whether the set was imported as arrays (no split, cap or input window of ours)."""
        return self.dataset == IMPORTED_DATASET

    def label(self) -> str:
        """One line naming the set in pickers and captions: model, data, clips, input window, key."""
        if self.imported:
            return (
                f"{self.model_key} · imported · {self.n_clips} points · "
                f"{self.n_layers} layers · {self.key[:8]}"
            )
        cap = self.selection.get("max_clips") or "all"
        return (
            f"{self.model_key} · {self.dataset} · split {self.selection.get('split', '?')} · "
            f"{self.n_clips} clips (cap {cap}) · {self.input_mode or '-'} · {self.key[:8]}"
        )


@dataclass
class FeatureSet:
    """Pooled features (N, L+1, D) float32 of the clips that loaded, their labels, the skipped clips and meta."""

    features: np.ndarray
    paths: list[str]
    words: list[str]
    speakers: list[str]
    skipped: list[dict[str, str]]
    meta: dict[str, Any]
    key: str | None = None
    directory: Path | None = None
    from_cache: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        """Transformer layers L (the array has L+1 hidden states)."""
        return int(self.features.shape[1]) - 1

    @property
    def info(self) -> FeatureInfo:
        """The typed summary of ``meta`` (RecordError if the meta lacks a field)."""
        return FeatureInfo.from_dict({"key": self.key, **self.meta})

    @property
    def source(self) -> ClipSource:
        """The data and rules the clips came from (DatasetError if the meta does not name its folder)."""
        return ClipSource.from_meta({"key": self.key, **self.meta})

    def labels(self, name: str) -> list[str]:
        """Label per clip: ``word`` or ``speaker``."""
        if name in ("word", "words"):
            return self.words
        if name in ("speaker", "speakers"):
            return self.speakers
        raise FeatureError(f"unknown label set {name!r}; use 'word' or 'speaker'")


# --------------------------------------------------------------------------------------------------
# Cache files


def feature_cache_root() -> Path:
    """``cache_dir()/features``, created if missing (StorageError where it cannot be)."""
    return cache_subdir("features")


def entry_lock(key: str) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive flock on ``<key>.lock`` (blocks while another process or thread holds it)."""
    return exclusive(feature_cache_root() / f"{key}.lock")


def _feature_set(
    arr: np.ndarray, meta: dict[str, Any], key: str, directory: Path | None = None
) -> FeatureSet:
    """The FeatureSet of an array and its full meta document (per-clip lists split off)."""
    summary, lists = _split_meta(meta)
    return FeatureSet(
        arr,
        lists["paths"],
        lists["words"],
        lists["speakers"],
        lists["skipped"],
        summary,
        key=key,
        directory=directory,
    )


def _split_meta(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """Separate the per-clip lists from the summary meta."""
    lists = {k: meta[k] for k in ("paths", "words", "speakers", "skipped")}
    summary = {k: v for k, v in meta.items() if k not in lists}
    return summary, lists


def read_valid_entry(directory: Path, key: str) -> tuple[FeatureSet | None, str | None]:
    """The cached FeatureSet if every check passes, else (None, reason); (None, None) when nothing is there."""
    meta_path, feat_path = directory / META_NAME, directory / FEATURES_NAME
    if not meta_path.exists():
        return None, None
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            return None, "meta.json is not an object"
        if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
            return None, "meta.json has another format version or key"
        shape = tuple(int(s) for s in meta["shape"])
        n = shape[0]
        if any(len(meta[k]) != n for k in ("paths", "words", "speakers")):
            return None, "meta.json label lists do not match the shape"
        if not feat_path.is_file():
            return None, "features.npy is missing"
        size = feat_path.stat().st_size
        if size != int(meta["bytes"]):
            return None, f"features.npy has {size} bytes, meta.json says {meta['bytes']}"
        arr = np.load(feat_path, mmap_mode="r", allow_pickle=False)
        if arr.shape != shape or arr.dtype != np.dtype(meta["dtype"]):
            return (
                None,
                f"features.npy is {arr.shape} {arr.dtype}, meta.json says {shape} {meta['dtype']}",
            )
        if sha256_file_memo(feat_path) != meta["sha256"]:
            return None, "features.npy checksum mismatch"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    summary, lists = _split_meta(meta)
    return (
        FeatureSet(
            features=arr,
            paths=list(lists["paths"]),
            words=list(lists["words"]),
            speakers=list(lists["speakers"]),
            skipped=list(lists["skipped"]),
            meta=summary,
            key=key,
            directory=directory,
            from_cache=True,
        ),
        None,
    )


def _fsync(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean_stale_temps(directory: Path) -> None:
    """Delete temp files left by killed writers (call only while holding the key's lock)."""
    for p in directory.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()


def clean_feature_leftovers(min_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove what killed writers left in the feature cache; returns what was removed.

    Staging files (``.*.tmp``: rows being written, scratch of an uncached extraction) and shard
    folders are stale once their writer is gone (``core.io.leftovers``); ``<key>.lock`` files once
    nobody holds them; an entry or shard folder left empty goes too. Every cache write runs it first.
    """
    root = feature_cache_root()

    def staging(path: Path) -> bool:
        return path.name.startswith(".") and path.name.endswith(".tmp")

    def lock(path: Path) -> bool:
        return path.suffix == ".lock" and path.parent == root

    try:
        top = list(root.iterdir())
    except OSError:  # cleaning never stops a write: what cannot be listed is left as it is
        return []
    removed = clean_leftovers(top, staging, lock, min_age_s)
    for entry in top:
        if entry.is_symlink() or not entry.is_dir() or staging(entry):
            continue
        shards = entry / ".shards"
        try:
            inside = list(entry.iterdir()) + (list(shards.iterdir()) if shards.is_dir() else [])
        except OSError:
            continue
        removed += clean_leftovers(inside, staging, lock, min_age_s)
        for folder in (shards, entry):  # empty and untouched for min_age_s: nobody is filling it
            with contextlib.suppress(OSError):
                if time.time() - folder.stat().st_mtime > min_age_s:
                    folder.rmdir()
                    removed.append(folder)
    return removed


# --------------------------------------------------------------------------------------------------
# Extraction


@dataclass
class _BatchState:
    """Mutable batch size (halved on OOM) and counters."""

    batch_size: int
    oom_retries: int = 0


def _pooled_batches(
    encoder: SpeechEncoder, waves: np.ndarray, state: _BatchState
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (offset, pooled (B, L+1, D) float32) over ``waves``, halving the batch on OOM and retrying."""
    start = 0
    while start < len(waves):
        bs = state.batch_size
        part = waves[start : start + bs]
        try:
            with autocast(encoder.device):
                pooled = encoder.pooled(part, batch_size=bs)
        except torch.OutOfMemoryError:
            if encoder.device.type == "cuda":
                torch.cuda.empty_cache()
            if bs <= 1:
                raise
            state.batch_size = max(1, bs // 2)
            state.oom_retries += 1
            log.warning("out of memory at batch size %d; retrying with %d", bs, state.batch_size)
            continue
        yield start, pooled.numpy()
        start += len(part)


def _audio_chunks(
    paths: list[Path], chunk: int, *, prefetch: bool
) -> Iterator[tuple[int, LoadResult]]:
    """Yield (first index, loaded clips) per chunk of ``paths``; with ``prefetch`` the next chunk is read meanwhile.

    Prefetching pays on a GPU; on a CPU the reader threads would compete with torch's threads (whose
    barriers spin), which measured 2-3x slower than reading between batches.
    """
    starts = range(0, len(paths), chunk)
    if not prefetch:
        for s in starts:
            yield s, load_clips_report(paths[s : s + chunk])
        return
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = None
        for s in starts:
            current = pending or reader.submit(load_clips_report, paths[s : s + chunk])
            nxt = s + chunk
            pending = (
                reader.submit(load_clips_report, paths[nxt : nxt + chunk])
                if nxt < len(paths)
                else None
            )
            yield s, current.result()


def _allocated_memmap(path: Path, shape: tuple[int, ...]) -> np.memmap:
    """A float32 ``.npy`` memmap whose disk blocks are reserved up front.

    A memmap over a sparse file that meets a full disk kills the process with SIGBUS on a later write,
    with no message; reserving the blocks first turns that into one StorageError line here.
    """
    try:
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    except OSError as exc:  # even the header did not fit
        Path(path).unlink(missing_ok=True)
        raise StorageError(
            f"cannot write features to {path.parent}: {exc.strerror or exc}"
        ) from None
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem that cannot reserve
            del mm
            Path(path).unlink(missing_ok=True)
            raise StorageError(
                f"cannot write features to {path.parent}: {exc.strerror or exc} "
                f"({4 * math.prod(shape) / 2**20:.0f} MiB needed)"
            ) from None
    finally:
        os.close(fd)
    return mm


def write_rows(path: Path, shape: tuple[int, ...], fill: Callable[[np.ndarray], None]) -> None:
    """A new float32 ``.npy`` of ``shape`` at ``path`` (blocks reserved), filled by ``fill(memmap)``."""
    mm = _allocated_memmap(path, shape)
    fill(mm)
    mm.flush()
    del mm
    _fsync(path)


@dataclass(frozen=True)
class Rows:
    """What one pass of an encoder over a clip table wrote: the rows (memmap of the ``.npy``, one
    per kept clip), which table rows were kept, the skipped clips (path, reason) and timing stats."""

    features: np.ndarray
    kept: list[int]
    skipped: list[dict[str, str]]
    stats: dict[str, Any]


def compute_rows(
    encoder: SpeechEncoder,
    table: ClipTable,
    out_path: Path,
    *,
    batch_size: int,
    progress: ProgressFn | None,
) -> Rows:
    """Run the encoder over the table into a ``.npy`` at ``out_path`` (see :class:`Rows`)."""
    n, shape_tail = len(table), (encoder.n_layers + 1, encoder.hidden_size)
    paths = table.abs_paths()
    state = _BatchState(max(1, int(batch_size)))
    chunk = max(256, 4 * state.batch_size)
    kept: list[int] = []
    skipped: list[dict[str, str]] = []
    t0 = time.perf_counter()
    mm = _allocated_memmap(out_path, (n, *shape_tail))
    row = 0
    if progress is not None:
        progress(0, n)
    for s, loaded in _audio_chunks(paths, chunk, prefetch=encoder.device.type == "cuda"):
        for clip in loaded.skipped:
            skipped.append({"path": os.path.relpath(clip.path, table.root), "reason": clip.reason})
        kept.extend(int(s + k) for k in loaded.kept)
        done = s + (min(n, s + chunk) - s - len(loaded.kept))
        for offset, pooled in _pooled_batches(encoder, loaded.clips, state):
            mm[row + offset : row + offset + len(pooled)] = pooled
            done += len(pooled)
            if progress is not None:
                progress(done, n)
        row += len(loaded.kept)
        if progress is not None and not len(loaded.kept):
            progress(done, n)
    mm.flush()
    del mm
    seconds = time.perf_counter() - t0
    if row == 0:
        first = f" (first: {skipped[0]['path']}: {skipped[0]['reason']})" if skipped else ""
        raise FeatureError(f"none of the {n} clips could be read{first}")
    if row < n:  # some clips were skipped: copy the filled rows into a file of the right shape
        full = np.load(out_path, mmap_mode="r", allow_pickle=False)
        compact = out_path.with_name(out_path.name + ".compact.tmp")
        dst = _allocated_memmap(compact, (row, *shape_tail))
        for i in range(0, row, 4096):
            dst[i : i + 4096] = full[i : min(row, i + 4096)]
        dst.flush()
        del dst, full
        os.replace(compact, out_path)
    _fsync(out_path)
    stats = {
        "seconds": round(seconds, 3),
        "clips_per_s": round(row / seconds, 2) if seconds > 0 else None,
        "batch_size": int(batch_size),
        "final_batch_size": state.batch_size,
        "oom_retries": state.oom_retries,
    }
    return Rows(np.load(out_path, mmap_mode="r", allow_pickle=False), kept, skipped, stats)


def resolve_ref(model: ModelRef) -> ResolvedModel | SpeechEncoder:
    """A loaded encoder as it is; anything else resolved (once) to the model it names."""
    return model if isinstance(model, SpeechEncoder) else as_resolved(model)


def prepare_encoder(
    model: ResolvedModel | SpeechEncoder, device: str | torch.device | None
) -> SpeechEncoder:
    """Load a resolved model, or move a given SpeechEncoder to ``device``."""
    if isinstance(model, SpeechEncoder):
        if device is not None and torch.device(device) != model.device:
            model.model.to(device)
            model.device = torch.device(device)
        return model
    return model.load(device=device)


def encoder_facts(encoder: SpeechEncoder) -> dict[str, Any]:
    """What the meta records about the encoder that computed the rows (also sent back by shards)."""
    return {
        "n_layers": encoder.n_layers,
        "hidden_size": encoder.hidden_size,
        "family": encoder.family,
        "describe": encoder.describe(),
        "final_layer_norm": bool(encoder.final_layer_norm),
        "device": str(encoder.device),
        "autocast": "bf16" if encoder.device.type == "cuda" else None,
    }


def _meta(
    key: str,
    identity: dict[str, Any],
    facts: dict[str, Any],
    table: ClipTable,
    fingerprint: str,
    selection: dict[str, Any],
    kept: list[int],
    skipped: list[dict[str, str]],
    stats: dict[str, Any],
    arr: np.ndarray,
    sha: str | None,
    size: int,
) -> dict[str, Any]:
    """The full meta document (summary + per-clip lists)."""
    import transformers

    return {
        "format": FORMAT_VERSION,
        "key": key,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: identity[k] for k in ("model_key", "model_id", "source", "weights", "input_mode")},
        **{k: facts[k] for k in ("n_layers", "hidden_size", "family", "describe")},
        "final_layer_norm": facts["final_layer_norm"],
        "dataset": table.dataset,
        "root": str(table.root),
        "dataset_fingerprint": fingerprint,
        "selection": selection,
        "pooling": facts.get("pooling", POOLING),
        "n_clips": len(kept),
        "n_requested": len(table),
        "n_skipped": len(skipped),
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "bytes": size,
        "sha256": sha,
        "device": facts["device"],
        "autocast": facts["autocast"],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        **stats,
        "paths": [table.paths[i] for i in kept],
        "words": [table.words[i] for i in kept],
        "speakers": [table.speakers[i] for i in kept],
        "skipped": skipped,
    }


def plan_entry(
    model: ModelRef,
    table_selection: ClipTable | Selection,
    device: str | torch.device | None,
) -> tuple[CacheEntry, ResolvedModel | SpeechEncoder]:
    """The cache entry (key, identity, table) of (model, selection) and the model that computes its rows:
    resolved once, and loaded already where its identity is only known after loading."""
    table, selection = _table_and_selection(table_selection)
    fingerprint = table.fingerprint()
    source = resolve_ref(model)
    identity = key_identity(source)
    if identity is None:  # a hub model whose revision is only known after loading
        source = prepare_encoder(source, device)
        identity = key_identity(source)
    key = feature_key(identity, fingerprint, selection)
    return CacheEntry(key, identity, table, fingerprint, selection), source


def extract_features(
    model: ModelRef,
    table_selection: ClipTable | Selection,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
    cache: bool = True,
) -> FeatureSet:
    """Mean-pooled per-layer features (N, L+1, D) of the selected clips, from the disk cache when valid.

    ``model``: a :class:`ModelRequest` (name, Whisper input window "trimmed"/"padded", trust_remote_code),
    a resolved model, a loaded ``SpeechEncoder``, or a bare name (default window, no remote code). It is
    resolved once; a cache miss loads that resolution. ``table_selection``: a :class:`Selection`
    (preferred: its parameters enter the key) or a ``ClipTable``. ``progress(done, total)`` counts
    clips. With ``cache=False`` nothing is read from or written to the cache (the array is an unlinked
    temporary memmap).
    """
    entry, source = plan_entry(model, table_selection, device)
    key, identity, table = entry.key, entry.identity, entry.table
    fingerprint, selection = entry.fingerprint, entry.selection

    if not cache:
        encoder = prepare_encoder(source, device)
        try:
            scratch = feature_cache_root()
            fd, tmp = tempfile.mkstemp(
                dir=scratch, prefix=f".nocache-{writer_tag()}", suffix=".npy.tmp"
            )
        except (OSError, StorageError):  # a read-only cache: the temporary rows go elsewhere
            fd, tmp = tempfile.mkstemp(prefix="convexity-lab-", suffix=".npy.tmp")
        os.close(fd)
        try:
            rows = compute_rows(encoder, table, Path(tmp), batch_size=batch_size, progress=progress)
            arr, kept, skipped, stats = rows.features, rows.kept, rows.skipped, rows.stats
        finally:
            Path(tmp).unlink(missing_ok=True)  # the memmap stays readable until released
        meta = _meta(
            key,
            identity,
            encoder_facts(encoder),
            table,
            fingerprint,
            selection,
            kept,
            skipped,
            stats,
            arr,
            None,
            arr.nbytes,
        )
        return _feature_set(arr, meta, key)

    directory = feature_cache_root() / key
    found, why = read_valid_entry(directory, key)
    if found is not None:
        return found
    with entry_lock(key):
        found, why = read_valid_entry(directory, key)  # another process may have finished meanwhile
        if found is not None:
            return found
        if why is not None:
            log.warning("feature cache %s is invalid (%s); recomputing", key[:12], why)
        encoder = prepare_encoder(source, device)
        with entry_part(directory) as part:
            rows = compute_rows(encoder, table, part, batch_size=batch_size, progress=progress)
            kept, skipped, stats = rows.kept, rows.skipped, rows.stats
            del rows  # the memmap is released before the entry is committed
        return commit_entry(entry, part, encoder_facts(encoder), kept, skipped, stats)


@dataclass(frozen=True)
class CacheEntry:
    """What names a cache entry (its key and what went into it): shared by local and sharded writers."""

    key: str
    identity: dict[str, Any]
    table: ClipTable
    fingerprint: str
    selection: dict[str, Any]

    @property
    def directory(self) -> Path:
        """``feature_cache_root()/<key>``."""
        return feature_cache_root() / self.key


def begin_entry(directory: Path) -> Path:
    """Prepare an entry folder for (re)writing (call under the key's lock); returns a fresh temp path."""
    clean_feature_leftovers()
    directory.mkdir(parents=True, exist_ok=True)
    _clean_stale_temps(directory)
    (directory / META_NAME).unlink(missing_ok=True)  # un-commit before touching the array
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".features.{writer_tag()}", suffix=".npy.tmp")
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def entry_part(directory: Path) -> Iterator[Path]:
    """``begin_entry``'s temp path for the block's writer; where the block fails the temp file goes,
    and so does the entry folder if this writer made it (nothing half-made is left behind)."""
    fresh = not directory.exists()
    try:
        part = begin_entry(directory)
    except OSError as exc:
        if fresh:
            with contextlib.suppress(OSError):
                directory.rmdir()
        if isinstance(exc, StorageError):
            raise
        raise StorageError(f"cannot write features to {directory}: {exc.strerror or exc}") from None
    try:
        yield part
    except BaseException:
        part.unlink(missing_ok=True)
        if fresh:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def commit_entry(
    entry: CacheEntry,
    tmp: Path,
    facts: dict[str, Any],
    kept: list[int],
    skipped: list[dict[str, str]],
    stats: dict[str, Any],
) -> FeatureSet:
    """Rename the filled temp ``.npy`` into place and write ``meta.json`` last (the commit marker)."""
    directory = entry.directory
    try:
        sha = sha256_file_memo(tmp)
        size = tmp.stat().st_size
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, directory / FEATURES_NAME)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    arr = np.load(directory / FEATURES_NAME, mmap_mode="r", allow_pickle=False)
    sha256_file_memo(directory / FEATURES_NAME)  # memoise the checksum for the renamed file
    meta = _meta(
        entry.key,
        entry.identity,
        facts,
        entry.table,
        entry.fingerprint,
        entry.selection,
        kept,
        skipped,
        stats,
        arr,
        sha,
        size,
    )
    atomic_write_json(directory / META_NAME, meta)
    return _feature_set(arr, meta, entry.key, directory)


# --------------------------------------------------------------------------------------------------
# Browsing the cache


def resolve_cache_key(prefix: str) -> str:
    """The full key of a cached feature set from a unique prefix (at least 6 hex digits)."""
    prefix = str(prefix).strip().lower()
    if len(prefix) < 6 or not all(c in "0123456789abcdef" for c in prefix):
        raise FeatureError(f"cache key {prefix[:80]!r}: give at least 6 hex digits")
    root = cache_dir() / "features"  # read only: a lookup creates no folder
    found = root.iterdir() if root.is_dir() else ()
    hits = sorted(p.name for p in found if p.is_dir() and p.name.startswith(prefix))
    if not hits:
        raise FeatureError(f"no cached features with key {prefix!r} in {root}")
    if len(hits) > 1:
        raise FeatureError(
            f"cache key prefix {prefix!r} is ambiguous: {', '.join(h[:12] for h in hits)}"
        )
    return hits[0]


def load_cached_features(key: str) -> FeatureSet:
    """A cached feature set by key (or unique prefix), validated; FeatureError if missing or invalid."""
    full = resolve_cache_key(key)
    found, why = read_valid_entry(feature_cache_root() / full, full)
    if found is None:
        raise FeatureError(
            f"cached features {full[:12]} are {'invalid: ' + why if why else 'incomplete'}; "
            "extract them again"
        )
    return found


def list_cached_features() -> list[dict[str, Any]]:
    """Summaries of the cached feature sets (newest first), for the dashboard; cheap checks only, no hashing."""
    out: list[dict[str, Any]] = []
    for directory in feature_cache_root().iterdir():
        meta_path = directory / META_NAME
        if not directory.is_dir() or not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text())
            summary, _ = _split_meta(meta)
            feat = directory / FEATURES_NAME
            summary["complete"] = feat.is_file() and feat.stat().st_size == int(meta["bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        summary["directory"] = str(directory)
        out.append(summary)
    out.sort(key=lambda m: str(m.get("created", "")), reverse=True)
    return out


def list_feature_infos() -> list[FeatureInfo]:
    """The complete cached feature sets (newest first) as typed summaries; a set whose meta lacks a
    field is left out (the pages could not load it)."""
    out = []
    for summary in list_cached_features():
        if not summary.get("complete"):
            continue
        try:
            out.append(FeatureInfo.from_dict(summary))
        except RecordError:
            continue
    return out


def remove_cached_features(key: str) -> None:
    """Delete one cached feature set (under its lock)."""
    full = resolve_cache_key(key)
    with entry_lock(full):
        shutil.rmtree(feature_cache_root() / full, ignore_errors=True)
