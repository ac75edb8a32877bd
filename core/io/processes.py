"""Whether a process is alive, and when it started: what tells a live writer or worker from one that
is gone, read from ``/proc`` where there is one (a zombie is gone; a reused pid is told apart by its
start time or its command line) and from ``kill(pid, 0)`` elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["pid_alive", "proc_start", "started_at"]

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3, the state, first);
    OSError or IndexError when it cannot be read."""
    fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    if not fields:
        raise IndexError("empty stat")
    return fields


def proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` in clock ticks (field 22 of ``/proc/<pid>/stat``), to tell
    a reused pid apart; None where it cannot be read."""
    try:
        return _stat_fields(pid)[19]
    except (OSError, IndexError):
        return None


def started_at(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from ``/proc``; None where that cannot be read."""
    ticks = proc_start(pid)
    if ticks is None:
        return None
    try:
        boot = next(
            float(line.split()[1])
            for line in (PROC / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + int(ticks) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def pid_alive(
    pid: int | None, *, started: str | None = None, command_has: str | None = None
) -> bool:
    """Whether ``pid`` is a live (non-zombie) process, and the one meant: with ``started`` (its
    :func:`proc_start` when it was recorded) the same start time, else with ``command_has`` a
    command line containing that text. A process that exists but cannot be read (another user's)
    is alive unless it must be identified; without ``/proc`` only existence is checked."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's live process
        pass
    if not (PROC / "self").exists():
        return True
    try:
        state = _stat_fields(pid)[0]
    except (OSError, IndexError):
        return started is None and command_has is None
    if state in ("Z", "X"):
        return False
    if started is not None:
        return proc_start(pid) == started
    if command_has is not None:
        try:
            cmdline = (PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            return False
        return command_has in cmdline.replace(b"\0", b" ").decode(errors="replace")
    return True
