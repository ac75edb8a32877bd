"""The body every executor's worker shares: the stop flag, the grace timer, logging, the job itself.

A run's worker (a detached local process, or the driver of a Ray task) is framed by
:func:`serve`: it reports its pid in ``status.json``, sends the core loggers to ``train.log``, turns
SIGTERM/SIGINT into a :class:`StopFlag` (plus a grace timer) and records every ending it did not
record itself (``failed`` with its error, or ``cancelled``). What runs inside the frame is the
executor's ``drive``; the job itself is :func:`execute` (the same call in a local worker and in a
Ray task).

Stopping: :func:`request_stop` writes ``cancel.request`` (polled by :class:`StopFlag` between
training steps). Phases that poll nothing (a sweep's pretrained convexity, the final evaluation)
would otherwise run to their end after SIGTERM, so the worker's SIGTERM handler arms a timer of
:func:`cancel_grace` seconds (``$CONVEXITY_LAB_CANCEL_GRACE``, default 10) that raises
:class:`~core.errors.Cancelled` in the worker's main thread if the work has not stopped by then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import Cancelled
from core.io.processes import proc_start
from core.io.run_folder import RunFolder, RunSpec, error_line, result_summary, stamp
from core.runs.folders import RunState, set_state
from core.training.kinds import RUN_KINDS, run_kind

__all__ = [
    "KILL_AFTER",
    "KINDS",
    "LOGGER",
    "StopFlag",
    "cancel_grace",
    "cancel_wait",
    "error_line",
    "execute",
    "finish",
    "log_to_run",
    "progress_writer",
    "request_stop",
    "serve",
    "setup_run_logging",
]

KINDS = tuple(RUN_KINDS)
KILL_AFTER = 2.0  # seconds past its grace after which a waiting cancel SIGKILLs a local worker
LOGGER = "core.runs.worker"  # the logger name of worker lines in train.log


def cancel_grace() -> float:
    """Seconds a worker gets after SIGTERM to reach a stopping point (``$CONVEXITY_LAB_CANCEL_GRACE``)."""
    try:
        return max(0.1, float(os.environ.get("CONVEXITY_LAB_CANCEL_GRACE", "10")))
    except ValueError:
        return 10.0


def cancel_wait() -> float:
    """How long a caller that must see a cancel through waits: the grace, the SIGKILL, time to die."""
    return cancel_grace() + KILL_AFTER + 3.0


class StopFlag:
    """Set by SIGTERM/SIGINT or by a ``cancel.request`` file; polled by the training loop."""

    def __init__(self, run: Path) -> None:
        self.set = False
        self._marker = RunFolder(run).file(RunFolder.CANCEL)

    def __call__(self) -> bool:
        if not self.set and self._marker.exists():
            self.set = True
        return self.set


def request_stop(run: Path, *, force: bool = False) -> None:
    """Leave the ``cancel.request`` marker every worker of the run polls."""
    RunFolder(run).write_json(RunFolder.CANCEL, {"at": stamp(), "force": force})


def _overdue(signum: int, frame: Any) -> None:
    """SIGALRM after a cancel's grace: stop whatever the worker is doing (it polls nothing)."""
    raise Cancelled(f"cancelled (no stopping point within {cancel_grace():.0f} s)")


def _arm_grace() -> None:
    """Start the grace timer once (main thread only; a later SIGTERM does not restart it)."""
    if signal.getitimer(signal.ITIMER_REAL)[0] == 0:
        signal.signal(signal.SIGALRM, _overdue)
        signal.setitimer(signal.ITIMER_REAL, cancel_grace())


def _disarm_grace() -> None:
    """Stop the grace timer (the work ended by itself)."""
    with contextlib.suppress(ValueError):
        signal.setitimer(signal.ITIMER_REAL, 0)


def _run_log_handler(run: Path) -> logging.Handler:
    """A handler appending to the run's ``train.log`` in its one format."""
    handler = logging.FileHandler(RunFolder(run).file(RunFolder.LOG), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def log_to_run(run: Path, message: str) -> None:
    """One warning in the run's ``train.log`` from outside its worker (e.g. the canceller's SIGKILL)."""
    handler = _run_log_handler(run)
    record = logging.LogRecord(LOGGER, logging.WARNING, __file__, 0, message, None, None)
    handler.emit(record)
    handler.close()


def setup_run_logging(run: Path) -> logging.Handler:
    """Send the core loggers to ``train.log`` (appending, so resumes keep the history)."""
    handler = _run_log_handler(run)
    root = logging.getLogger("core")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    return handler


def execute(
    kind: str | None,
    config: dict[str, Any],
    run: Path,
    stop: Callable[[], bool],
    status_cb: Callable[[dict[str, Any]], None],
) -> Any:
    """Run the job of one run folder (its kind's ``run``) and return its result."""
    spec = run_kind(kind)
    return spec.run(spec.settings(config), run, stop, status_cb)


def progress_writer(run: Path) -> Callable[[dict[str, Any]], None]:
    """The ``on_progress`` callback of a run: its epoch, step and last row in ``status.json``."""

    def status_cb(row: dict[str, Any]) -> None:
        set_state(run, RunState.RUNNING, epoch=row.get("epoch"), step=row.get("step"), last=row)

    return status_cb


Drive = Callable[[Path, RunSpec | None, StopFlag], int]


def serve(run: Path, drive: Drive) -> int:
    """A worker's frame around ``drive(run, spec, stop)``: signals, logging, pid, every ending recorded.

    Returns the exit code: ``drive``'s, 0 for a cancel, 1 for a failure (recorded with its error).
    """
    stop = StopFlag(run)

    def on_signal(signum: int, frame: Any) -> None:
        stop.set = True
        _arm_grace()

    old: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        try:
            old[sig] = signal.signal(sig, _overdue if sig == signal.SIGALRM else on_signal)
        except ValueError:  # not the main thread (e.g. run in-process from a UI thread): no signals
            break
    handler = setup_run_logging(run)
    logger = logging.getLogger(LOGGER)
    try:
        set_state(run, RunState.QUEUED, pid=os.getpid(), pid_start=proc_start(os.getpid()))
        return drive(run, RunFolder(run).read_spec(), stop)
    except BaseException as exc:  # record every ending, then let the exit code say so
        if old:
            _disarm_grace()
        # after a cancel request any ending is a cancel: a library may wrap the grace's Cancelled
        # (e.g. transformers inside a lazy import)
        if isinstance(exc, Cancelled) or stop():
            if isinstance(exc, Cancelled):
                logger.info("%s", exc)
            else:
                logger.info("cancelled (stopped with %s: %s)", type(exc).__name__, exc)
            set_state(run, RunState.CANCELLED, error=None, finished_at=stamp())
            return 0
        line = error_line(exc)
        logger.error("failed: %s", line)  # one line wherever the core loggers print
        handler.handle(  # the whole traceback: train.log only
            logging.LogRecord(
                LOGGER, logging.ERROR, __file__, 0, traceback.format_exc(), None, None
            )
        )
        set_state(run, RunState.FAILED, error=line, finished_at=stamp())
        return 1
    finally:
        if old:
            _disarm_grace()
        logging.getLogger("core").removeHandler(handler)
        handler.close()
        for s, h in old.items():
            signal.signal(s, h)


def finish(run: Path, result: Any) -> None:
    """Record a job's own ending: the grace timer stopped, ``done`` with the result's summary."""
    if threading.current_thread() is threading.main_thread():
        _disarm_grace()
    set_state(
        run,
        RunState.DONE,
        finished_at=stamp(),
        error=None,
        interrupted=False,
        summary=result_summary(result),
    )
