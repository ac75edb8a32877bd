"""Leftovers of killed writers (staging files and folders, lock files): which are stale, and removing them.

A staging name carries its writer (:func:`writer_tag`: ``~<host>-<pid>~``). A tagged leftover of this
host is stale once its writer is gone: the pid is not running, or the process now holding that pid
started after the leftover was last written (a reused pid). An untagged leftover, or one from another
host sharing the cache, is stale once older than a bound. A lock file is removed only while nobody
holds it (:func:`core.io.locks.remove_free_lock`). The feature cache and the results store both clean
through :func:`clean_leftovers`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from core.io.locks import remove_free_lock
from core.io.processes import pid_alive, started_at

__all__ = ["STALE_AFTER_S", "clean_leftovers", "is_stale", "writer_tag"]

STALE_AFTER_S = 3600.0  # an untagged or other host's leftover: a live writer renames it well before
TAG_RE = re.compile(r"~(?P<host>[A-Za-z0-9]{1,32})-(?P<pid>\d{1,10})~")


def _host() -> str:
    """This host's name reduced to what a tag holds (letters and digits, at most 32)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def writer_tag() -> str:
    """The tag a staging name carries: this host and process (``~host-pid~``)."""
    return f"~{_host()}-{os.getpid()}~"


def _writer_gone(pid: int, mtime: float) -> bool:
    """Whether no running process can be the writer ``pid`` of a leftover last written at ``mtime``."""
    if pid == os.getpid():
        return False
    if not pid_alive(pid):
        return True
    started = started_at(pid)
    return started is not None and started > mtime + 1.0  # the pid was reused after the write


def is_stale(path: Path, min_age_s: float = STALE_AFTER_S, now: float | None = None) -> bool:
    """Whether the leftover ``path`` belongs to a writer that is gone (see the module docstring)."""
    try:
        mtime = path.lstat().st_mtime
    except OSError:
        return False
    tag = TAG_RE.search(path.name)
    if tag is not None and tag["host"] == _host():
        return _writer_gone(int(tag["pid"]), mtime)
    return (time.time() if now is None else now) - mtime > min_age_s


def _remove(path: Path) -> bool:
    """Delete a file or folder tree; whether it is gone."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def clean_leftovers(
    paths: Iterable[Path],
    staging: Callable[[Path], bool],
    lock: Callable[[Path], bool],
    min_age_s: float = STALE_AFTER_S,
) -> list[Path]:
    """Remove, among ``paths``, the stale staging leftovers and the lock files nobody holds; what was removed.

    ``staging(path)`` / ``lock(path)`` say what a path is (a path that is neither is left alone). A
    lock file is removed only once older than ``min_age_s`` too (a file just created is about to be
    locked).
    """
    removed: list[Path] = []
    now = time.time()
    try:
        paths = list(paths)
    except OSError:  # a folder that cannot be listed: nothing to clean there
        return removed
    for path in paths:
        try:
            if staging(path):
                gone = is_stale(path, min_age_s, now) and _remove(path)
            else:
                gone = (
                    lock(path)
                    and path.is_file()
                    and now - path.stat().st_mtime > min_age_s
                    and remove_free_lock(path)
                )
            if gone:
                removed.append(path)
        except OSError:
            continue
    return removed
