"""Background jobs (fine-tune runs, prune sweeps, cost benchmarks): create, start, cancel, resume, restart, wait; the worker.

Layout: every run lives in ``cache_dir()/runs/<run-id>/`` (see :mod:`core.runs.folders`) with
``config.json`` (``{"kind": ..., "config": {...}}``), ``status.json``, ``metrics.jsonl``, ``train.log``
and the kind's outputs. ``run-id`` = ``<UTC time>-<kind>-<model>-<random>`` so folders sort by age.

Status states: ``queued`` -> ``running`` -> ``done`` | ``failed`` (``error`` holds the message) |
``cancelled``; :mod:`core.runs.records` derives them with the live process.

Attempts: :func:`resume` continues a failed/cancelled run in its own folder from its last epoch
checkpoint (the metrics keep one history: finetune trims rows past the checkpoint, and a folder with
no checkpoint loses its partial rows before it starts over). :func:`restart` makes a *new* run folder
with the same config, ``attempt`` + 1 and ``parent`` = the old id, so every plot shows one attempt.

Process model: :func:`start` spawns ``python -m core jobs run-job <run-id>`` with
``start_new_session=True`` (its own process group, so it survives the page/CLI that started it and a
cancel reaches its children), collects its exit in a waiter thread (no zombie children) and records
the spawned pid in ``spawn.json``; the worker then reports
its own pid and start time in ``status.json``. :func:`cancel` writes ``cancel.request`` (polled by the
worker between training steps) and sends SIGTERM to the group; ``force=True`` sends SIGKILL and writes
the status itself. While a worker lives it is the only writer of its state, and ``cancelled`` is never
recorded for a run whose worker is still alive.

Cancel grace: phases that poll nothing (a sweep's pretrained convexity: extraction + convexity; the
final evaluation) would otherwise run to their end after SIGTERM. The worker's SIGTERM handler arms a
timer of ``cancel_grace()`` seconds (``$CONVEXITY_LAB_CANCEL_GRACE``, default 10) that raises
:class:`~core.errors.Cancelled` in the worker's main thread if the work has not stopped by then; a
:func:`cancel` that waits longer than the grace (+2 s) for a local worker escalates to SIGKILL and
says so in ``train.log`` (a worker stuck in one long compiled call, e.g. numba compiling, never sees the
timer's signal).

Queue: at most ``max_jobs()`` runs train at once (``$CONVEXITY_LAB_MAX_JOBS``, default 1). A worker
holds an exclusive ``fcntl.flock`` on one of the slot files ``runs/.slots/slot-<i>.lock`` while it
runs; the kernel releases it when the process exits in any way (even SIGKILL), so no stale lock can
block the queue. Waiting workers poll once a second and only the oldest live queued run (by
``queued_at``, then run id) may take a free slot, so runs start in submission order.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import Cancelled, RunError
from core.io.atomic import atomic_write_json
from core.io.paths import REPO_ROOT, cache_dir
from core.io.run_folder import RunFolder, RunSpec
from core.runs.folders import (
    check_run_id,
    discard_partial_metrics,
    read_json,
    read_status,
    run_dir,
    runs_root,
    stamp,
    write_status,
)
from core.runs.records import (
    ACTIVE,
    CANCEL_MARKER,
    FINAL,
    SPAWN_FILE,
    RunStatus,
    attempt_seconds,
    proc_start,
    refresh,
    status,
    worker_alive,
)

__all__ = [
    "KINDS",
    "cancel",
    "cancel_grace",
    "cancel_wait",
    "create_run",
    "max_jobs",
    "restart",
    "resume",
    "run_job",
    "start",
    "submit",
    "wait",
]

KINDS = ("finetune", "sweep", "benchmark")


KILL_AFTER = 2.0  # seconds past its grace after which a waiting cancel SIGKILLs a local worker


def cancel_grace() -> float:
    """Seconds a worker gets after SIGTERM to reach a stopping point (``$CONVEXITY_LAB_CANCEL_GRACE``)."""
    try:
        return max(0.1, float(os.environ.get("CONVEXITY_LAB_CANCEL_GRACE", "10")))
    except ValueError:
        return 10.0


def cancel_wait() -> float:
    """How long a caller that must see a cancel through waits: the grace, the SIGKILL, time to die."""
    return cancel_grace() + KILL_AFTER + 3.0


def max_jobs() -> int:
    """How many runs may train at once (``$CONVEXITY_LAB_MAX_JOBS``, default 1)."""
    try:
        return max(1, int(os.environ.get("CONVEXITY_LAB_MAX_JOBS", "1")))
    except ValueError:
        return 1


def create_run(
    kind: str,
    config: dict[str, Any],
    run_id: str | None = None,
    *,
    parent: str | None = None,
    attempt: int = 1,
    executor: dict[str, Any] | None = None,
) -> Path:
    """Make a run folder with its settings (``config.json``, written once, with the ``executor`` that
    runs it) and a ``queued`` status; returns its path. Launchers check the settings first
    (:func:`core.runs.executors.create_run_on`)."""
    if kind not in KINDS:
        raise RunError(f"unknown job kind {kind!r}; kinds: {', '.join(KINDS)}")
    if run_id is None:
        model = Path(str(config.get("model", "model"))).name.replace("/", "_")[:40]
        model = "".join(c if c.isalnum() or c in "._-" else "_" for c in model) or "model"
        when = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_id = f"{when}-{kind}-{model}-{secrets.token_hex(3)}"
    run = runs_root() / check_run_id(run_id)
    try:
        run.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise RunError(f"run {run_id!r} already exists") from None
    RunFolder(run).write_spec(RunSpec(kind, config, executor))
    write_status(
        run,
        state="queued",
        queued_at=time.time(),
        kind=kind,
        pid=None,
        error=None,
        attempt=attempt,
        parent=parent,
    )
    return run


def _reap_when_done(proc: subprocess.Popen) -> threading.Thread:
    """Wait for a spawned worker in a daemon thread, so its exit is collected at once (no zombie child
    of a long-running dashboard, whether or not anything polls it again)."""
    waiter = threading.Thread(target=proc.wait, daemon=True, name=f"reap-{proc.pid}")
    waiter.start()
    return waiter


def start(run_id: str | os.PathLike) -> int:
    """Start the run's worker as a detached background process; returns its pid."""
    run = run_dir(run_id)
    env = dict(os.environ)
    env["CONVEXITY_LAB_CACHE"] = str(cache_dir())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(run / "worker.out", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "jobs", "run-job", run.name],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _reap_when_done(proc)
    atomic_write_json(run / SPAWN_FILE, {"pid": proc.pid, "at": time.time()})
    return proc.pid


def submit(kind: str, config: dict[str, Any]) -> Path:
    """Create a run and start it in the background (it waits in the queue if a slot is busy)."""
    run = create_run(kind, config)
    start(run)
    return run


def _worker_pid(run: Path, raw: dict[str, Any]) -> int | None:
    """The pid to signal: the worker's own report, else the spawned process."""
    return raw.get("pid") or (read_json(run / SPAWN_FILE) or {}).get("pid")


def _signal(pid: int, sig: int, *, group: bool = True) -> None:
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


def cancel(run_id: str | os.PathLike, *, force: bool = False, timeout: float = 0.0) -> RunStatus:
    """Ask a run to stop (SIGTERM to its process group; SIGKILL with ``force``); returns its status.

    Waits up to ``timeout`` seconds for the worker process to be gone; the state is ``cancelled`` only
    then (until then :attr:`RunStatus.label` says ``cancelling``). A local worker that outlives its
    grace (:func:`cancel_grace` + ``KILL_AFTER``) while this waits is SIGKILLed. A run on another
    executor (Ray) is flagged (``cancel_requested``) and its driver is sent SIGTERM; the driver cancels the task.
    A run whose worker is gone (or never started) is recorded as cancelled here.
    """
    run = run_dir(run_id)
    raw = refresh(run)
    if raw.get("state") not in ACTIVE:
        return status(run)
    atomic_write_json(run / CANCEL_MARKER, {"at": stamp(), "force": force})
    local = raw.get("executor", "local") == "local"
    if not local:  # the task's driver (e.g. Ray) passes the request on to its executor
        write_status(run, cancel_requested=True, cancel_force=bool(force))
    if worker_alive(run, raw):
        pid = int(_worker_pid(run, raw))
        _signal(pid, signal.SIGKILL if force and local else signal.SIGTERM, group=local)
        now = time.monotonic()
        deadline, overdue = now + timeout, now + cancel_grace() + KILL_AFTER
        while time.monotonic() < deadline and worker_alive(run, read_status(run)):
            if local and not force and time.monotonic() > overdue:
                _signal(pid, signal.SIGKILL)
                force = True
                _log_to_run(
                    run, f"killed (no stopping point within {cancel_grace() + KILL_AFTER:.0f} s)"
                )
            time.sleep(0.1)
        if worker_alive(run, read_status(run)):
            return status(run)
    if read_status(run).get("state") in ACTIVE:  # killed, never started, or already dead
        write_status(run, state="cancelled", error=None, finished_at=stamp())
    return status(run)


def _final(run: Path, action: str) -> RunStatus:
    """The run's status, which must be final for ``action`` (RunError otherwise)."""
    current = status(run)
    if current.state not in FINAL:
        raise RunError(f"cannot {action} run {run.name}: it is still {current.label}")
    return current


def resume(run_id: str | os.PathLike, *, background: bool = True) -> RunStatus:
    """Continue a failed/cancelled run in its folder from its last epoch checkpoint (or from scratch)."""
    run = run_dir(run_id)
    if _final(run, "resume").state == "done":
        raise RunError(f"run {run.name} is already done; 'jobs restart' runs it again")
    discard_partial_metrics(run)
    (run / CANCEL_MARKER).unlink(missing_ok=True)
    (run / SPAWN_FILE).unlink(missing_ok=True)
    raw = read_status(run)
    elapsed_before = float(raw.get("elapsed_before") or 0.0) + attempt_seconds(raw)
    write_status(
        run,
        state="queued",
        queued_at=time.time(),
        pid=None,
        pid_start=None,
        error=None,
        interrupted=False,
        started_at=None,
        finished_at=None,
        elapsed_before=elapsed_before,
    )
    if background:
        start(run)
    else:
        run_job(run)
    return status(run)


def restart(run_id: str | os.PathLike, *, background: bool = True) -> RunStatus:
    """Run a finished/failed/cancelled run again as a new attempt: a new folder linked to the old one."""
    run = run_dir(run_id)
    old = _final(run, "restart")
    spec = RunFolder(run).read_spec()
    if spec is None:
        raise RunError(f"run {run.name} has no readable settings to restart from")
    new = create_run(
        spec.kind,
        dict(spec.config),
        parent=run.name,
        attempt=old.attempt + 1,
        executor=None if spec.executor is None else dict(spec.executor),
    )
    if background:
        start(new)
    else:
        run_job(new)
    return status(new)


def wait(
    run_id: str | os.PathLike,
    *,
    timeout: float = 600.0,
    until: Callable[[RunStatus], bool] | None = None,
    poll: float = 0.5,
) -> RunStatus:
    """Poll until the run is final (or ``until(status)`` holds); returns the status (RunError on timeout)."""
    run = run_dir(run_id)
    deadline = time.monotonic() + timeout
    while True:
        current = status(run)
        if until(current) if until else current.state in FINAL:
            return current
        if time.monotonic() > deadline:
            raise RunError(f"run {run.name} still {current.label} after {timeout:.0f} s")
        time.sleep(poll)


# --------------------------------------------------------------------------------------------------
# The worker


class _StopFlag:
    """Set by SIGTERM/SIGINT or by a ``cancel.request`` file; polled by the training loop."""

    def __init__(self, run: Path) -> None:
        self.set = False
        self._marker = run / CANCEL_MARKER

    def __call__(self) -> bool:
        if not self.set and self._marker.exists():
            self.set = True
        return self.set


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


def _queue_position_ok(run: Path, me: dict[str, Any]) -> bool:
    """True if no older live run is still waiting in the queue."""
    mine = (float(me.get("queued_at") or 0), run.name)
    for other in runs_root().iterdir():
        if other == run or not other.is_dir() or other.name.startswith("."):
            continue
        st = read_json(other / "status.json") or {}
        if st.get("executor", "local") != "local":  # runs elsewhere: not in the local queue
            continue
        if st.get("state") != "queued" or not worker_alive(other, st):
            continue
        if (float(st.get("queued_at") or 0), other.name) < mine:
            return False
    return True


def _acquire_slot(run: Path, stop: _StopFlag) -> int | None:
    """Block (polling) until this run may take a job slot; returns the locked fd, None if stopped."""
    slots = runs_root() / ".slots"
    slots.mkdir(exist_ok=True)
    while not stop():
        if _queue_position_ok(run, read_status(run)):
            for i in range(max_jobs()):
                fd = os.open(slots / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, run.name.encode())
                return fd
        time.sleep(1.0)
    return None


def _run_log_handler(run: Path) -> logging.Handler:
    """A handler appending to the run's ``train.log`` in its one format."""
    handler = logging.FileHandler(run / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def _log_to_run(run: Path, message: str) -> None:
    """One warning in the run's ``train.log`` from outside its worker (e.g. the canceller's SIGKILL)."""
    handler = _run_log_handler(run)
    record = logging.LogRecord("core.runs.jobs", logging.WARNING, __file__, 0, message, None, None)
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


def execute(kind: str, config: dict[str, Any], run: Path, stop: _StopFlag, status_cb: Any) -> Any:
    """Dispatch a run to its implementation."""
    if kind == "finetune":
        from core.training.finetune import FinetuneConfig, finetune

        return finetune(
            FinetuneConfig.from_dict(config), run, should_stop=stop, on_progress=status_cb
        )
    if kind == "sweep":
        from core.training.sweep import SweepConfig, run_sweep

        return run_sweep(
            SweepConfig.from_dict(config), run, should_stop=stop, on_progress=status_cb
        )
    if kind == "benchmark":
        from core.training.benchmark import run_benchmark, save_benchmark
        from core.training.configs import BenchmarkConfig

        bench = run_benchmark(
            BenchmarkConfig.from_dict(config), on_progress=status_cb, should_stop=stop
        )
        save_benchmark(bench, run)
        return bench
    raise RunError(f"unknown job kind {kind!r}; kinds: {', '.join(KINDS)}")


def result_summary(result: Any) -> dict[str, Any]:
    """The scalar figures (and params/suggestion) of a result, kept in ``status.json``."""
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result or {})
    return {
        k: v
        for k, v in data.items()
        if isinstance(v, int | float | str) or k in ("params", "suggested")
    }


def run_job(run_id: str | os.PathLike) -> int:
    """Worker body: wait for a slot, run the job, record done/failed/cancelled; returns an exit code."""
    run = run_dir(run_id)
    stop = _StopFlag(run)

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
    logger = logging.getLogger("core.runs.jobs")
    fd = None
    try:
        spec = read_json(run / "config.json") or {}
        kind, config = spec.get("kind"), spec.get("config", {})
        write_status(run, state="queued", pid=os.getpid(), pid_start=proc_start(os.getpid()))
        from core.runs.executors import drive, runs_elsewhere

        if runs_elsewhere(spec):  # e.g. a Ray task: the executor drives it
            return drive(run, spec, stop)
        fd = _acquire_slot(run, stop)
        if fd is None:
            raise Cancelled("cancelled while queued")
        write_status(run, state="running", started_at=stamp(), interrupted=False, error=None)
        logger.info("run %s (%s) started, pid %d", run.name, kind, os.getpid())

        def status_cb(row: dict[str, Any]) -> None:
            write_status(
                run, state="running", epoch=row.get("epoch"), step=row.get("step"), last=row
            )

        result = execute(str(kind), config, run, stop, status_cb)
        if old:
            _disarm_grace()
        write_status(
            run,
            state="done",
            finished_at=stamp(),
            error=None,
            interrupted=False,
            summary=result_summary(result),
        )
        logger.info("done")
        return 0
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
            write_status(run, state="cancelled", error=None, finished_at=stamp())
            return 0
        logger.error("failed: %s\n%s", exc, traceback.format_exc())
        write_status(run, state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=stamp())
        return 1
    finally:
        if old:
            _disarm_grace()
        if fd is not None:
            os.close(fd)
        logging.getLogger("core").removeHandler(handler)
        handler.close()
        for s, h in old.items():
            signal.signal(s, h)
