"""Where runs execute: one seam, two executors. ``local`` (the default) and ``ray``.

- ``local``: detached worker processes and flock job slots (:mod:`core.runs.local`); imports
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
(:func:`core.runs.lifecycle.cancel`) sets ``cancel_requested`` in its status and sends the driver SIGTERM;
the driver calls ``ray.cancel`` on the task and the worker, which polls the flag, stops at the next
training step. Both executors answer with typed :class:`~core.runs.records.RunStatus` values.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from core.errors import RunError
from core.io.run_folder import RunFolder, RunSpec
from core.runs.local import LocalExecutor
from core.runs.records import RunStatus
from core.runs.spec import ExecutorSpec, executor_spec, run_executor
from core.runs.worker import StopFlag

__all__ = [
    "LAUNCH_CHOICES",
    "Executor",
    "executor_of",
    "get_executor",
    "launch_choice_default",
    "launch_spec",
    "require_executor",
]


class Executor(Protocol):
    """Runs run folders somewhere, and plain functions alongside (suggestions, benchmarks, shards).

    A run's life goes through it whatever process asks: :meth:`launch` starts the run's detached
    worker, :meth:`drive` is that worker's body (inside :func:`core.runs.worker.serve`), :meth:`cancel`
    stops it. :meth:`submit`/:meth:`wait` run many folders from one driver (a grid, a sweep's points).
    """

    name: str

    def launch(self, run: Path) -> int:
        """Start the run's detached worker process (it outlives the caller); returns its pid."""

    def drive(self, run: Path, spec: RunSpec | None, stop: StopFlag) -> int:
        """Inside the run's worker: run it to its end here or on the cluster; returns an exit code."""

    def cancel(self, run: Path, *, force: bool = False, timeout: float | None = None) -> RunStatus:
        """Ask a run to stop from any process; waits up to ``timeout`` s; returns its status."""

    def submit(self, run: Path) -> None:
        """Start the run folder's job (it keeps its status files up to date)."""

    def wait(
        self, runs: Sequence[Path], *, stop: Callable[[], bool] | None = None
    ) -> dict[str, RunStatus]:
        """Block until every run is final; returns run id -> final status. ``stop()`` cancels all."""

    def status(self, run: Path) -> RunStatus:
        """The run's status."""

    def map(
        self, fn: Callable[..., Any], calls: Sequence[tuple], *, gpu: bool = False
    ) -> list[Any]:
        """``[fn(*args) for args in calls]``, in parallel where the executor can."""

    def close(self) -> None:
        """Release what the executor holds (a Ray cluster it started)."""


def get_executor(spec: ExecutorSpec | None = None) -> Executor:
    """The executor ``spec`` names (its module imported only here: Ray's only for ``ray``)."""
    spec = spec or executor_spec()
    if spec.name == "local":
        return LocalExecutor()
    from core.runs.ray_executor import RayExecutor  # Ray's stack: not for the CLI's start-up

    return RayExecutor(spec)


def executor_of(run: Path) -> Executor:
    """The executor that runs ``run``: the one its status names (``local`` when none does), with the
    settings its ``config.json`` gives that executor."""
    found = RunFolder(run).read_spec()
    named = run_executor(found) if found is not None and found.executor else None
    name = RunFolder(run).read_status().get("executor") or (named.name if named else "local")
    return get_executor(named if named is not None and named.name == name else ExecutorSpec(name))


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
