"""Exclusive locks on files (the feature cache, the results store, run status files, job slots).

A lock file may be removed while nobody holds it (:func:`remove_free_lock`, for leftovers): a
process that opened it just before and then locks the removed file sees that the path no longer
names what it locked and locks the path again, so two holders never think they hold one lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import StorageError

__all__ = ["exclusive", "remove_free_lock", "try_exclusive"]


def _names_locked_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed or replaced meanwhile)."""
    try:
        on_disk, held = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing); blocks while another holds it.

    The kernel drops the lock when its holder exits in any way (even SIGKILL), so none goes stale.
    A lock file that cannot be created (a read-only cache, a full disk) is one StorageError line.
    """
    while True:
        try:
            fh = open(path, "a+b")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise StorageError(
                f"cannot write {path}: {exc.strerror or exc}; set CONVEXITY_LAB_CACHE to a writable folder"
            ) from None
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        if _names_locked_file(path, fh.fileno()):
            break
        fh.close()  # removed as a leftover while this process waited: lock the path anew
    with fh:
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def remove_free_lock(path: Path) -> bool:
    """Delete the lock file ``path`` if nobody holds it (this process's own holds count); whether it did."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held
            return False
        try:
            if not _names_locked_file(path, fh.fileno()):
                return False
            path.unlink()
            return True
        except OSError:
            return False
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
