"""An exclusive lock on a file, shared by the feature cache and the results store."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from core.errors import StorageError


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing); blocks while another holds it.

    The kernel drops the lock when its holder exits in any way (even SIGKILL), so none goes stale.
    A lock file that cannot be created (a read-only cache, a full disk) is one StorageError line.
    """
    try:
        fh = open(path, "a+b")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise StorageError(
            f"cannot write {path}: {exc.strerror or exc}; set CONVEXITY_LAB_CACHE to a writable folder"
        ) from None
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
