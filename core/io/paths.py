"""Where Convexity Lab keeps things on disk; one place so the dashboard and CLI share a cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import StorageError

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Root of on-disk results: ``$CONVEXITY_LAB_CACHE`` if set, else ``<repo>/cache``."""
    root = Path(os.environ.get("CONVEXITY_LAB_CACHE", REPO_ROOT / "cache"))
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


def numba_cache_dir() -> Path | None:
    """Where numba should cache compiled kernels when it cannot beside the code (None: beside it).

    A read-only installation (a shared environment) has no writable ``__pycache__``, and a user without
    a writable home has no user-wide cache: numba then refuses to compile cached functions at all.
    The lab's cache folder is used instead, else a per-user temporary folder.
    """
    if _writable(Path(__file__).resolve().parents[1] / "geometry" / "__pycache__"):
        return None
    env_cache = os.environ.get("CONVEXITY_LAB_CACHE")
    candidate = Path(env_cache) if env_cache else REPO_ROOT / "cache"
    if _writable(candidate):
        return candidate / "numba"
    return Path(tempfile.gettempdir()) / f"convexity-lab-numba-{os.getuid()}"
