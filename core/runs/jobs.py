"""Background jobs (fine-tune runs, prune sweeps): start, watch, cancel, find again, resume.

Layout: every run lives in ``cache_dir()/runs/<run-id>/`` with ``config.json`` (``{"kind": ...,
"config": {...}}``), ``status.json`` (written atomically), ``metrics.jsonl``, ``train.log`` and the
kind's outputs. ``run-id`` = ``<UTC time>-<kind>-<model>-<random>`` so folders sort by age.

Status states: ``queued`` -> ``running`` -> ``done`` | ``failed`` (``error`` holds the message) |
``cancelled``. ``resumable`` is true when a training-state checkpoint (``state.pt``) exists.

Process model: :func:`start` spawns ``python -m core.cli.jobs run-job <run-dir>`` with
``start_new_session=True`` (its own process group, so it survives the page/CLI that started it and a
cancel reaches its children). The worker records its pid; :func:`cancel` sends SIGTERM to the group,
the worker stops at the next training step and writes ``cancelled`` (``force=True`` sends SIGKILL and
writes the status itself). :func:`list_runs` finds runs after a reload/restart by scanning the folder;
a run whose status says queued/running but whose process is gone (checked through ``/proc/<pid>``:
alive, not a zombie, and its command line names the run folder, so a reused pid is not mistaken for
it) is marked ``failed`` with ``interrupted: true`` and is resumable from its last epoch checkpoint.

Queue: at most ``max_jobs()`` runs train at once (``$CONVEXITY_LAB_MAX_JOBS``, default 1). A worker
holds an exclusive ``fcntl.flock`` on one of the slot files ``runs/.slots/slot-<i>.lock`` while it
runs; the kernel releases it when the process exits in any way (even SIGKILL), so no stale lock can
block the queue. Waiting workers poll once a second and only the oldest live queued run (by
``queued_at``, then run id) may take a free slot, so runs start in submission order.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.io.atomic import atomic_write_json
from core.io.paths import REPO_ROOT, cache_dir

__all__ = [
    "ACTIVE",
    "FINAL",
    "cancel",
    "create_run",
    "list_runs",
    "max_jobs",
    "read_metrics",
    "read_status",
    "resume",
    "run_dir",
    "run_job",
    "runs_root",
    "start",
    "submit",
    "wait",
]

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled")
KINDS = ("finetune", "sweep")
_POPEN: dict[str, subprocess.Popen] = {}  # children started by this process, reaped in list_runs


def runs_root() -> Path:
    """``cache_dir()/runs``, created if missing."""
    root = cache_dir() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def max_jobs() -> int:
    """How many runs may train at once (``$CONVEXITY_LAB_MAX_JOBS``, default 1)."""
    try:
        return max(1, int(os.environ.get("CONVEXITY_LAB_MAX_JOBS", "1")))
    except ValueError:
        return 1


def run_dir(run_id: str | os.PathLike) -> Path:
    """The folder of a run given its id (or a path to it)."""
    p = Path(run_id)
    if p.is_absolute() or p.exists() and (p / "config.json").exists():
        return p
    return runs_root() / str(run_id)


def _stamp() -> str:
    """Current UTC time as ISO text."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None if missing/unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def read_status(run_id: str | os.PathLike) -> dict[str, Any]:
    """The run's ``status.json`` (``{"state": "unknown"}`` if it has none)."""
    return _read_json(run_dir(run_id) / "status.json") or {"state": "unknown"}


def _write_status(run: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``status.json`` atomically; returns the new status."""
    status = _read_json(run / "status.json") or {}
    status.update(fields)
    status["updated_at"] = _stamp()
    status["run_id"] = run.name
    status["resumable"] = (run / "state.pt").exists() or any(run.glob("p*/state.pt"))
    atomic_write_json(run / "status.json", status)
    return status


def create_run(kind: str, config: dict[str, Any], run_id: str | None = None) -> Path:
    """Make a run folder with ``config.json`` and a ``queued`` status; returns its path."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; kinds: {', '.join(KINDS)}")
    if run_id is None:
        model = Path(str(config.get("model", "model"))).name.replace("/", "_")[:40]
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_id = f"{stamp}-{kind}-{model}-{secrets.token_hex(3)}"
    run = runs_root() / run_id
    run.mkdir(parents=True, exist_ok=False)
    atomic_write_json(run / "config.json", {"kind": kind, "config": config})
    _write_status(run, state="queued", queued_at=time.time(), kind=kind, pid=None, error=None)
    return run


# --------------------------------------------------------------------------------------------------
# Processes


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/<pid>/stat), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int | None, run: Path, started: str | None = None) -> bool:
    """Whether ``pid`` is a live (non-zombie) worker of this run."""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        if started is not None:  # recorded by the worker itself: exact, also for foreground runs
            return _proc_start(pid) == started
        return str(run.name) in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(run: Path, status: dict[str, Any]) -> bool:
    """Whether the worker named in ``status`` is still running."""
    return _pid_alive(status.get("pid"), run, status.get("pid_start"))


def _reap() -> None:
    """Collect exited children this process started (no zombies in a long-running dashboard)."""
    for key, proc in list(_POPEN.items()):
        if proc.poll() is not None:
            _POPEN.pop(key, None)


def start(run_id: str | os.PathLike) -> int:
    """Start the run's worker as a detached background process; returns its pid."""
    run = run_dir(run_id).resolve()
    env = dict(os.environ)
    env["CONVEXITY_LAB_CACHE"] = str(cache_dir())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with open(run / "worker.out", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.cli.jobs", "run-job", str(run)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _POPEN[run.name] = proc
    status = read_status(run)
    if status.get("state") in ACTIVE and not status.get("pid"):
        _write_status(run, pid=proc.pid, pid_start=None)
    return proc.pid


def submit(kind: str, config: dict[str, Any]) -> Path:
    """Create a run and start it in the background (it waits in the queue if a slot is busy)."""
    run = create_run(kind, config)
    start(run)
    return run


def cancel(
    run_id: str | os.PathLike, *, force: bool = False, timeout: float = 0.0
) -> dict[str, Any]:
    """Ask a run to stop (SIGTERM to its process group; SIGKILL with ``force``); returns the status."""
    run = run_dir(run_id)
    status = read_status(run)
    if status.get("state") not in ACTIVE:
        return status
    if status.get("executor", "local") != "local":  # issue 12 hook: the task's driver cancels it
        from core.runs.executors import cancel_elsewhere

        return cancel_elsewhere(run, force=force, timeout=timeout)
    pid = status.get("pid")
    if _alive(run, status):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid), signal.SIGKILL if force else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(run, status):
            time.sleep(0.2)
        if not force and _alive(run, status):
            return _write_status(run, cancel_requested=True)
    _reap()
    status = read_status(run)
    if status.get("state") in ACTIVE:  # killed, never started, or already dead: write it ourselves
        status = _write_status(run, state="cancelled", error=None, finished_at=_stamp())
    return status


def resume(run_id: str | os.PathLike, *, background: bool = True) -> dict[str, Any]:
    """Restart a failed/cancelled/interrupted run from its last epoch checkpoint (or from scratch)."""
    run = run_dir(run_id)
    status = _refresh(run, read_status(run))
    if status.get("state") in ACTIVE:
        raise RuntimeError(f"run {run.name} is still {status['state']}")
    if status.get("state") == "done":
        raise RuntimeError(f"run {run.name} is already done")
    _write_status(
        run, state="queued", queued_at=time.time(), pid=None, pid_start=None, error=None,
        interrupted=False,
        cancel_requested=False,
    )  # fmt: skip
    if background:
        start(run)
    else:
        run_job(run)
    return read_status(run)


def _refresh(run: Path, status: dict[str, Any]) -> dict[str, Any]:
    """Mark an active-looking run whose worker is gone as failed/interrupted."""
    if status.get("state") not in ACTIVE or not status.get("pid"):
        return status
    if _alive(run, status):
        return status
    status = read_status(run)  # it may have finished between the two reads
    if status.get("state") not in ACTIVE:
        return status
    return _write_status(
        run,
        state="failed",
        interrupted=True,
        error=f"interrupted: worker process {status.get('pid')} is gone (killed or machine restarted)",
        finished_at=_stamp(),
    )


def list_runs() -> list[dict[str, Any]]:
    """Every run under the runs folder (newest first): status + kind + config, dead workers detected."""
    _reap()
    out = []
    for run in sorted(runs_root().iterdir(), reverse=True):
        if not run.is_dir() or run.name.startswith(".") or not (run / "config.json").exists():
            continue
        cfg = _read_json(run / "config.json") or {}
        status = _refresh(run, read_status(run))
        out.append(
            {**status, "run_id": run.name, "path": str(run), "config": cfg.get("config", {})}
        )
    return out


def read_metrics(run_id: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` so far (a torn last line is skipped)."""
    path = run_dir(run_id) / "metrics.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def wait(
    run_id: str | os.PathLike,
    *,
    timeout: float = 600.0,
    until: Callable[[dict[str, Any]], bool] | None = None,
    poll: float = 0.5,
) -> dict[str, Any]:
    """Poll until the run is final (or ``until(status)`` holds); returns the status (raises on timeout)."""
    run = run_dir(run_id)
    deadline = time.monotonic() + timeout
    while True:
        _reap()
        status = _refresh(run, read_status(run))
        if until(status) if until else status.get("state") in FINAL:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run.name} still {status.get('state')} after {timeout:.0f} s")
        time.sleep(poll)


# --------------------------------------------------------------------------------------------------
# The worker


class _StopFlag:
    """Set by SIGTERM/SIGINT; polled by the training loop."""

    def __init__(self) -> None:
        self.set = False

    def __call__(self) -> bool:
        return self.set


def _queue_position_ok(run: Path, me: dict[str, Any]) -> bool:
    """True if no older live run is still waiting in the queue."""
    mine = (float(me.get("queued_at") or 0), run.name)
    for other in runs_root().iterdir():
        if other == run or not other.is_dir() or other.name.startswith("."):
            continue
        st = _read_json(other / "status.json") or {}
        if st.get("executor", "local") != "local":  # issue 12 hook: not in the local queue
            continue
        if st.get("state") != "queued" or not _alive(other, st):
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


def _setup_logging(run: Path) -> logging.Handler:
    """Send the core loggers to ``train.log`` (appending, so resumes keep the history)."""
    handler = logging.FileHandler(run / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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


def _execute(kind: str, config: dict[str, Any], run: Path, stop: _StopFlag, status_cb: Any) -> Any:
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
    raise ValueError(f"unknown job kind {kind!r}")


def run_job(run_id: str | os.PathLike) -> int:
    """Worker body: wait for a slot, run the job, record done/failed/cancelled; returns an exit code."""
    run = run_dir(run_id).resolve()
    stop = _StopFlag()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set = True

    old: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            old[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread (e.g. run in-process from a UI thread): no signals
            break
    handler = _setup_logging(run)
    logger = logging.getLogger("core.runs.jobs")
    fd = None
    try:
        spec = _read_json(run / "config.json") or {}
        kind, config = spec.get("kind"), spec.get("config", {})
        _write_status(run, state="queued", pid=os.getpid(), pid_start=_proc_start(os.getpid()))
        from core.runs.executors import drive, runs_elsewhere  # issue 12 hook: e.g. a Ray task

        if runs_elsewhere(spec):
            return drive(run, spec, stop)
        fd = _acquire_slot(run, stop)
        if fd is None:
            _write_status(run, state="cancelled", finished_at=_stamp())
            return 0
        _write_status(run, state="running", started_at=_stamp(), interrupted=False, error=None)
        logger.info("run %s (%s) started, pid %d", run.name, kind, os.getpid())

        def status_cb(row: dict[str, Any]) -> None:
            _write_status(
                run, state="running", epoch=row.get("epoch"), step=row.get("step"),
                last=row,
            )  # fmt: skip

        from core.training.finetune import Cancelled

        try:
            result = _execute(kind, config, run, stop, status_cb)
        except Cancelled:
            logger.info("cancelled")
            _write_status(run, state="cancelled", finished_at=_stamp())
            return 0
        summary = {
            k: v
            for k, v in (result or {}).items()
            if isinstance(v, int | float | str) or k in ("params", "suggested")
        }
        _write_status(
            run, state="done", finished_at=_stamp(), error=None, interrupted=False, summary=summary
        )
        logger.info("done")
        return 0
    except BaseException as exc:  # record every failure, then let the exit code say so
        logger.error("failed: %s\n%s", exc, traceback.format_exc())
        _write_status(
            run, state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=_stamp()
        )
        return 1
    finally:
        if fd is not None:
            os.close(fd)
        logging.getLogger("core").removeHandler(handler)
        handler.close()
        for s, h in old.items():
            signal.signal(s, h)
