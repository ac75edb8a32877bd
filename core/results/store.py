"""The on-disk results store: computed curves, criteria and layouts that outlive the process.

Layout: ``cache_dir()/results/<key>/entry.json`` (+ ``<name>.npy`` per array). ``key`` is the sha256 of
the canonical JSON of (schema, feature key, kind, request settings, engine version), so the CLI and the
dashboard asking for the same thing find the same entry. ``entry.json`` holds the kind, the request,
the :class:`Provenance`, the JSON part of the result, each array's file/shape/dtype/bytes/sha256, and a
sha256 of its own content. A read checks all of that and treats anything wrong as missing (a warning is
logged; the caller recomputes), never a crash. Writes build the entry in a temporary folder and rename it
into place, under an exclusive ``fcntl.flock`` on ``<key>.lock``: two processes computing one key
produce one valid entry (the second finds the first's). Arrays are saved with ``np.save`` and read with
``np.load(allow_pickle=False)``; nothing is pickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LabError, ResultError, StorageError
from core.io.atomic import DIR_MODE, FILE_MODE, atomic_write_bytes, sha256_file
from core.io.leftovers import STALE_AFTER_S, clean_leftovers, writer_tag
from core.io.locks import exclusive
from core.io.npy import read_npy_header
from core.io.paths import cache_dir, cache_subdir
from core.results.origin import Origin, computed_only, read_origin
from core.results.provenance import Provenance, engine_version
from core.results.schemas import check_data

log = logging.getLogger(__name__)

SCHEMA = 1
ENTRY_NAME = "entry.json"
KEY_RE = re.compile(r"^[0-9a-f]{64}$")
ARRAY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")
MAX_DEPTH = 32  # JSON nesting of an entry: ours stay under 10; deeper is not ours
KINDS = (
    "convexity",
    "criteria",
    "umap",
    "finetune-convexity",
    "grid",
    "series",
    "aligned-umap",
    "diagnostics",
    "curve-statistics",
    "plans-table",
)


@dataclass(frozen=True)
class StoredResult:
    """One stored entry: what was asked (``request``), where it came from, its JSON data and arrays."""

    key: str
    kind: str
    request: dict[str, Any]
    provenance: Provenance
    data: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    origin: Origin = field(default_factory=Origin)  # recorded beside the entry, not part of it

    def label(self) -> str:
        """One-line description for pickers and listings (imported results say so)."""
        p = self.provenance
        sets = "+".join(p.label_sets) or "-"
        imported = "" if self.origin.is_computed else f" · {self.origin.tag()}"
        return (
            f"{p.model_key or p.model_id} · {p.dataset} · {p.n_clips} clips · {self.kind} "
            f"[{sets}] · {p.sampling_text() if self.kind == 'convexity' else ''}"
            f" · {self.key[:8]}{imported}"
        ).replace(" ·  · ", " · ")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the entry, without the arrays (they are listed in ``entry.json``)."""
        return {
            "schema": SCHEMA,
            "key": self.key,
            "kind": self.kind,
            "request": self.request,
            "provenance": self.provenance.to_dict(),
            "data": self.data,
        }


@dataclass(frozen=True)
class EntryInfo(StoredResult):
    """A listed entry, read from ``entry.json`` only (arrays not loaded or checked); ``n_bytes`` on disk."""

    n_bytes: int = 0


# --------------------------------------------------------------------------------------------------
# Keys and paths


def results_root() -> Path:
    """``cache_dir()/results``, created if missing (StorageError where it cannot be): for writers."""
    return cache_subdir("results")


def results_path() -> Path:
    """``cache_dir()/results`` as it is, for readers: a read-only cache without one holds nothing."""
    return cache_dir() / "results"


def _entry_dirs() -> list[Path]:
    """The stored entries' folders (none where the results folder is missing or unreadable)."""
    try:
        return [d for d in results_path().iterdir() if KEY_RE.match(d.name) and d.is_dir()]
    except OSError:
        return []


def _canonical(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, numpy scalars and arrays as plain values)."""
    return json.dumps(obj, sort_keys=True, default=_plain, allow_nan=True).encode()


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars/arrays, tuples and paths."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types (what a round trip through the store returns)."""
    return json.loads(_canonical(obj))


def result_key(
    feature_key: str, kind: str, request: Mapping[str, Any], engine: str | None = None
) -> str:
    """The store key of (feature set, kind, request settings, engine version).

    ``engine``: the engine version the result was computed with (default: the current one).
    """
    payload = {
        "schema": SCHEMA,
        "feature_key": str(feature_key),
        "kind": kind,
        "request": jsonable(dict(request)),
        "engine_version": engine_version(kind) if engine is None else str(engine),
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


def _check_key(key: str) -> str:
    """A full key (64 hex digits), else ResultError: keys become folder names."""
    if not KEY_RE.match(str(key)):
        raise ResultError(f"not a result key: {str(key)[:80]!r}")
    return str(key)


def entry_lock(key: str) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive flock on ``<key>.lock`` in the results folder (blocks while another holds it)."""
    return exclusive(results_root() / f"{_check_key(key)}.lock")


# --------------------------------------------------------------------------------------------------
# Reading and validating


def _doc_sha(doc: Mapping[str, Any]) -> str:
    """sha256 of an entry document without its own ``sha256`` field."""
    return hashlib.sha256(_canonical({k: v for k, v in doc.items() if k != "sha256"})).hexdigest()


def _depth(obj: Any, limit: int = MAX_DEPTH + 1) -> int:
    """Nesting depth of a JSON value (stops counting past ``limit``)."""
    if limit <= 0 or not isinstance(obj, dict | list):
        return 0
    items = obj.values() if isinstance(obj, dict) else obj
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def check_entry_doc(doc: Any, key: str | None = None) -> tuple[Provenance | None, str | None]:
    """(its typed provenance, None) when ``entry.json`` content can be used, else (None, why): schema,
    the key (asked for, and the one its own request gives), checksum, depth, provenance, the data's
    shape for its kind, the array list."""
    if not isinstance(doc, dict):
        return None, "entry.json is not an object"
    if doc.get("schema") != SCHEMA:
        return None, f"schema {doc.get('schema')!r}, expected {SCHEMA}"
    if not KEY_RE.match(str(doc.get("key"))) or (key is not None and doc.get("key") != key):
        return None, "entry.json names another key"
    if doc.get("kind") not in KINDS:
        return None, f"unknown kind {doc.get('kind')!r}"
    for name, typ in (("request", dict), ("provenance", dict), ("data", dict), ("arrays", dict)):
        if not isinstance(doc.get(name), typ):
            return None, f"entry.json field {name!r} is missing or not an object"
    if doc.get("sha256") != _doc_sha(doc):
        return None, "entry.json checksum mismatch"
    if _depth(doc) > MAX_DEPTH:
        return None, f"entry.json is nested deeper than {MAX_DEPTH} levels"
    try:
        prov = Provenance.from_dict(doc["provenance"])
    except LabError as exc:
        return None, f"provenance: {exc}"
    if result_key(prov.feature_key, doc["kind"], doc["request"], prov.engine_version) != doc["key"]:
        return None, "entry.json's key is not the key of its own request"
    if (why := check_data(doc["kind"], doc["data"])) is not None:
        return None, why
    for name, spec in doc["arrays"].items():
        if not ARRAY_NAME_RE.match(str(name)) or not isinstance(spec, dict):
            return None, f"bad array entry {str(name)[:40]!r}"
        if spec.get("file") != f"{name}.npy":
            return None, f"array {name!r} names file {spec.get('file')!r}"
        for fld in ("shape", "dtype", "bytes", "sha256"):
            if fld not in spec:
                return None, f"array {name!r} lacks {fld!r}"
    return prov, None


def _load_array(path: Path, spec: Mapping[str, Any]) -> np.ndarray:
    """One array file checked against its listed size, checksum, shape and dtype (ValueError if not)."""
    if not path.is_file():
        raise ValueError(f"{path.name} is missing")
    size = path.stat().st_size
    if size != int(spec["bytes"]):
        raise ValueError(f"{path.name} has {size} bytes, entry.json says {spec['bytes']}")
    if sha256_file(path) != spec["sha256"]:
        raise ValueError(f"{path.name} checksum mismatch")
    with open(path, "rb") as fh:
        header = read_npy_header(fh)
    if list(header.shape) != list(spec["shape"]) or str(header.dtype) != spec["dtype"]:
        raise ValueError(f"{path.name} is {header.shape} {header.dtype}, entry.json says otherwise")
    if header.dtype.hasobject or header.total_bytes != size:
        raise ValueError(f"{path.name}'s header declares {header.shape}, not its {size} bytes")
    return np.load(path, allow_pickle=False)


def read_entry(directory: Path, key: str | None = None) -> tuple[StoredResult | None, str | None]:
    """The validated entry in ``directory``, else (None, reason); (None, None) when there is none."""
    entry = directory / ENTRY_NAME
    if not entry.is_file():
        return None, None
    try:
        doc = json.loads(entry.read_text(encoding="utf-8"))
        prov, why = check_entry_doc(doc, key)
        if prov is None:
            return None, why
        arrays = {
            name: _load_array(directory / spec["file"], spec)
            for name, spec in doc["arrays"].items()
        }
        origin = read_origin(directory)
        result = StoredResult(
            key=doc["key"],
            kind=doc["kind"],
            request=doc["request"],
            provenance=replace(prov, origin=origin),
            data=doc["data"],
            arrays=arrays,
            origin=origin,
        )
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        return None, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return result, None


def load_result(key: str) -> StoredResult | None:
    """The stored entry for ``key`` if present and valid; None (with a logged warning if invalid)."""
    found, why = read_entry(results_path() / _check_key(key), key)
    if why is not None:
        log.warning("stored result %s is invalid (%s); it will be recomputed", key[:12], why)
    return found


# --------------------------------------------------------------------------------------------------
# Writing


def write_entry(directory: Path, result: StoredResult) -> None:
    """Write ``result``'s files into an existing empty ``directory`` (arrays first, entry.json last)."""
    specs: dict[str, dict[str, Any]] = {}
    for name, arr in result.arrays.items():
        if not ARRAY_NAME_RE.match(name):
            raise ResultError(f"bad array name {name!r}")
        arr = np.asarray(arr)
        if arr.dtype.hasobject:
            raise ResultError(
                f"array {name!r} holds Python objects; only numeric arrays are stored"
            )
        path = directory / f"{name}.npy"
        with open(path, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
        os.chmod(path, FILE_MODE)
        specs[name] = {
            "file": path.name,
            "shape": list(arr.shape),
            "dtype": str(arr.dtype),
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
    doc = jsonable(result.to_dict()) | {"arrays": specs}
    doc["sha256"] = _doc_sha(doc)
    atomic_write_bytes(directory / ENTRY_NAME, json.dumps(doc, indent=1, sort_keys=True).encode())


def install_entry(staged: Path, key: str) -> Path:
    """Move a staged entry folder into place as ``<key>/`` (call while holding the key's lock).

    An entry already there is moved aside first and removed only once the new one is in place, so a
    reader sees the old entry, then the new one (or, for an instant, none: a miss, never a mix).
    """
    final = results_root() / _check_key(key)
    old = None
    if final.is_symlink() or final.is_file():
        final.unlink()
    elif final.exists():
        old = final.with_name(f".{key[:12]}-replaced{writer_tag()}.tmp")
        final.rename(old)
    staged.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_result(result: StoredResult) -> Path:
    """Store ``result`` under its key (replacing what is there), atomically and under the key's lock."""
    with entry_lock(result.key):
        return _save_locked(result)


def _save_locked(result: StoredResult) -> Path:
    """``save_result`` for a caller that already holds the lock."""
    try:
        staged = Path(
            tempfile.mkdtemp(
                dir=results_root(), prefix=f".{result.key[:12]}-{writer_tag()}", suffix=".tmp"
            )
        )
    except OSError as exc:
        raise StorageError(f"cannot write in {results_root()}: {exc.strerror or exc}") from None
    try:
        os.chmod(staged, DIR_MODE)  # mkdtemp's 0700 would hide the entry from other users
        write_entry(staged, result)
        Origin.computed().write(staged)
        return install_entry(staged, result.key)
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise StorageError(f"cannot write {staged}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def get_or_compute(
    key: str, compute: Callable[[], StoredResult], *, refresh: bool = False
) -> tuple[StoredResult, bool]:
    """(entry, from_store): the valid stored entry for ``key``, else ``compute()`` stored under it.

    Concurrent callers for one key wait on its lock; the later ones find the first one's entry.
    ``refresh`` recomputes even when a valid entry exists (the user asked). Where the store cannot be
    written (a read-only cache, a full disk) the result is computed and returned, with one warning.
    """
    if not refresh and (found := _usable(load_result(key))) is not None:
        return found, True
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(entry_lock(key))
        except StorageError as exc:  # a read-only cache: compute, say it is not kept
            log.warning("the result is computed but not stored: %s", exc)
            return _checked(compute(), key, kept=False), False
        if not refresh and (found := _usable(load_result(key))) is not None:
            return found, True
        result = _checked(compute(), key, kept=True)
        try:
            _save_locked(result)
        except StorageError as exc:  # a full disk: the computed result is still the caller's
            log.warning("the result is computed but not stored: %s", exc)
            result = replace(result, origin=Origin.computed(kept=False))
    return result, False


def _usable(found: StoredResult | None) -> StoredResult | None:
    """A stored entry a computation may use: any, unless only results computed here are trusted
    (``computed_only``), when an imported or unrecorded one is recomputed (and replaced)."""
    if found is not None and computed_only() and not found.origin.is_computed:
        log.warning("ignoring stored result %s (%s)", found.key[:12], found.origin.describe())
        return None
    return found


def _checked(result: StoredResult, key: str, kept: bool) -> StoredResult:
    """``result``, marked computed here (and whether it will be kept), if it carries ``key`` (a
    compute function that keyed it otherwise is a bug)."""
    if result.key != key:
        raise ResultError(f"computed entry has key {result.key[:12]}, expected {key[:12]}")
    return replace(result, origin=Origin.computed(kept=kept))


# --------------------------------------------------------------------------------------------------
# Browsing


def list_results(kind: str | None = None) -> list[EntryInfo]:
    """Entries in the store (newest first), optionally of one kind; unreadable entries are skipped."""
    out: list[EntryInfo] = []
    for directory in _entry_dirs():
        try:
            doc = json.loads((directory / ENTRY_NAME).read_text(encoding="utf-8"))
            prov, _ = check_entry_doc(doc, directory.name)
            if prov is None:
                continue
            if kind is not None and doc["kind"] != kind:
                continue
            size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
            origin = read_origin(directory)
            out.append(
                EntryInfo(
                    key=doc["key"],
                    kind=doc["kind"],
                    request=doc["request"],
                    provenance=replace(prov, origin=origin),
                    data=doc["data"],
                    origin=origin,
                    n_bytes=size,
                )
            )
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
    out.sort(key=lambda e: e.provenance.created, reverse=True)
    return out


def resolve_result_key(prefix: str) -> str:
    """The full key of a stored entry from a unique prefix (at least 6 hex digits)."""
    prefix = str(prefix).strip().lower()
    if len(prefix) < 6 or not all(c in "0123456789abcdef" for c in prefix):
        raise ResultError(f"result key {prefix[:80]!r}: give at least 6 hex digits")
    hits = sorted(p.name for p in _entry_dirs() if p.name.startswith(prefix))
    if not hits:
        raise ResultError(f"no stored result with key {prefix!r} in {results_path()}")
    if len(hits) > 1:
        raise ResultError(f"result key {prefix!r} is ambiguous: {', '.join(h[:12] for h in hits)}")
    return hits[0]


def clean_stale(min_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove staging folders and lock files of writers that are gone; returns what was removed.

    A staging folder (``.<key>-*.tmp``) is stale once its writer is gone (``core.io.leftovers``: the
    process named in it has ended, else older than ``min_age_s``); a ``<key>.lock`` as old is
    removed only while nobody holds it.
    """

    def staging(path: Path) -> bool:
        return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_dir()

    def lock(path: Path) -> bool:
        return path.suffix == ".lock" and KEY_RE.match(path.stem) is not None

    return clean_leftovers(results_root().iterdir(), staging, lock, min_age_s)


def remove_result(key: str) -> None:
    """Delete one stored entry (under its lock)."""
    with entry_lock(key):
        shutil.rmtree(results_root() / _check_key(key), ignore_errors=True)
