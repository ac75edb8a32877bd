"""Where runs execute: one seam, two executors. ``local`` (the default) and ``ray``.

- ``local``: today's detached worker processes and flock job slots of :mod:`core.runs.jobs`; imports
  nothing beyond the standard library.
- ``ray``: each run (a fine-tune, a sweep, a grid cell) is a Ray task (``num_gpus=1`` when the cluster
  has GPUs, a configurable fraction for small models, else CPUs); see :mod:`core.runs.ray_executor`.
  Ray is optional: it is imported only when this executor is chosen, and without it the choice fails
  with one line.

Choosing: ``ExecutorSpec`` from the CLI (``--executor ray --address auto|ray://host:10001``), else
``$CONVEXITY_LAB_EXECUTOR`` and ``$RAY_ADDRESS``. A run records its executor in ``config.json``
(``"executor": {...}``) and its status carries ``executor``, so ``jobs cancel``/``resume`` and the
run list treat it right whoever asks. A run on Ray keeps the usual run folder and status files: its
``pid`` is the *driver* process that owns the Ray task (alive on this host while the task may run on
another), ``worker_pid``/``worker_host``/``attempt`` say where the task runs now. Cancelling such a run
(:func:`core.runs.jobs.cancel`) sets ``cancel_requested`` in its status and sends the driver SIGTERM;
the driver calls ``ray.cancel`` on the task and the worker, which polls the flag, stops at the next
training step. Both executors answer with typed :class:`~core.runs.records.RunStatus` values.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from core.errors import RunError
from core.runs import jobs
from core.runs.folders import write_status
from core.runs.records import RunStatus, refresh, status_from

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorSpec",
    "LocalExecutor",
    "create_run_on",
    "default_address",
    "drive",
    "executor_spec",
    "get_executor",
    "launch_choice_default",
    "launch_spec",
    "require_executor",
    "runs_elsewhere",
    "submit_run",
]

EXECUTORS = ("local", "ray")
RESULTS_MODES = ("auto", "shared", "object-store")
# auto | local | host:port | ray://host:port (Ray Client); nothing else reaches ray.init.
ADDRESS_RE = re.compile(r"(auto|local|(ray://)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5})")


@dataclass(frozen=True)
class ExecutorSpec:
    """Which executor and how: Ray address, resources per task, retries, how results come back.

    ``num_gpus``: per task (``None``: 1 when the cluster has GPUs, else 0; 0.25 packs four small
    models on one GPU). ``results``: ``shared`` (workers write into ``$CONVEXITY_LAB_CACHE``, which must
    be the same path on every node), ``object-store`` (workers compute in a scratch folder and ship the
    run's files back; the driver writes them atomically) or ``auto`` (shared when the worker sees a
    probe file the driver wrote into the cache, else object store).
    """

    name: str = "local"
    address: str | None = None
    num_gpus: float | None = None
    num_cpus: float = 1.0
    max_retries: int = 3
    results: str = "auto"

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise RunError(f"unknown executor {self.name!r}; use one of {', '.join(EXECUTORS)}")
        if self.results not in RESULTS_MODES:
            raise RunError(f"results mode {self.results!r}: use {', '.join(RESULTS_MODES)}")
        if self.num_gpus is not None and self.num_gpus < 0 or self.num_cpus <= 0:
            raise RunError("GPUs per task must be >= 0 and CPUs per task > 0")
        if self.address and not ADDRESS_RE.fullmatch(self.address.strip()):
            raise RunError(
                f"Ray address {self.address[:80]!r}: use auto, host:6379 or ray://host:10001"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (stored in the run's config.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ExecutorSpec:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def default_address() -> str:
    """The Ray address a launcher offers first: ``$RAY_ADDRESS``, else ``auto`` (a running cluster)."""
    return os.environ.get("RAY_ADDRESS", "").strip() or "auto"


def executor_spec(name: str | None = None, address: str | None = None, **kw: Any) -> ExecutorSpec:
    """An ExecutorSpec from explicit choices, else ``$CONVEXITY_LAB_EXECUTOR`` / ``$RAY_ADDRESS``."""
    name = name or os.environ.get("CONVEXITY_LAB_EXECUTOR", "").strip() or "local"
    if name == "ray":
        address = (address or "").strip() or os.environ.get("RAY_ADDRESS") or None
    else:
        address = None
    gpus = os.environ.get("CONVEXITY_LAB_RAY_GPUS")
    if kw.get("num_gpus") is None and gpus:
        try:
            kw["num_gpus"] = float(gpus)
        except ValueError as exc:
            raise RunError(f"CONVEXITY_LAB_RAY_GPUS={gpus!r} is not a number") from exc
    return ExecutorSpec(
        name=name, address=address, **{k: v for k, v in kw.items() if v is not None}
    )


def _run_executor(spec: dict[str, Any]) -> ExecutorSpec:
    """The executor a run folder's config.json names (older runs: the environment's choice)."""
    if spec.get("executor"):
        return ExecutorSpec.from_dict(spec["executor"])
    return executor_spec()


def runs_elsewhere(spec: dict[str, Any]) -> bool:
    """Whether a run's config.json (``{"kind", "config", "executor"?}``) sends it off this process."""
    return _run_executor(spec).name != "local"


class Executor(Protocol):
    """Runs run folders somewhere, and plain functions alongside (suggestions, benchmarks, shards)."""

    name: str

    def submit(self, run: Path) -> None:
        """Start the run folder's job (it keeps its status files up to date)."""

    def wait(
        self, runs: Sequence[Path], *, stop: Callable[[], bool] | None = None
    ) -> dict[str, RunStatus]:
        """Block until every run is final; returns run id -> final status. ``stop()`` cancels all."""

    def cancel(self, run: Path, *, force: bool = False) -> RunStatus:
        """Ask a run to stop; returns its status."""

    def status(self, run: Path) -> RunStatus:
        """The run's status."""

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple], *, gpu: bool = False
    ) -> list[Any]:
        """``[fn(*args) for args in calls]``, in parallel where the executor can."""

    def close(self) -> None:
        """Release what the executor holds (a Ray cluster it started)."""


class LocalExecutor:
    """Detached processes and flock slots (``$CONVEXITY_LAB_MAX_JOBS`` at a time) on this machine."""

    name = "local"

    def submit(self, run: Path) -> None:
        """Spawn the detached worker (it waits for a free slot)."""
        jobs.start(run)

    def wait(
        self, runs: Sequence[Path], *, stop: Callable[[], bool] | None = None, poll: float = 0.5
    ) -> dict[str, RunStatus]:
        """Poll the status files until every run is final."""
        pending = {Path(r).name: Path(r) for r in runs}
        out: dict[str, RunStatus] = {}
        while pending:
            if stop is not None and stop():
                for run in pending.values():
                    jobs.cancel(run, timeout=jobs.cancel_wait())
            for name, run in list(pending.items()):
                status = refresh(run)  # notices a dead worker
                if status.get("state") in jobs.FINAL:
                    out[name] = status_from(run, status)
                    pending.pop(name)
            if pending:
                time.sleep(poll)
        return out

    def cancel(self, run: Path, *, force: bool = False) -> RunStatus:
        """SIGTERM (SIGKILL with ``force``) to the run's process group."""
        return jobs.cancel(run, force=force, timeout=jobs.cancel_wait())

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


def get_executor(spec: ExecutorSpec | None = None) -> Executor:
    """The executor ``spec`` names (Ray is imported only here, and only for ``ray``)."""
    spec = spec or executor_spec()
    if spec.name == "local":
        return LocalExecutor()
    from core.runs.ray_executor import RayExecutor

    return RayExecutor(spec)


def create_run_on(
    kind: str,
    config: dict[str, Any],
    spec: ExecutorSpec,
    run_id: str | None = None,
    *,
    check: bool = True,
) -> Path:
    """A queued run folder that records its executor (config.json ``executor``, status ``executor``).

    Settings no run could use are refused first, in one line
    (:func:`core.training.settings.check_settings`): the CLI and the pages never make a folder for
    them. ``check=False`` is the grid's: a bad cell fails alone, in its own folder.
    """
    if check:
        from core.training.settings import check_settings  # the training stack: not for --help

        check_settings(kind, config)
    run = jobs.create_run(kind, config, run_id=run_id, executor=spec.to_dict())
    write_status(run, executor=spec.name)
    return run


RAY_PROBE_SECONDS = 3.0  # how long a launch waits to learn that a cluster address answers


def require_executor(spec: ExecutorSpec) -> ExecutorSpec:
    """``spec`` when its executor can be used here: Ray importable for ``ray``, and an explicit
    ``host:port`` (or ``ray://host:port``) address answering within a few seconds; RunError in one
    line otherwise, before any run folder exists (Ray itself would retry for minutes)."""
    if spec.name == "ray":
        from core.runs.ray_executor import require_ray

        require_ray()
        _probe(spec.address)
    return spec


def _probe(address: str | None) -> None:
    """RunError unless a TCP connection to the address's host and port opens in time."""
    if not address or address.strip() in ("auto", "local"):
        return  # Ray finds (or starts) the cluster itself
    host, _, port = address.strip().removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=RAY_PROBE_SECONDS):
            return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RunError(
            f"no Ray cluster answers at {address}: {reason} (start one with 'ray start --head', "
            "give its address, or run locally)"
        ) from None


LAUNCH_CHOICES = {"local": "local", "Ray cluster": "ray"}  # a run launcher's "Run on" labels


def launch_choice_default() -> str:
    """The launcher label ``$CONVEXITY_LAB_EXECUTOR`` names (``local`` when unset or unknown)."""
    name = os.environ.get("CONVEXITY_LAB_EXECUTOR", "").strip()
    return next((k for k, v in LAUNCH_CHOICES.items() if v == name), "local")


def launch_spec(choice: str, address: str | None = None) -> ExecutorSpec:
    """The ExecutorSpec of a launcher's "Run on" label and address, as the CLI builds it; usable here.

    RunError (one line) for an unknown choice, a malformed address or Ray not installed.
    """
    if choice not in LAUNCH_CHOICES:
        raise RunError(f"run on {choice!r}: choose {' or '.join(LAUNCH_CHOICES)}")
    return require_executor(executor_spec(LAUNCH_CHOICES[choice], address))


def submit_run(kind: str, config: dict[str, Any], spec: ExecutorSpec | None = None) -> Path:
    """Create a run and start it in the background on ``spec``'s executor.

    Both executors start the usual detached worker; for ``ray`` that worker is the driver that owns
    the Ray task (see :func:`drive`), so the run outlives the page or command that asked for it.
    """
    spec = require_executor(spec or executor_spec())
    run = create_run_on(kind, config, spec)
    jobs.start(run)
    return run


def drive(run: Path, spec: dict[str, Any], stop: Callable[[], bool]) -> int:
    """Body of a detached worker whose run goes elsewhere: submit it, wait, return an exit code."""
    executor = get_executor(_run_executor(spec))
    try:
        write_status(run, executor=executor.name)
        executor.submit(run)
        final = executor.wait([run], stop=stop)[run.name]
    finally:
        executor.close()
    return 0 if final.state in ("done", "cancelled") else 1
