"""Run folders on disk: where they live, which ids are valid, and the raw files inside them.

Every run lives in ``cache_dir()/runs/<run-id>/``. A run id given by a user (CLI, page) is a plain
name, ``[A-Za-z0-9][A-Za-z0-9._-]*`` without ``..``, that exists there; a ``Path`` (what
:func:`core.runs.jobs.create_run` returns) must be a direct child of the runs folder. Anything else
raises :class:`~core.errors.RunError`, so no id can reach outside ``runs/``.

``status.json`` is read-modify-written under an ``flock`` on ``.status.lock`` so the worker and a
process that cancels or resumes it never overwrite each other's fields.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.io.atomic import atomic_write_json
from core.io.paths import cache_dir

__all__ = [
    "RUN_ID_PATTERN",
    "read_json",
    "read_metrics",
    "read_status",
    "run_dir",
    "runs_root",
    "stamp",
    "write_status",
]

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CHECKPOINT = "state.pt"  # the training-state checkpoint core.training.finetune writes


def runs_root() -> Path:
    """``cache_dir()/runs``, created if missing."""
    root = cache_dir() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a plain run id (no path parts); raises RunError otherwise."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise RunError(f"invalid run id {run_id!r}: expected a plain id as 'jobs list' shows it")
    return run_id


def run_dir(run_id: str | os.PathLike, *, must_exist: bool = True) -> Path:
    """The folder of a run: a plain id (``str``) or a folder (``Path``) directly under the runs folder."""
    root = runs_root()
    if isinstance(run_id, str):
        run = root / check_run_id(run_id)
    else:
        run = Path(run_id).resolve()
        if run.parent != root.resolve():
            raise RunError(f"{run} is not a run folder under {root}")
    if must_exist and not (run / "config.json").is_file():
        raise RunError(f"no run {run.name!r} under {root} (see 'python -m core jobs list')")
    return run


def stamp() -> str:
    """Current UTC time as ISO text."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content, or None if missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def read_status(run_id: str | os.PathLike) -> dict[str, Any]:
    """The run's raw ``status.json`` (``{"state": "unknown"}`` if it has none); see ``core.runs.status``."""
    return read_json(run_dir(run_id) / "status.json") or {"state": "unknown"}


@contextlib.contextmanager
def _status_lock(run: Path) -> Iterator[None]:
    """Exclusive lock for one read-modify-write of ``status.json``."""
    fd = os.open(run / ".status.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def has_checkpoint(run: Path) -> bool:
    """Whether the run (or a sweep point of it) has a training-state checkpoint to resume from."""
    return (run / CHECKPOINT).exists() or any(run.glob(f"p*/{CHECKPOINT}"))


def write_status(run: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``status.json`` atomically and under the run's lock; returns the new status."""
    with _status_lock(run):
        status = read_json(run / "status.json") or {}
        status.update(fields)
        status["updated_at"] = stamp()
        status["run_id"] = run.name
        status["resumable"] = has_checkpoint(run)
        atomic_write_json(run / "status.json", status)
    return status


def read_metrics(run_id: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of the run's ``metrics.jsonl`` so far (a torn last line is skipped)."""
    return read_metrics_file(run_dir(run_id) / "metrics.jsonl")


def read_metrics_file(path: Path) -> list[dict[str, Any]]:
    """The rows of one ``metrics.jsonl`` (e.g. a sweep point's, inside a validated run folder)."""
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a killed process
    return rows


def discard_partial_metrics(run: Path) -> list[Path]:
    """Remove ``metrics.jsonl`` of folders that will start over (no checkpoint, no result); returns them.

    A resumed fine-tune trims its metrics to its checkpoint's epoch itself; one without a checkpoint
    starts again from step 1, so the rows of the lost attempt must go or the history would repeat steps.
    """
    removed = []
    for folder in [run, *sorted(p for p in run.glob("p*") if p.is_dir())]:
        metrics = folder / "metrics.jsonl"
        done = (folder / "result.json").exists()
        if metrics.exists() and not (folder / CHECKPOINT).exists() and not done:
            metrics.unlink()
            removed.append(metrics)
    return removed
