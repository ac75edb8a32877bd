"""A run's life, whichever executor runs it: create, start, submit, cancel, resume, restart, wait.

Layout: every run lives in ``cache_dir()/runs/<run-id>/`` (see :mod:`core.runs.folders`); its files
are :class:`core.io.run_folder.RunFolder`'s. ``run-id`` = ``<UTC time>-<kind>-<model>-<random>`` so
folders sort by age. Status states: ``queued`` -> ``running`` -> ``done`` | ``failed`` (``error``
holds the message) | ``cancelled``; :mod:`core.runs.records` derives them with the live process.

Every run starts as a detached worker process (:meth:`Executor.launch`), whose body is
:func:`run_job`: :func:`core.runs.worker.serve` around the executor's ``drive`` (the local executor
trains in that process once a job slot is free; the Ray executor's worker drives a Ray task). Cancel
goes through the executor that runs the run (:func:`cancel`), so no caller needs to know which.

Attempts: :func:`resume` continues a failed/cancelled run in its own folder from its last epoch
checkpoint (the metrics keep one history: finetune trims rows past the checkpoint, and a folder with
no checkpoint loses its partial rows before it starts over). :func:`restart` makes a *new* run folder
with the same config, ``attempt`` + 1 and ``parent`` = the old id, so every plot shows one attempt.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.io.run_folder import RunFolder, RunSpec
from core.runs.executors import executor_of, get_executor, require_executor
from core.runs.folders import (
    RunState,
    check_run_id,
    discard_partial_metrics,
    enqueue,
    read_status,
    run_dir,
    runs_root,
)
from core.runs.records import ACTIVE, FINAL, RunStatus, attempt_seconds, refresh, status
from core.runs.spec import ExecutorSpec, executor_spec, run_executor
from core.runs.worker import serve
from core.training.kinds import run_kind

__all__ = [
    "cancel",
    "create_run",
    "create_run_on",
    "restart",
    "resume",
    "run_job",
    "start",
    "submit",
    "submit_run",
    "wait",
]


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
    (:func:`create_run_on`)."""
    run_kind(kind)  # RunError for a kind there is no such run of
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
    fields: dict[str, Any] = {"executor": executor["name"]} if executor else {}
    try:
        RunFolder(run).write_spec(RunSpec(kind, config, executor))
        enqueue(run, kind=kind, attempt=attempt, parent=parent, **fields)
    except BaseException:  # a full disk: no half-made run folder is left to list
        shutil.rmtree(run, ignore_errors=True)
        raise
    return run


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

        config = check_settings(kind, config)
    return create_run(kind, config, run_id=run_id, executor=spec.to_dict())


def start(run_id: str | os.PathLike) -> int:
    """Start the run's worker as a detached background process; returns its pid."""
    run = run_dir(run_id)
    return executor_of(run).launch(run)


def submit(kind: str, config: dict[str, Any]) -> Path:
    """Create a run and start it in the background (it waits in the queue if a slot is busy)."""
    run = create_run(kind, config)
    start(run)
    return run


def submit_run(kind: str, config: dict[str, Any], spec: ExecutorSpec | None = None) -> Path:
    """Create a checked run on ``spec``'s executor and start it in the background.

    Every executor starts the usual detached worker; for ``ray`` that worker is the driver that owns
    the Ray task, so the run outlives the page or command that asked for it.
    """
    spec = require_executor(spec or executor_spec())
    run = create_run_on(kind, config, spec)
    start(run)
    return run


def run_job(run_id: str | os.PathLike) -> int:
    """Worker body: the run's executor drives it to its end; every ending is recorded. An exit code."""
    run = run_dir(run_id)
    return serve(run, get_executor(run_executor(RunFolder(run).read_spec())).drive)


def cancel(run_id: str | os.PathLike, *, force: bool = False, timeout: float = 0.0) -> RunStatus:
    """Ask a run to stop through its executor; returns its status.

    Waits up to ``timeout`` seconds for the worker process to be gone; the state is ``cancelled`` only
    then (until then :attr:`RunStatus.label` says ``cancelling``). A run whose worker is gone (or never
    started) is recorded as cancelled at once.
    """
    run = run_dir(run_id)
    if refresh(run).get("state") not in ACTIVE:
        return status(run)
    return executor_of(run).cancel(run, force=force, timeout=timeout)


def _final(run: Path, action: str) -> RunStatus:
    """The run's status, which must be final for ``action`` (RunError otherwise)."""
    current = status(run)
    if current.state not in FINAL:
        raise RunError(f"cannot {action} run {run.name}: it is still {current.label}")
    return current


def resume(run_id: str | os.PathLike, *, background: bool = True) -> RunStatus:
    """Continue a failed/cancelled run in its folder from its last epoch checkpoint (or from scratch)."""
    run = run_dir(run_id)
    if _final(run, "resume").state == RunState.DONE:
        raise RunError(f"run {run.name} is already done; 'jobs restart' runs it again")
    discard_partial_metrics(run)
    folder = RunFolder(run)
    folder.file(RunFolder.CANCEL).unlink(missing_ok=True)
    folder.file(RunFolder.SPAWN).unlink(missing_ok=True)
    raw = read_status(run)
    elapsed_before = float(raw.get("elapsed_before") or 0.0) + attempt_seconds(raw)
    enqueue(run, started_at=None, finished_at=None, elapsed_before=elapsed_before)
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
