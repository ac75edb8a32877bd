"""The ``ray`` executor: runs, grid cells, sweep points, extraction shards and convexity layers as Ray tasks.

Ray is the scheduler, retry engine and transport; this module only maps our units of work onto it:

- a run folder -> one task (``num_gpus`` per :class:`~core.runs.spec.ExecutorSpec`: 1 when the
  cluster has GPUs, a fraction for small models, else CPUs only). ``max_retries`` covers system
  failures (the worker process or its node died): the retry resumes from the run's last epoch
  checkpoint (``state.pt``), losing at most the epoch in progress. ``retry_exceptions`` stays off:
  an exception (bad config, missing data) is caught in the task, recorded as the run's ``failed``
  status and returned, so it fails once and the other tasks go on.
- a sweep with a shared cache -> pretrained convexity as a task, then each prune point's fine-tune as
  a task (in parallel), then the sweep's table/benchmarks as a task that finds the points trained.
- plain functions -> one task per call (:meth:`RayExecutor.map`; feature-extraction shards and
  convexity layers go through it, see :mod:`core.runs.parallel`).

Results: with ``results="shared"`` (or ``auto`` and the worker can see the driver's probe file in
``$CONVEXITY_LAB_CACHE``) workers write straight into the shared cache/run folders; otherwise a task
computes in a scratch folder and returns the run's files (everything but ``state.pt``) through the
object store, and the driver writes them atomically. Object-store mode cannot resume a killed task
from its checkpoint on another node (the checkpoint died with the node): the retry starts the cell
again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.data.datasets import label_set
from core.errors import Cancelled, RunError
from core.io.atomic import atomic_write_bytes
from core.io.paths import REPO_ROOT, cache_dir, private_temp_dir
from core.io.processes import proc_start
from core.io.run_folder import RunFolder, RunSpec, result_summary, stamp
from core.runs.folders import RunState, enqueue, set_state, write_status
from core.runs.local import record_cancelled_if_gone, signal_worker, spawn_worker, worker_pid
from core.runs.records import (
    ACTIVE,
    RunStatus,
    refresh,
    status,
    status_from,
    worker_alive,
)
from core.runs.spec import ExecutorSpec
from core.runs.worker import (
    LOGGER,
    StopFlag,
    error_line,
    execute,
    progress_writer,
    request_stop,
    setup_run_logging,
)
from core.training.kinds import run_kind

__all__ = ["LOOPBACK_ONLY", "RayExecutor", "require_ray"]

log = logging.getLogger("core.runs.ray_executor")
PROBE_PREFIX = ".ray-probe-"
# Ray's single-machine mode (read when ray is imported): its servers bind 127.0.0.1, not every interface.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_REMOTES: dict[str, Any] = {}


def ray_temp_dir() -> Path:
    """Where a private local cluster keeps its sockets and logs: inside this user's 0700 folder, since
    Ray makes its own temp folder writable by everyone."""
    return private_temp_dir("ray") / "ray"


def require_ray() -> Any:
    """The ``ray`` module, or RunError in one line when it is not installed."""
    try:
        import ray
    except ImportError:
        raise RunError(
            "--executor ray needs Ray, which is not installed: pip install ray==2.60.0 "
            "(or use --executor local)"
        ) from None
    return ray


def _raw(run: Path) -> dict[str, Any]:
    """A folder's raw ``status.json`` (a run, a sweep point inside one, or a worker's scratch copy)."""
    return RunFolder(run).read_status() or {"state": "unknown"}


def _remote(fn: Callable[..., Any]) -> Any:
    """``ray.remote(fn)``, made once per function."""
    ray = require_ray()
    if fn.__name__ not in _REMOTES:
        _REMOTES[fn.__name__] = ray.remote(fn)
    return _REMOTES[fn.__name__]


# --------------------------------------------------------------------------------------------------
# Inside a worker


def _enter_worker(cache: str, probe: str, mode: str, threads: int) -> Path | None:
    """Point the worker at the shared cache, or at a fresh scratch folder (returned) when not shared."""
    import torch

    torch.set_num_threads(max(1, threads))
    shared = mode == "shared" or (mode == "auto" and (Path(cache) / probe).exists())
    if shared:
        os.environ["CONVEXITY_LAB_CACHE"] = cache
        return None
    scratch = Path(tempfile.mkdtemp(prefix="convexity-ray-"))
    os.environ["CONVEXITY_LAB_CACHE"] = str(scratch / "cache")
    return scratch


class _CancelFlag:
    """``should_stop`` for a task: true once the run's status says ``cancel_requested`` (polled <= 2/s)."""

    def __init__(self, run: Path) -> None:
        self.run, self.last, self.value = run, 0.0, False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.value and now - self.last > 0.5:
            self.last = now
            self.value = bool(_raw(self.run).get("cancel_requested"))
        return self.value


def _pack(run: Path) -> dict[str, bytes]:
    """Every file a task wrote into a run folder, by relative path (object-store mode): not the
    training state, not the settings (the driver's ``config.json`` is the run's, written once)."""
    kept = (RunFolder.CHECKPOINT, RunFolder.CONFIG)
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name not in kept and not p.name.startswith(".")
    }


@dataclass(frozen=True)
class TaskOutcome:
    """How a run's task ended, as it travels back to the driver (through Ray's object store).

    ``files``: the run folder's files by relative path when the workers share no cache path.
    """

    state: RunState
    error: str | None = None
    summary: dict[str, Any] | None = None
    attempt: int | None = None
    worker_host: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)

    def record(self, run: Path, **fields: Any) -> dict[str, Any]:
        """Move the run to this outcome's state with its error (and summary, when there is one)."""
        if self.summary is not None:
            fields["summary"] = self.summary
        return set_state(run, RunState(self.state), error=self.error, **fields)


def _run_task(
    run_dir: str, spec: dict[str, Any], cache: str, probe: str, mode: str, threads: int
) -> TaskOutcome:
    """Ray task body: run one run folder's job (finetune or sweep) and report its final state."""
    scratch = _enter_worker(cache, probe, mode, threads)
    run = Path(run_dir)
    if scratch is not None:  # a copy of the run folder's settings in the scratch folder
        run = scratch / "runs" / run.name
        run.mkdir(parents=True)
        settings = RunSpec.from_dict(spec)
        if settings is None:
            raise RunError(f"run {run.name}: its settings are not a run's config.json")
        RunFolder(run).write_spec(settings)
    attempt = int(_raw(run).get("attempt") or 0) + 1
    host = socket.gethostname()
    set_state(
        run,
        RunState.RUNNING,
        started_at=stamp(),
        worker_pid=os.getpid(),
        worker_pid_start=proc_start(os.getpid()),
        worker_host=host,
        attempt=attempt,
        interrupted=False,
        error=None,
    )
    handler = setup_run_logging(run)
    try:
        result = execute(
            spec.get("kind"), spec.get("config", {}), run, _CancelFlag(run), progress_writer(run)
        )
        out = TaskOutcome(RunState.DONE, summary=result_summary(result))
    except Cancelled:
        out = TaskOutcome(RunState.CANCELLED)
    except KeyboardInterrupt:  # ray.cancel: record it, let Ray see the cancellation
        set_state(run, RunState.CANCELLED, error=None, finished_at=stamp())
        raise
    except Exception as exc:  # a deterministic failure: recorded and returned, never retried
        logging.getLogger(LOGGER).exception("failed")
        out = TaskOutcome(RunState.FAILED, error_line(exc))
    finally:
        logging.getLogger("core").removeHandler(handler)
        handler.close()
    out.record(run, finished_at=stamp())
    out = replace(out, attempt=attempt, worker_host=host)
    if scratch is not None:
        out = replace(out, files=_pack(run))
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _call_task(
    fn: Callable[..., Any], args: tuple, cache: str, probe: str, mode: str, threads: int
) -> Any:
    """Ray task body for a plain function (suggestion, benchmark, shard, convexity layer)."""
    scratch = _enter_worker(cache, probe, mode, threads)
    try:
        return fn(*args)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# The driver


class RayExecutor:
    """Submits run folders and functions to a Ray cluster and keeps their run status files current."""

    name = "ray"

    def __init__(self, spec: ExecutorSpec) -> None:
        self.spec = spec
        self._owns = False
        self._num_gpus: float | None = None
        self.probe = f"{PROBE_PREFIX}{secrets.token_hex(8)}"
        self._probes: set[Path] = set()
        self._refs: dict[str, Any] = {}
        self._cancelled: set[str] = set()

    def connect(self) -> Any:
        """The ``ray`` module, connected to the spec's cluster (a private loopback one without an
        address) on first use: launching and cancelling a run need no cluster, only its driver does."""
        private = self.spec.address in (None, "", "local")
        if private and "ray" not in sys.modules:  # single-machine mode: every server on 127.0.0.1
            os.environ.setdefault(LOOPBACK_ONLY, "0")
        ray = require_ray()
        if not ray.is_initialized():
            env = {"env_vars": {"PYTHONPATH": str(REPO_ROOT)}}
            quiet = {"log_to_driver": False, "logging_level": logging.WARNING, "runtime_env": env}
            if private:  # a private local cluster, loopback only, its sockets in this user's folder
                ray.init(
                    address="local",
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    _temp_dir=str(ray_temp_dir()),
                    **quiet,
                )
            else:
                ray.init(address=self.spec.address, **quiet)
            self._owns = True
        return ray

    @property
    def num_gpus(self) -> float:
        """GPUs per run task: the spec's, else 1 when the cluster has GPUs, else 0."""
        if self._num_gpus is None:
            gpus = float(self.connect().cluster_resources().get("GPU", 0))
            self._num_gpus = self.spec.num_gpus
            if self._num_gpus is None:
                self._num_gpus = 1.0 if gpus > 0 else 0.0
        return self._num_gpus

    # ---------------------------------------------------------------------------------------------
    # A run's life, seen from any process (no cluster needed)

    def launch(self, run: Path) -> int:
        """Start the run's detached driver process (it submits the task and waits); returns its pid."""
        return spawn_worker(run)

    def cancel(self, run: Path, *, force: bool = False, timeout: float | None = None) -> RunStatus:
        """Flag the run (``cancel_requested``) and send its driver SIGTERM; the driver cancels the
        task (:meth:`wait`). Waits up to ``timeout`` s (default 0) for the driver to be gone."""
        raw = refresh(run)
        if raw.get("state") not in ACTIVE:
            return status(run)
        request_stop(run, force=force)
        write_status(run, cancel_requested=True, cancel_force=bool(force))
        pid = worker_pid(run, raw)
        if pid is not None and worker_alive(run, raw):  # only the driver: its group may hold Ray
            signal_worker(int(pid), signal.SIGTERM, group=False)
            deadline = time.monotonic() + (timeout or 0.0)
            while time.monotonic() < deadline and worker_alive(run, _raw(run)):
                time.sleep(0.1)
        return record_cancelled_if_gone(run)

    def drive(self, run: Path, spec: RunSpec | None, stop: StopFlag) -> int:
        """Inside the run's driver process: submit the task, wait for it, release the cluster."""
        try:
            write_status(run, executor=self.name)
            self.submit(run)
            final = self.wait([run], stop=stop)[run.name]
        finally:
            self.close()
        return 0 if final.state in (RunState.DONE, RunState.CANCELLED) else 1

    # ---------------------------------------------------------------------------------------------
    # The driver

    def _options(self, gpu: bool) -> dict[str, Any]:
        """Resources, retries and environment of one task."""
        return {
            "num_cpus": self.spec.num_cpus,
            "num_gpus": self.num_gpus if gpu else 0,
            "max_retries": self.spec.max_retries,
            "retry_exceptions": False,
            "runtime_env": {"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
        }

    def _worker_args(self) -> tuple[str, str, str, int]:
        """Cache path (now: ``$CONVEXITY_LAB_CACHE`` may change), probe name, results mode, threads."""
        cache = cache_dir().resolve()
        if cache / self.probe not in self._probes:
            (cache / self.probe).touch()
            self._probes.add(cache / self.probe)
        return str(cache), self.probe, self.spec.results, max(1, int(self.spec.num_cpus))

    def submit(self, run: Path) -> None:
        """Queue the run folder's job as a task; the status names this process as its driver."""
        run = Path(run).resolve()
        found = RunFolder(run).read_spec()
        if found is None:
            raise RunError(f"run {run.name} has no readable settings")
        spec = found.to_dict()
        self.connect()
        enqueue(
            run,
            executor=self.name,
            pid=os.getpid(),
            pid_start=proc_start(os.getpid()),
            attempt=0,
        )
        if run_kind(spec.get("kind")).points and self.spec.results != "object-store":
            self._refs[run.name] = self._sweep(run, spec)
            return
        task = _remote(_run_task).options(**self._options(gpu=True))
        self._refs[run.name] = task.remote(str(run), spec, *self._worker_args())

    def _sweep(self, run: Path, spec: dict[str, Any]) -> Any:
        """A sweep: pretrained convexity, every point's fine-tune in parallel, then its table (a task)."""
        from core.geometry.prune_point import suggest_prune_point
        from core.training.sweep import (
            SweepConfig,
            point_config,
            point_name,
            pretrained_convexity,
            resolve_points,
        )

        cfg = SweepConfig.from_dict(spec.get("config", {}))
        set_state(run, RunState.RUNNING, started_at=stamp())
        folder = RunFolder(run)
        pre = folder.read_json(RunFolder.PRETRAINED_CONVEXITY)
        if pre is None:
            pre = self.map(pretrained_convexity, [(cfg,)], gpu=True)[0]
            folder.write_json(RunFolder.PRETRAINED_CONVEXITY, pre)
        relevant = label_set(cfg.data.task)
        suggested = suggest_prune_point(pre["curves"][relevant]["scores"], cfg.fraction)
        points = resolve_points(cfg.points, suggested, int(pre["n_layers"]))
        subs = []
        for p in points:
            sub = folder.point(point_name(p))
            if sub.file(RunFolder.RESULT).exists():
                continue
            sub.path.mkdir(parents=True, exist_ok=True)
            sub.ensure_spec(RunSpec("finetune", point_config(cfg, p).to_dict()))
            subs.append(sub.path)
            self.submit(sub.path)
        finals = self.wait(subs, stop=lambda: bool(_raw(run).get("cancel_requested")))
        bad = {n: s for n, s in finals.items() if s.state != RunState.DONE}
        if bad:
            name, status = next(iter(bad.items()))
            return TaskOutcome(RunState(status.state), f"point {name}: {status.error}")
        task = _remote(_run_task).options(**self._options(gpu=True))
        return task.remote(str(run), spec, *self._worker_args())

    def wait(
        self, runs: Sequence[Path], *, stop: Callable[[], bool] | None = None, poll: float = 0.5
    ) -> dict[str, RunStatus]:
        """Until every run is final: collect finished tasks, pass cancel requests on to ``ray.cancel``."""
        ray = self.connect()
        pending = {Path(r).resolve().name: Path(r).resolve() for r in runs}
        out: dict[str, RunStatus] = {}
        while pending:
            for name in [n for n in pending if isinstance(self._refs.get(n), TaskOutcome | None)]:
                out[name] = self._finish(pending.pop(name), self._refs.pop(name, None))
            refs = {self._refs[n]: n for n in pending}
            if not refs:
                break
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=poll)
            for ref in ready:
                name = refs[ref]
                out[name] = self._finish(pending.pop(name), self._refs.pop(name))
            stopping = stop is not None and stop()
            for name, run in pending.items():
                status = _raw(run)
                if (stopping or status.get("cancel_requested")) and name not in self._cancelled:
                    if stopping:
                        write_status(run, cancel_requested=True)
                    self._cancel_task(run, force=bool(status.get("cancel_force")))
        return out

    def _finish(self, run: Path, ref: Any) -> RunStatus:
        """Write a finished task's outcome into its run folder; returns the final status."""
        ray = require_ray()
        from ray.exceptions import RayError, TaskCancelledError

        try:
            out = ref if isinstance(ref, TaskOutcome | None) else ray.get(ref)
        except TaskCancelledError:
            out = TaskOutcome(RunState.CANCELLED)
        except RayError as exc:  # system failure after every retry (worker/node died), or a bug
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            out = TaskOutcome(RunState.FAILED, f"{type(exc).__name__}: {first}")
        if out is None:
            return self.status(run)
        for rel, data in out.files.items():
            target = (run / rel).resolve()
            if run.resolve() not in target.parents:  # nothing escapes the run folder
                raise RunError(f"task returned a file outside its run folder: {rel}")
            atomic_write_bytes(target, data)
        self._cancelled.discard(run.name)
        return status_from(run, out.record(run, finished_at=stamp(), interrupted=False))

    def _cancel_task(self, run: Path, *, force: bool = False) -> RunStatus:
        """``ray.cancel`` the run's task (KeyboardInterrupt in the worker; ``force`` kills the worker)."""
        ray = self.connect()
        run = Path(run).resolve()
        ref = self._refs.get(run.name)
        if ref is not None and not isinstance(ref, TaskOutcome):
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=force)
            self._cancelled.add(run.name)
        return self.status(run)

    def status(self, run: Path) -> RunStatus:
        """The run's status (kept current by the worker and by :meth:`wait`)."""
        run = Path(run)
        return status_from(run, _raw(run))

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple], *, gpu: bool = False
    ) -> list[Any]:
        """``fn(*args)`` for every call as parallel tasks (exceptions re-raised here, never retried)."""
        ray = self.connect()
        task = _remote(_call_task).options(**self._options(gpu=gpu))
        return ray.get([task.remote(fn, tuple(args), *self._worker_args()) for args in calls])

    def close(self) -> None:
        """Remove the probe file; shut down the cluster if this executor started it."""
        for probe in self._probes:
            probe.unlink(missing_ok=True)
        self._probes.clear()
        if self._owns:
            require_ray().shutdown()
            self._owns = False
