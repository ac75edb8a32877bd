"""Atomic writes and checksums, so an interrupted job never leaves a half-written file behind."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.errors import StorageError
from core.io.leftovers import writer_tag

# One permission policy for everything the lab writes (features, results, runs, bundles): readable by
# others, so a lecturer can share a write-protected cache; nothing the lab stores is secret.
FILE_MODE = 0o644
DIR_MODE = 0o755


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename.

    The temporary file's name carries its writer (``core.io.leftovers``), so a killed writer's is cleaned.

    A folder that cannot be created or written (permissions, disk full) raises ``StorageError``. The
    file is left ``FILE_MODE`` (readable by others), not ``mkstemp``'s owner-only 0600.
    """
    return atomic_write_chunks(path, (data,))


def atomic_write_chunks(path: str | os.PathLike, chunks: Iterable[bytes]) -> Path:
    """``atomic_write_bytes`` for data made piece by piece (large tables): one chunk in memory at a time."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{writer_tag()}", suffix=".tmp"
        )
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_staging(path: Path) -> bool:
    """Whether ``path`` is a writer's staging file or folder (``.<name>.*.tmp``), not a finished one."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True).encode())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large weight files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_SHA_MEMO: dict[tuple[int, int, int, int], str] = {}


def sha256_file_memo(path: str | os.PathLike) -> str:
    """``sha256_file`` memoised per (device, inode, size, mtime): a re-check (or a rename) costs one stat."""
    st = os.stat(path)
    memo = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if memo not in _SHA_MEMO:
        _SHA_MEMO[memo] = sha256_file(path)
    return _SHA_MEMO[memo]
