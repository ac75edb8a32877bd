"""Portable bundles of stored results: a zip that opens on another machine without features or model.

Layout: ``manifest.json`` (schema, entries, and every member's size and sha256) plus ``<key>/entry.json``
and ``<key>/<name>.npy`` per entry. Importing trusts nothing: the archive's size and member count are
capped, member names must be ``<64-hex key>/<name>.json|.npy`` (no absolute paths, no ``..``, no other
types, so no pickles), declared sizes are capped before anything is read, every member must match the
manifest, each entry is validated like a store read (``np.load(allow_pickle=False)``, checksums), and only
then is it moved into the store. Any failure raises :class:`BundleError` with one line and installs nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from core.errors import BundleError
from core.io.atomic import DIR_MODE, FILE_MODE, atomic_write_bytes
from core.io.leftovers import writer_tag
from core.results.origin import ORIGIN_NAME, Origin
from core.results.store import (
    ENTRY_NAME,
    KEY_RE,
    entry_lock,
    install_entry,
    read_entry,
    resolve_result_key,
    results_path,
    results_root,
)

MANIFEST = "manifest.json"
BUNDLE_SCHEMA = 1
MAX_BUNDLE_BYTES = 512 << 20  # the zip file
MAX_MEMBER_BYTES = 256 << 20  # one uncompressed member
MAX_TOTAL_BYTES = 1 << 30  # all members uncompressed
MAX_MEMBERS = 2000
MEMBER_RE = re.compile(r"^([0-9a-f]{64})/([A-Za-z0-9][A-Za-z0-9_.-]{0,120}\.(?:json|npy))$")


def export_bundle(keys: Sequence[str], out: str | os.PathLike) -> Path:
    """Write the stored entries ``keys`` (full keys or unique prefixes) to a zip bundle at ``out``."""
    if not keys:
        raise BundleError("give at least one result key to export")
    full = list(dict.fromkeys(resolve_result_key(k) for k in keys))
    members: dict[str, bytes] = {}
    for key in full:
        entry, why = read_entry(results_path() / key, key)
        if entry is None:
            raise BundleError(f"stored result {key[:12]} is invalid ({why}); recompute it first")
        for path in sorted((results_path() / key).iterdir()):
            if path.name == ORIGIN_NAME:  # the receiving store records its own
                continue
            if path.is_file() and MEMBER_RE.match(f"{key}/{path.name}"):
                members[f"{key}/{path.name}"] = path.read_bytes()
    manifest = {
        "schema": BUNDLE_SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "entries": full,
        "members": {
            name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in members.items()
        },
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        for name, data in members.items():
            zf.writestr(name, data)
    return atomic_write_bytes(Path(out), buf.getvalue())


def _check_members(zf: zipfile.ZipFile) -> dict[str, dict]:
    """The manifest after checking every member's name, type and declared size against it."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS + 1:
        raise BundleError(f"bundle has {len(infos)} members (at most {MAX_MEMBERS + 1})")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise BundleError("bundle has duplicate member names")
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or "\\" in name or ".." in name.split("/"):
            raise BundleError(f"bundle member {name[:80]!r} is an absolute or escaping path")
        if name != MANIFEST and not MEMBER_RE.match(name):
            raise BundleError(f"bundle member {name[:80]!r} is not <key>/<name>.json or .npy")
        if info.flag_bits & 0x1:
            raise BundleError(f"bundle member {name[:80]!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(f"bundle member {name[:80]!r} uses an unsupported compression")
        if info.file_size > MAX_MEMBER_BYTES:
            raise BundleError(f"bundle member {name[:80]!r} is too large ({info.file_size} bytes)")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise BundleError(f"bundle unpacks to {total} bytes (at most {MAX_TOTAL_BYTES})")
    if MANIFEST not in names:
        raise BundleError("bundle has no manifest.json")
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"bundle manifest.json is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != BUNDLE_SCHEMA:
        raise BundleError(f"bundle manifest schema is not {BUNDLE_SCHEMA}")
    listed = manifest.get("members")
    entries = manifest.get("entries")
    if not isinstance(listed, dict) or not isinstance(entries, list) or not entries:
        raise BundleError("bundle manifest lists no entries or members")
    if not all(isinstance(spec, dict) for spec in listed.values()):
        raise BundleError("bundle manifest lists a member without its size and checksum")
    if set(listed) != set(names) - {MANIFEST}:
        raise BundleError("bundle members do not match its manifest")
    if any(not isinstance(k, str) or not KEY_RE.match(k) for k in entries):
        raise BundleError("bundle manifest names a malformed key")
    if {n.split("/")[0] for n in listed} != set(entries):
        raise BundleError("bundle members belong to keys its manifest does not list")
    return manifest


def _stage_entry(zf: zipfile.ZipFile, manifest: dict, key: str) -> Path:
    """Unpack one entry into a temporary folder inside the store and validate it like a store read."""
    staged = Path(
        tempfile.mkdtemp(
            dir=results_root(), prefix=f".import-{key[:12]}-{writer_tag()}", suffix=".tmp"
        )
    )
    try:
        os.chmod(staged, DIR_MODE)
        for name, spec in manifest["members"].items():
            if name.split("/")[0] != key:
                continue
            data = zf.read(name)
            if len(data) != spec.get("bytes") or hashlib.sha256(data).hexdigest() != spec.get(
                "sha256"
            ):
                raise BundleError(f"bundle member {name[:80]!r} does not match its manifest")
            (staged / name.split("/")[1]).write_bytes(data)
            os.chmod(staged / name.split("/")[1], FILE_MODE)
        if not (staged / ENTRY_NAME).is_file():
            raise BundleError(f"bundle entry {key[:12]} has no entry.json")
        entry, why = read_entry(staged, key)
        if entry is None:
            raise BundleError(f"bundle entry {key[:12]} is invalid: {why}")
        listed = {f"{n}.npy" for n in json.loads((staged / ENTRY_NAME).read_text())["arrays"]}
        extra = {p.name for p in staged.iterdir()} - listed - {ENTRY_NAME}
        if extra:
            raise BundleError(f"bundle entry {key[:12]} has unlisted files: {sorted(extra)[:3]}")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


def _new_entries(staged: dict[str, Path]) -> dict[str, Path]:
    """The staged entries the store does not hold yet; BundleError if one would replace a different
    valid entry (a stored result is never overwritten by an import: remove it first to replace it)."""
    new, differ = {}, []
    for key, folder in staged.items():
        stored, _ = read_entry(results_path() / key, key)
        if stored is None:
            new[key] = folder
        elif _entry_sha(results_path() / key) != _entry_sha(folder):
            differ.append(key[:12])
    if differ:
        raise BundleError(
            f"the bundle's result(s) {', '.join(differ)} differ from the stored one(s) with the same "
            "key; nothing was imported (to replace them: python -m core results rm KEY, then import)"
        )
    return new


def _stream_sha(stream: io.IOBase) -> str:
    """sha256 of a whole seekable stream (read in blocks; the position is restored)."""
    here, digest = stream.tell(), hashlib.sha256()
    stream.seek(0)
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    stream.seek(here)
    return digest.hexdigest()


def _entry_sha(folder: Path) -> str:
    """The self-checksum an entry's ``entry.json`` records (covers its arrays' checksums)."""
    return str(json.loads((folder / ENTRY_NAME).read_text(encoding="utf-8")).get("sha256"))


def import_bundle(source: str | os.PathLike | bytes, name: str | None = None) -> list[str]:
    """Validate a bundle (path or bytes) and add its entries to the store; returns their keys.

    All entries are validated before any is installed; a bad bundle, or one whose entry differs from a
    stored entry with the same key, raises ``BundleError`` and changes nothing. Entries already stored
    as they are in the bundle are left as they are. Each installed entry records that it was imported
    from this bundle (``name``: default the file's name) and when.
    """
    stream: IO[bytes]
    if isinstance(source, bytes | bytearray):
        size, stream = len(source), io.BytesIO(source)
        name = name or "an uploaded bundle"
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise BundleError(f"no bundle at {path}")
        try:
            size, stream = path.stat().st_size, open(path, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise BundleError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    try:
        if size > MAX_BUNDLE_BYTES:
            raise BundleError(f"bundle is {size} bytes (at most {MAX_BUNDLE_BYTES})")
        try:
            zf = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError) as exc:
            raise BundleError(f"not a zip bundle: {exc}") from None
        with zf:
            try:
                manifest = _check_members(zf)
                staged: dict[str, Path] = {}
                try:
                    for key in manifest["entries"]:
                        staged[key] = _stage_entry(zf, manifest, key)
                    origin = Origin.imported(name[:120], _stream_sha(stream))
                    for key, folder in _new_entries(staged).items():
                        origin.write(folder)
                        with entry_lock(key):
                            install_entry(folder, key)
                finally:
                    for folder in staged.values():
                        shutil.rmtree(folder, ignore_errors=True)
            except (
                zipfile.BadZipFile,
                zipfile.LargeZipFile,
                OSError,
                ValueError,
                KeyError,
                RuntimeError,  # encrypted members, unknown compression (NotImplementedError)
                RecursionError,
            ) as exc:
                raise BundleError(f"unreadable bundle: {type(exc).__name__}: {exc}") from None
    finally:
        stream.close()
    return list(manifest["entries"])
