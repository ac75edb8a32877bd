"""The local job queue as a waiting run sees it: its place in line and the runs holding the job slots.

At most :func:`max_jobs` local runs train at once; the others wait, oldest first (by ``queued_at``,
then run id). A waiting run is told which runs hold the slots and how many runs are ahead of it, so a
page never shows a bare "queued" while another run's sweep takes the only slot. Runs on another
executor (Ray) queue elsewhere and have no place here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.io.records import Record
from core.io.run_folder import RunFolder
from core.runs.folders import RunState, run_dir, runs_root
from core.runs.records import format_seconds, worker_alive

__all__ = ["LOCAL", "QueuePlace", "SlotHolder", "max_jobs", "queue_key", "queue_place", "waiting"]

LOCAL = "local"  # the executor whose runs share the job slots of this machine


def max_jobs() -> int:
    """How many runs may train at once (``$CONVEXITY_LAB_MAX_JOBS``, default 1)."""
    try:
        return max(1, int(os.environ.get("CONVEXITY_LAB_MAX_JOBS", "1")))
    except ValueError:
        return 1


def queue_key(run: Path, raw: dict[str, Any]) -> tuple[float, str]:
    """A queued run's place in line: its queue time, then its id (ids of one second sort stably)."""
    return (float(raw.get("queued_at") or 0.0), run.name)


@dataclass(frozen=True)
class SlotHolder(Record):
    """A run that holds a job slot now: its id and kind."""

    run_id: str
    kind: str


@dataclass(frozen=True)
class QueuePlace(Record):
    """Where a queued local run stands: ``position`` 1 takes the next free slot.

    ``holders``: the runs training now (they hold the ``slots``); ``waiting``: queued runs in all,
    this one included; ``waited_s``: seconds since it was queued.
    """

    run_id: str
    position: int
    waiting: int
    slots: int
    holders: tuple[SlotHolder, ...]
    waited_s: float

    def text(self) -> str:
        """``waiting 1 min 05 s for the job slot, held by <run> (sweep); 2nd in line (3 waiting)``."""
        return f"waiting {format_seconds(self.waited_s)} {self.where()}"

    def where(self) -> str:
        """What it waits for and its place, without the time: ``for the job slot, held by ...``."""
        held = ", ".join(f"{h.run_id} ({h.kind})" for h in self.holders)
        slots = "the job slot" if self.slots == 1 else f"one of {self.slots} job slots"
        who = f", held by {held}" if held else " (being freed)"
        line = "next in the queue" if self.position == 1 else f"{_ordinal(self.position)} in line"
        return f"for {slots}{who}; {line} ({self.waiting} waiting)"


def _ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _local_runs() -> list[tuple[Path, dict[str, Any]]]:
    """Every local run folder with its raw status (folders that cannot be read are skipped)."""
    out = []
    for path in runs_root().iterdir():
        if path.name.startswith(".") or path.is_symlink() or not path.is_dir():
            continue
        try:
            raw = RunFolder(path).read_status() or {}
        except (OSError, ValueError):
            continue
        if raw.get("executor", LOCAL) == LOCAL:
            out.append((path, raw))
    return out


def waiting(runs: list[tuple[Path, dict[str, Any]]] | None = None) -> list[Path]:
    """Queued local runs whose worker lives (it polls for a slot), in queue order."""
    found = []
    for path, raw in _local_runs() if runs is None else runs:
        if raw.get("state") == RunState.QUEUED and worker_alive(path, raw):
            found.append((queue_key(path, raw), path))
    return [path for _, path in sorted(found)]


def queue_place(run_id: str | os.PathLike, *, now: float | None = None) -> QueuePlace | None:
    """The queue as run ``run_id`` sees it, or None when it is not a queued local run."""
    run = run_dir(run_id)
    runs = _local_runs()
    mine = next((raw for path, raw in runs if path.name == run.name), None)
    if mine is None or mine.get("state") != RunState.QUEUED:
        return None
    line = waiting(runs)
    names = [p.name for p in line]
    position = names.index(run.name) + 1 if run.name in names else len(names) + 1
    holders = tuple(
        SlotHolder(path.name, str(raw.get("kind") or "run"))
        for path, raw in sorted(runs, key=lambda t: queue_key(*t))
        if raw.get("state") == RunState.RUNNING and worker_alive(path, raw)
    )
    now = time.time() if now is None else now
    queued_at = float(mine.get("queued_at") or now)
    return QueuePlace(
        run_id=run.name,
        position=position,
        waiting=max(len(names), position),
        slots=max_jobs(),
        holders=holders,
        waited_s=max(0.0, now - queued_at),
    )
