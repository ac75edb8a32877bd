"""Where Convexity Lab keeps things on disk; one place so the dashboard and CLI share a cache."""

from __future__ import annotations

import os
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
