"""One run folder on disk: the names of its files and their validated reads and atomic writes.

The only code that knows a run folder's file names. A run folder holds ``config.json`` (a
:class:`RunSpec`, written once when the run is created), ``status.json`` (merged under an ``flock``
on ``.status.lock`` so a worker and a canceller never overwrite each other's fields),
``metrics.jsonl`` (one JSON row per logged step or evaluation), ``result.json`` / ``results.json``
(a fine-tune's / a sweep's outcome), ``convexity.json``, ``pretrained_convexity.json``,
``benchmark_p<k>.json`` and ``p<k>/`` sub-folders (a sweep's points, each a run folder itself),
``epochs/e<k>/`` (each epoch's weights, when the run keeps them),
``state.pt`` (the training checkpoint), ``train.log`` / ``worker.out`` and the worker's
``spawn.json`` / ``cancel.request`` markers. Reads treat a missing, unreadable or malformed file as
absent (``None``), never as a crash: a killed writer leaves at most a torn last metrics row, which is
skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import RunError, StorageError
from core.io.atomic import atomic_write_bytes, atomic_write_json, is_staging
from core.io.leftovers import STALE_AFTER_S, clean_leftovers
from core.io.locks import exclusive

__all__ = ["RunFolder", "RunSpec", "RunState", "error_line", "result_summary", "stamp"]

MAX_JSON_BYTES = 64 << 20  # larger files in a run folder are not ours: read as missing
ERROR_CHARS = 300  # the longest error a run's status holds


def stamp() -> str:
    """Current UTC time as ISO text (the time stamps of status fields)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunState(StrEnum):
    """What a run is doing: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``.

    String-valued, so ``status.json`` holds the same text as ever and a state read back from it
    compares equal to its member; ``unknown`` is a folder without a readable status.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def active(self) -> bool:
        """Queued or running: a worker owns (or will own) the run."""
        return self in (RunState.QUEUED, RunState.RUNNING)

    @property
    def final(self) -> bool:
        """Done, failed or cancelled: nothing will change it but a resume or restart."""
        return self in (RunState.DONE, RunState.FAILED, RunState.CANCELLED)

    @classmethod
    def of(cls, value: Any) -> RunState:
        """The state a status document names (``unknown`` for anything else)."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


def error_line(exc: BaseException) -> str:
    """A failure as the run's status says it: its type and the first line of its message, at most
    ``ERROR_CHARS`` long (the whole traceback is in ``train.log``)."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if len(line) > ERROR_CHARS or len(text.splitlines()) > 1:
        line = line[: ERROR_CHARS - 30].rstrip() + " ... (train.log has the rest)"
    return line


@dataclass(frozen=True)
class RunSpec:
    """``config.json``: what a run is (``kind``), its settings and the executor that runs it."""

    kind: str
    config: Mapping[str, Any]
    executor: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``executor`` only when set)."""
        out: dict[str, Any] = {"kind": self.kind, "config": dict(self.config)}
        if self.executor is not None:
            out["executor"] = dict(self.executor)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> RunSpec | None:
        """The spec of a ``config.json`` document, or None when it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            return None
        config, executor = data.get("config", {}), data.get("executor")
        if not isinstance(config, dict) or not isinstance(executor, dict | None):
            return None
        return cls(kind=data["kind"], config=config, executor=executor)


def result_summary(result: Any) -> dict[str, Any]:
    """The scalar figures (and params/suggestion) of a run's result, kept in its ``status.json``."""
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result or {})
    return {
        k: v
        for k, v in data.items()
        if isinstance(v, int | float | str) or k in ("params", "suggested")
    }


def _read_json(path: Path) -> Any:
    """A JSON file's content, or None if missing, too large, unreadable or malformed."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class RunFolder:
    """A run's folder (or a sweep point's ``p<k>/`` inside one) and its files by name."""

    path: Path
    name: str = field(init=False)

    CONFIG = "config.json"
    STATUS = "status.json"
    METRICS = "metrics.jsonl"
    RESULT = "result.json"
    SWEEP_RESULTS = "results.json"
    SWEEP_RESULTS_CSV = "results.csv"
    BENCHMARK = "benchmark.json"
    BENCHMARK_CSV = "benchmark.csv"
    BEST_MODEL = "best"  # the best checkpoint's model folder (a fine-tune's)
    LAST_MODEL = "last"
    CONVEXITY = "convexity.json"
    PRETRAINED_CONVEXITY = "pretrained_convexity.json"
    CHECKPOINT = "state.pt"
    LOG = "train.log"
    WORKER_OUT = "worker.out"
    SPAWN = "spawn.json"
    CANCEL = "cancel.request"
    STATUS_LOCK = ".status.lock"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "name", self.path.name)

    def file(self, name: str) -> Path:
        """The path of one of the folder's files (``RunFolder.CONFIG`` ...)."""
        return self.path / name

    # ---------------------------------------------------------------------------------------------
    # config.json

    @property
    def exists(self) -> bool:
        """Whether this is a run folder (it has a ``config.json``)."""
        return self.file(self.CONFIG).is_file()

    def read_spec(self) -> RunSpec | None:
        """The run's :class:`RunSpec`, or None when ``config.json`` is missing or malformed."""
        return RunSpec.from_dict(_read_json(self.file(self.CONFIG)))

    def write_spec(self, spec: RunSpec) -> None:
        """Write ``config.json`` once: a run's settings never change after it is created."""
        path = self.file(self.CONFIG)
        if path.exists():
            raise RunError(f"run {self.name} already has its settings ({path})")
        atomic_write_json(path, spec.to_dict())

    def ensure_spec(self, spec: RunSpec) -> None:
        """Write ``config.json`` unless the folder has one already (a sweep point started before)."""
        if not self.file(self.CONFIG).exists():
            atomic_write_json(self.file(self.CONFIG), spec.to_dict())

    # ---------------------------------------------------------------------------------------------
    # status.json

    def read_status(self) -> dict[str, Any]:
        """The raw ``status.json`` fields (empty when there is none or it is malformed)."""
        data = _read_json(self.file(self.STATUS))
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def status_lock(self) -> Iterator[None]:
        """Exclusive lock for one read-modify-write of ``status.json``."""
        with exclusive(self.file(self.STATUS_LOCK)):
            yield

    def set_state(self, state: RunState, **fields: Any) -> dict[str, Any]:
        """The one way a run's state is written: ``state`` and ``fields`` merged into ``status.json``."""
        if not isinstance(state, RunState):
            raise TypeError(f"a run state is a RunState, not {state!r}")
        return self._merge_status({"state": state.value, **fields})

    def enqueue(self, **fields: Any) -> dict[str, Any]:
        """Move the run to ``queued`` now: no worker, no error, no cancel pending (``fields`` add to it)."""
        return self.set_state(
            RunState.QUEUED,
            **{
                "queued_at": time.time(),
                "pid": None,
                "pid_start": None,
                "error": None,
                "interrupted": False,
                "cancel_requested": False,
                **fields,
            },
        )

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` (never the state: :meth:`set_state`) into ``status.json``; the new status."""
        if "state" in fields:
            raise TypeError("a run's state is written by RunFolder.set_state")
        return self._merge_status(fields)

    def _merge_status(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``fields`` into ``status.json`` atomically and under the run's lock; the new status."""
        with self.status_lock():
            status = self.read_status()
            status.update(fields)
            status["updated_at"] = stamp()
            status["run_id"] = self.name
            status["resumable"] = self.has_checkpoint()
            atomic_write_json(self.file(self.STATUS), status)
        return status

    # ---------------------------------------------------------------------------------------------
    # metrics.jsonl

    def append_metric(self, row: Mapping[str, Any]) -> None:
        """Append one JSON row and flush it to disk (a watcher may read it any time)."""
        try:
            with open(self.file(self.METRICS), "a", encoding="utf-8") as fh:
                fh.write(json.dumps(dict(row)) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise StorageError(f"cannot write {self.file(self.METRICS)}: {exc.strerror}") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The rows of ``metrics.jsonl`` so far, as JSON objects (a torn or malformed line is
        skipped); each reader types the rows it reads (``core.runs.metrics``, the trajectory)."""
        try:
            text = self.file(self.METRICS).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return []
        rows = []
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a torn last line from a killed process
            if isinstance(row, dict):
                rows.append(row)
        return rows

    def keep_metrics(self, completed_epochs: int) -> None:
        """Drop the rows of epochs after ``completed_epochs`` (a resumed run redoes them)."""
        if not self.file(self.METRICS).exists():
            return
        keep = [json.dumps(r) for r in self.read_metrics() if _epoch(r) <= completed_epochs]
        data = ("\n".join(keep) + ("\n" if keep else "")).encode()
        atomic_write_bytes(self.file(self.METRICS), data)

    def discard_metrics(self) -> None:
        """Remove ``metrics.jsonl`` (a folder that starts over)."""
        self.file(self.METRICS).unlink(missing_ok=True)

    # ---------------------------------------------------------------------------------------------
    # results and other JSON documents

    def read_json(self, name: str) -> Any:
        """One of the folder's JSON documents (``RunFolder.RESULT`` ...), or None."""
        return _read_json(self.file(name))

    def write_json(self, name: str, obj: Any) -> None:
        """Write one of the folder's JSON documents atomically (StorageError when it cannot)."""
        atomic_write_json(self.file(name), obj)

    def read_result(self, name: str = RESULT) -> dict[str, Any] | None:
        """A finished run's result document ``name`` (its kind's result file), or None before."""
        data = self.read_json(name)
        return data if isinstance(data, dict) else None

    @staticmethod
    def benchmark_name(point: int | str, suffix: str = ".json") -> str:
        """The file name of a sweep's side-by-side benchmark at ``point`` (a prune point, or a plan's
        point name): ``benchmark_p<point>.json`` / ``.csv``."""
        return f"benchmark_p{point}{suffix}"

    def point_benchmarks(self) -> list[tuple[str, Path]]:
        """A sweep's saved side-by-side benchmarks: (point name, ``benchmark_p<point>.json``), by point."""
        found = []
        for path in self.path.glob("benchmark_p*.json"):
            name = path.stem.removeprefix("benchmark_p")
            if _point_name(name):
                found.append((name, path))
        return sorted(found, key=lambda t: _point_order(t[0]))

    # ---------------------------------------------------------------------------------------------
    # sweep points and checkpoints

    def point(self, point: int | str) -> RunFolder:
        """The sub-folder of a sweep's point: ``p<k>/`` for prune point k, ``p<plan key>/`` for a plan."""
        return RunFolder(self.path / f"p{point}")

    def points(self) -> list[RunFolder]:
        """The sweep point sub-folders: prune points by depth, then plans by key."""
        found = [p for p in self.path.glob("p*") if p.is_dir() and _point_name(p.name[1:])]
        return [RunFolder(p) for p in sorted(found, key=lambda p: _point_order(p.name[1:]))]

    def epoch_model(self, epoch: int) -> Path:
        """Where a run that keeps every epoch's weights saves those of ``epoch`` (``epochs/e<k>/``)."""
        return self.path / "epochs" / f"e{int(epoch)}"

    def saved_epochs(self) -> dict[int, Path]:
        """The epochs whose weights the run kept, by epoch (complete saves only)."""
        found = {}
        for d in (self.path / "epochs").glob("e*"):
            if d.name[1:].isdigit() and _saved_model(d):
                found[int(d.name[1:])] = d
        return dict(sorted(found.items()))

    def saved_models(self) -> dict[str, Path]:
        """The run's best and last checkpoints that are complete saves, by name."""
        names = (self.BEST_MODEL, self.LAST_MODEL)
        return {name: self.file(name) for name in names if _saved_model(self.file(name))}

    def has_checkpoint(self) -> bool:
        """Whether the run (or a sweep point of it) has a training checkpoint to resume from."""
        return self.file(self.CHECKPOINT).exists() or any(
            p.file(self.CHECKPOINT).exists() for p in self.points()
        )

    def clean_stale(self, min_age_s: float = STALE_AFTER_S) -> list[Path]:
        """Remove what dead writers left in the folder and its points: staging files and lock files
        nobody holds (the rule of :mod:`core.io.leftovers`); returns what went.

        Call it only for a finished run whose worker is gone: nobody else writes its files then.
        """
        removed = []
        for folder in [self, *self.points()]:
            removed += clean_leftovers(folder.path.glob(".*"), _staging_file, _lock_file, min_age_s)
        return removed

    def discard_partial_metrics(self) -> list[Path]:
        """Remove ``metrics.jsonl`` of folders that will start over (no checkpoint, no result).

        A resumed fine-tune trims its metrics to its checkpoint's epoch itself; one without a
        checkpoint starts again from step 1, so the lost attempt's rows must go or steps would repeat.
        """
        removed = []
        for folder in [self, *self.points()]:
            metrics = folder.file(self.METRICS)
            started_over = not folder.file(self.CHECKPOINT).exists()
            if metrics.exists() and started_over and not folder.file(self.RESULT).exists():
                metrics.unlink()
                removed.append(metrics)
        return removed


def _saved_model(folder: Path) -> bool:
    """Whether ``folder`` holds a complete ``save_pretrained`` model (its config is written with it)."""
    return folder.is_dir() and (folder / "config.json").is_file()


def _staging_file(path: Path) -> bool:
    """A writer's staging file in a run folder (not a link)."""
    return is_staging(path) and path.is_file() and not path.is_symlink()


def _lock_file(path: Path) -> bool:
    """A lock file in a run folder (not a link)."""
    return path.suffix == ".lock" and not path.is_symlink()


def _epoch(row: Mapping[str, Any]) -> int:
    """A metrics row's epoch (0 when it has none or it is not a number)."""
    try:
        return int(row.get("epoch", 0))
    except (TypeError, ValueError):
        return 0


def _point_name(name: str) -> bool:
    """Whether ``name`` names a sweep point: a prune point (digits) or a plan key (``L12-k1-2.5-12``)."""
    return name.isdigit() or re.fullmatch(r"L[0-9]+-k[0-9.\-]+", name) is not None


def _point_order(name: str) -> tuple[int, int, str]:
    """Sort key of sweep point names: prune points by depth, then plans by key."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)
