"""Exclusive locks on files (the feature cache, the results store, run status files, job slots)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import StorageError

__all__ = ["exclusive", "remove_if_unheld", "try_exclusive"]


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


def try_exclusive(path: Path) -> BinaryIO | None:
    """Take an exclusive ``fcntl.flock`` on ``path`` without waiting: the open file holding it (the
    lock lasts until it is closed, or its process exits in any way), or None when another holds it."""
    try:
        fh = open(path, "a+b")  # noqa: SIM115 (the caller closes it to release the lock)
    except OSError as exc:
        raise StorageError(
            f"cannot write {path}: {exc.strerror or exc}; set CONVEXITY_LAB_CACHE to a writable folder"
        ) from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def remove_if_unheld(path: Path) -> bool:
    """Delete a lock file that nobody holds (True); leave one that a live process holds, or one that
    cannot be opened, in place (False)."""
    try:
        fh = try_exclusive(path)
    except StorageError:
        return False
    if fh is None:
        return False
    with fh:
        path.unlink(missing_ok=True)
    return True
