"""The ``local`` executor: detached worker processes on this machine, signals, flock job slots.

Process model: :func:`spawn_worker` starts ``python -m core jobs run-job <run-id>`` with
``start_new_session=True`` (its own process group, so it survives the page/CLI that started it and a
cancel reaches its children), collects its exit in a waiter thread (no zombie children) and records
the spawned pid in ``spawn.json``; the worker then reports its own pid and start time in
``status.json``. Every executor's runs start so (a Ray run's worker is the driver of its task).

Cancel: :meth:`LocalExecutor.cancel` writes ``cancel.request`` (polled by the worker between training
steps) and sends SIGTERM to the worker's group; ``force=True`` sends SIGKILL and writes the status
itself. A cancel that waits longer than the worker's grace (+ ``KILL_AFTER``) escalates to SIGKILL
and says so in ``train.log`` (a worker stuck in one long compiled call never sees its grace timer).
While a worker lives it is the only writer of its state, and ``cancelled`` is never recorded for a
run whose worker is still alive.

Queue: at most :func:`max_jobs` runs train at once (``$CONVEXITY_LAB_MAX_JOBS``, default 1). A worker
holds an exclusive lock (:func:`core.io.locks.try_exclusive`) on one of the slot files
``runs/.slots/slot-<i>.lock`` while it runs; the kernel releases it when the process exits in any way
(even SIGKILL), so no stale lock can block the queue. Waiting workers poll once a second and only the
oldest live queued local run (by ``queued_at``, then run id) may take a free slot, so runs start in
submission order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import Cancelled
from core.io.atomic import atomic_write_json
from core.io.locks import try_exclusive
from core.io.paths import REPO_ROOT, cache_dir
from core.io.run_folder import RunFolder, RunSpec, stamp
from core.runs.folders import RunState, read_status, runs_root, set_state
from core.runs.queue import max_jobs, waiting
from core.runs.records import ACTIVE, FINAL, RunStatus, refresh, status, status_from, worker_alive
from core.runs.worker import (
    KILL_AFTER,
    LOGGER,
    StopFlag,
    cancel_grace,
    cancel_wait,
    execute,
    finish,
    log_to_run,
    progress_writer,
    request_stop,
)

__all__ = [
    "LocalExecutor",
    "max_jobs",
    "record_cancelled_if_gone",
    "signal_worker",
    "spawn_worker",
    "worker_pid",
]


def _reap_when_done(proc: subprocess.Popen) -> threading.Thread:
    """Wait for a spawned worker in a daemon thread, so its exit is collected at once (no zombie child
    of a long-running dashboard, whether or not anything polls it again)."""
    waiter = threading.Thread(target=proc.wait, daemon=True, name=f"reap-{proc.pid}")
    waiter.start()
    return waiter


def spawn_worker(run: Path) -> int:
    """Start the run's worker as a detached background process; returns its pid."""
    folder = RunFolder(run)
    env = dict(os.environ)
    env["CONVEXITY_LAB_CACHE"] = str(cache_dir())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(folder.file(RunFolder.WORKER_OUT), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "jobs", "run-job", folder.name],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _reap_when_done(proc)
    atomic_write_json(folder.file(RunFolder.SPAWN), {"pid": proc.pid, "at": time.time()})
    return proc.pid


def worker_pid(run: Path, raw: dict[str, Any]) -> int | None:
    """The pid to signal: the worker's own report, else the spawned process."""
    return raw.get("pid") or (RunFolder(run).read_json(RunFolder.SPAWN) or {}).get("pid")


def signal_worker(pid: int, sig: int, *, group: bool = True) -> None:
    """Signal a worker: its whole process group if it leads one (a spawned worker), else the process.

    A run executing inside this very process (a foreground run in a UI thread) is never signalled: the
    ``cancel.request`` file stops it at its next training step. ``group=False``: only the process (a
    Ray driver, whose group may hold the private cluster it started and must shut down itself).
    """
    if pid == os.getpid():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def record_cancelled_if_gone(run: Path) -> RunStatus:
    """The run's status after a cancel: recorded ``cancelled`` if its worker is gone (or never ran)."""
    if worker_alive(run, read_status(run)):
        return status(run)
    if read_status(run).get("state") in ACTIVE:  # killed, never started, or already dead
        set_state(run, RunState.CANCELLED, error=None, finished_at=stamp())
    return status(run)


def _queue_position_ok(run: Path) -> bool:
    """True if no older live local run is still waiting in the queue (other executors queue elsewhere)."""
    line = waiting()
    return not line or line[0].name == run.name or run.name not in {p.name for p in line}


def _acquire_slot(run: Path, stop: StopFlag) -> BinaryIO | None:
    """Block (polling) until this run may take a job slot; returns the locked slot file, None if stopped."""
    slots = runs_root() / ".slots"
    slots.mkdir(exist_ok=True)
    while not stop():
        if _queue_position_ok(run):
            for i in range(max_jobs()):
                held = try_exclusive(slots / f"slot-{i}.lock")
                if held is None:
                    continue
                held.truncate(0)
                held.write(run.name.encode())
                held.flush()
                return held
        time.sleep(1.0)
    return None


class LocalExecutor:
    """Detached processes and flock slots (``$CONVEXITY_LAB_MAX_JOBS`` at a time) on this machine."""

    name = "local"

    def launch(self, run: Path) -> int:
        """Start the run's detached worker (it waits for a free slot); returns its pid."""
        return spawn_worker(run)

    def submit(self, run: Path) -> None:
        """Spawn the detached worker (it waits for a free slot)."""
        self.launch(run)

    def drive(self, run: Path, spec: RunSpec | None, stop: StopFlag) -> int:
        """Inside the worker: wait for a slot, run the job here, record it done; returns 0."""
        held = _acquire_slot(run, stop)
        if held is None:
            raise Cancelled("cancelled while queued")
        try:
            set_state(run, RunState.RUNNING, started_at=stamp(), interrupted=False, error=None)
            kind = spec.kind if spec is not None else None
            logging.getLogger(LOGGER).info(
                "run %s (%s) started, pid %d", run.name, kind, os.getpid()
            )
            config = dict(spec.config) if spec is not None else {}
            result = execute(kind, config, run, stop, progress_writer(run))
            finish(run, result)
            logging.getLogger(LOGGER).info("done")
            return 0
        finally:
            held.close()

    def wait(
        self, runs: Sequence[Path], *, stop: Callable[[], bool] | None = None, poll: float = 0.5
    ) -> dict[str, RunStatus]:
        """Poll the status files until every run is final."""
        pending = {Path(r).name: Path(r) for r in runs}
        out: dict[str, RunStatus] = {}
        while pending:
            if stop is not None and stop():
                for run in pending.values():
                    self.cancel(run, timeout=cancel_wait())
            for name, run in list(pending.items()):
                current = refresh(run)  # notices a dead worker
                if current.get("state") in FINAL:
                    out[name] = status_from(run, current)
                    pending.pop(name)
            if pending:
                time.sleep(poll)
        return out

    def cancel(self, run: Path, *, force: bool = False, timeout: float | None = None) -> RunStatus:
        """SIGTERM (SIGKILL with ``force``) to the run's process group; waits up to ``timeout`` s
        (default :func:`~core.runs.worker.cancel_wait`) for it to be gone, SIGKILLing it past its grace."""
        timeout = cancel_wait() if timeout is None else timeout
        raw = refresh(run)
        if raw.get("state") not in ACTIVE:
            return status(run)
        request_stop(run, force=force)
        pid = worker_pid(run, raw)
        if pid is not None and worker_alive(run, raw):
            signal_worker(pid, signal.SIGKILL if force else signal.SIGTERM)
            now = time.monotonic()
            deadline, overdue = now + timeout, now + cancel_grace() + KILL_AFTER
            while time.monotonic() < deadline and worker_alive(run, read_status(run)):
                if not force and time.monotonic() > overdue:
                    signal_worker(pid, signal.SIGKILL)
                    force = True
                    log_to_run(
                        run,
                        f"killed (no stopping point within {cancel_grace() + KILL_AFTER:.0f} s)",
                    )
                time.sleep(0.1)
        return record_cancelled_if_gone(run)

    def status(self, run: Path) -> RunStatus:
        """The run's status (a dead worker noticed)."""
        return status_from(Path(run), refresh(Path(run)))

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple], *, gpu: bool = False
    ) -> list[Any]:
        """One after another, in this process."""
        return [fn(*args) for args in calls]

    def close(self) -> None:
        """Nothing to release."""
