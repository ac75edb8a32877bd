"""Work that runs in a thread of the server, off the script thread, with progress and time remaining.

A page starts it once (kept in the process-wide registry ``cached.background_tasks``, so a rerun or
another session finds it), then a fragment polls it every second and reruns the page when it ends.
Only work that touches no Streamlit API runs here (the core's functions with a progress callback).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import LabError
from pages.parts.messages import one_line


@dataclass
class BackgroundWork:
    """One piece of work in a thread: its progress (done of total steps), result or one-line error."""

    label: str
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = 0
    result: Any = None
    error: str | None = None
    finished: bool = False

    def progress(self, done: int, total: int) -> None:
        """The work's progress callback."""
        self.done, self.total = int(done), int(total)

    def fraction(self) -> float:
        """Share done, 0..1."""
        return min(1.0, self.done / self.total) if self.total else 0.0

    def remaining_s(self) -> float | None:
        """Seconds left at the rate so far (None before the first step)."""
        if not self.done or not self.total:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed * (self.total - self.done) / self.done

    def text(self) -> str:
        """'label: 12/40 layers, 35 s so far, about 1 min 20 s left'."""
        elapsed = time.monotonic() - self.started
        left = self.remaining_s()
        out = f"{self.label}: {self.done}/{self.total or '?'} steps, {elapsed:.0f} s so far"
        return out + (f", about {_seconds(left)} left" if left is not None else "")


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s // 60:.0f} min {s % 60:.0f} s"


def start(work: BackgroundWork, fn: Callable[[Callable[[int, int], None]], Any]) -> BackgroundWork:
    """Run ``fn(work.progress)`` in a daemon thread; a LabError becomes ``work.error`` (one line).

    Anything else is a bug: it reaches the server log with its traceback and the work ends without
    a result, which the page says.
    """

    def run() -> None:
        try:
            work.result = fn(work.progress)
        except LabError as exc:
            work.error = one_line(exc)
        finally:
            work.finished = True

    threading.Thread(target=run, daemon=True, name=f"work-{work.label}").start()
    return work
