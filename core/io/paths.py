"""Where Convexity Lab keeps things on disk; one place so the dashboard and CLI share a cache."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from core.errors import StorageError

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Root of on-disk results: ``$CONVEXITY_LAB_CACHE`` if set, else ``<repo>/cache``."""
    root = Path(os.environ.get("CONVEXITY_LAB_CACHE", REPO_ROOT / "cache"))
    if root.exists() and not root.is_dir():
        raise StorageError(
            f"the cache folder {root} is a file, not a folder; set CONVEXITY_LAB_CACHE to a folder"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the cache folder {root}: {exc.strerror or exc}; "
            "set CONVEXITY_LAB_CACHE to a writable folder"
        ) from exc
    return root


def cache_subdir(name: str) -> Path:
    """``cache_dir()/name``, created if missing; StorageError (one line) where it cannot be."""
    path = cache_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create {path}: {exc.strerror or exc}; set CONVEXITY_LAB_CACHE to a writable folder"
        ) from None
    return path


def _writable(path: Path) -> bool:
    """Whether files can be created in ``path`` (or in the folder it would be created in)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.access(path, os.W_OK | os.X_OK)


def private_temp_dir(purpose: str) -> Path:
    """This user's folder ``<tmp>/convexity-lab-<purpose>-<uid>``, created 0700 if missing.

    The path is predictable, so another local user may have made it first: it is used only when it is
    a real folder (no link) owned by this user that nobody else can write; anything else is refused
    with a StorageError, since code and indexes read from it would run as this user.
    """
    path = Path(tempfile.gettempdir()) / f"convexity-lab-{purpose}-{os.getuid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror or exc}") from None
    found = os.lstat(path)
    if (
        not stat.S_ISDIR(found.st_mode)
        or found.st_uid != os.getuid()
        or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise StorageError(
            f"refusing {path}: not a private folder of this user (owner uid {found.st_uid}, "
            f"mode {stat.filemode(found.st_mode)}); remove it or set CONVEXITY_LAB_CACHE to a "
            "writable folder"
        )
    return path


def numba_cache_dir() -> Path | None:
    """Where numba should cache compiled kernels when it cannot beside the code (None: beside it).

    A read-only installation (a shared environment) has no writable ``__pycache__``, and a user without
    a writable home has no user-wide cache: numba then refuses to compile cached functions at all.
    The lab's cache folder is used instead, else this user's private temporary folder; where that one
    was planted by someone else, a fresh ``mkdtemp`` folder for this process (one warning line), since
    numba unpickles its index files and so would run whatever a planted index holds.
    """
    if _writable(Path(__file__).resolve().parents[1] / "geometry" / "__pycache__"):
        return None
    env_cache = os.environ.get("CONVEXITY_LAB_CACHE")
    candidate = Path(env_cache) if env_cache else REPO_ROOT / "cache"
    if (candidate.is_dir() or not candidate.exists()) and _writable(candidate):
        return candidate / "numba"
    try:
        return private_temp_dir("numba")
    except StorageError as exc:
        print(f"warning: {exc}; compiling in a fresh private folder instead", file=sys.stderr)
        return Path(tempfile.mkdtemp(prefix="convexity-lab-numba-"))
