"""Run folders on disk: where they live and which ids are valid; their files through ``RunFolder``.

Every run lives in ``cache_dir()/runs/<run-id>/``. A run id given by a user (CLI, page) is a plain
name, ``[A-Za-z0-9][A-Za-z0-9._-]*`` without ``..``, that exists there; a ``Path`` (what
:func:`core.runs.lifecycle.create_run` returns) must be a direct child of the runs folder. Anything else
raises :class:`~core.errors.RunError`, so no id can reach outside ``runs/``.

The files inside a run folder (names, locked status merges, metrics) are
:class:`core.io.run_folder.RunFolder`'s; the functions here take run ids or folders for it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.io.paths import cache_subdir
from core.io.run_folder import RunFolder, RunState, stamp

__all__ = [
    "RUN_ID_PATTERN",
    "check_run_id",
    "RunState",
    "discard_partial_metrics",
    "enqueue",
    "has_checkpoint",
    "read_metrics",
    "read_metrics_file",
    "read_status",
    "run_dir",
    "runs_root",
    "set_state",
    "stamp",
    "write_status",
]

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")  # a folder name: at most 200


def runs_root() -> Path:
    """``cache_dir()/runs``, created if missing (StorageError where it cannot be)."""
    return cache_subdir("runs")


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
    if must_exist and not RunFolder(run).exists:
        raise RunError(f"no run {run.name!r} under {root} (see 'python -m core jobs list')")
    return run


def read_status(run_id: str | os.PathLike) -> dict[str, Any]:
    """The run's raw ``status.json`` (``{"state": "unknown"}`` if it has none); see ``core.runs.status``."""
    return RunFolder(run_dir(run_id)).read_status() or {"state": "unknown"}


def has_checkpoint(run: Path) -> bool:
    """Whether the run (or a sweep point of it) has a training-state checkpoint to resume from."""
    return RunFolder(run).has_checkpoint()


def write_status(run: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` (not the state: :func:`set_state`) into ``status.json`` atomically and under
    the run's lock; returns the new status."""
    return RunFolder(run).update_status(**fields)


def set_state(run: Path, state: RunState, **fields: Any) -> dict[str, Any]:
    """Move the run to ``state`` with ``fields`` (the one transition every writer goes through)."""
    return RunFolder(run).set_state(state, **fields)


def enqueue(run: Path, **fields: Any) -> dict[str, Any]:
    """Move the run to ``queued`` now (created, resumed, re-queued, submitted): see RunFolder.enqueue."""
    return RunFolder(run).enqueue(**fields)


def read_metrics(run_id: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of the run's ``metrics.jsonl`` so far (a torn last line is skipped)."""
    return RunFolder(run_dir(run_id)).read_metrics()


def read_metrics_file(path: Path) -> list[dict[str, Any]]:
    """The rows of one ``metrics.jsonl`` (e.g. a sweep point's, inside a validated run folder)."""
    return RunFolder(Path(path).parent).read_metrics()


def discard_partial_metrics(run: Path) -> list[Path]:
    """Remove ``metrics.jsonl`` of folders that will start over (no checkpoint, no result); returns them."""
    return RunFolder(run).discard_partial_metrics()
