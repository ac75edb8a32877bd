"""What a run is doing, read from its folder: typed status, progress with time remaining, its result.

The state a caller sees is derived from the files *and* the live process: a run whose ``status.json``
says queued/running but whose worker is gone (checked through ``/proc/<pid>``: alive, not a zombie,
the same process start time or a command line naming the run, so a reused pid is not mistaken for it)
is recorded as ``failed`` with ``interrupted`` set. A cancel that the worker has not yet honoured
shows as ``cancelling`` in :attr:`RunStatus.label`, never as plain ``running``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import LabError
from core.io.processes import pid_alive
from core.io.records import Record
from core.io.run_folder import RunFolder
from core.models.plans import PruningPlan
from core.runs.folders import (
    RunState,
    read_metrics,
    read_status,
    run_dir,
    runs_root,
    set_state,
    stamp,
)
from core.runs.metrics import RunMetrics, metrics_of
from core.training.kinds import run_kind

if TYPE_CHECKING:
    from core.training.model_convexity import ConvexityComparison

__all__ = [
    "ACTIVE",
    "FINAL",
    "PROGRESS_VIEWS",
    "EpochEstimate",
    "PointProgress",
    "RunProgress",
    "RunStatus",
    "attempt_seconds",
    "convexity",
    "estimate_progress",
    "list_runs",
    "log_tail",
    "median_epoch_seconds",
    "progress",
    "result",
    "run_folders",
    "status",
    "status_from",
    "sweep_points",
]

ACTIVE = (RunState.QUEUED, RunState.RUNNING)
FINAL = (RunState.DONE, RunState.FAILED, RunState.CANCELLED)
STALE_AFTER_S = 3600.0  # a final run's lock and staging files this old belong to no live writer


@dataclass(frozen=True)
class RunStatus(Record):
    """One run as its folder and its live worker describe it (``state``: queued/running/done/failed/cancelled).

    ``attempt``/``parent``: a restart is a new run folder with ``attempt`` + 1 whose ``parent`` is the
    run it restarts; a resume continues the same folder (same attempt) from its last checkpoint.
    ``executor``: where it runs (``local``/``ray``); on Ray ``worker_pid``/``worker_host`` name the task's
    process (``attempt`` counts Ray's retries there) while ``pid`` is the driver on this host.
    """

    run_id: str
    kind: str = "unknown"
    state: str = "unknown"
    config: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    queued_at: float | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    epoch: int | None = None
    step: int | None = None
    error: str | None = None
    interrupted: bool = False
    resumable: bool = False
    cancel_requested: bool = False
    attempt: int = 1
    parent: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    last: dict[str, Any] | None = None
    executor: str = "local"
    worker_pid: int | None = None
    worker_host: str | None = None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in ACTIVE

    @property
    def label(self) -> str:
        """The state for display: ``cancelling`` while a requested cancel is pending."""
        return "cancelling" if self.active and self.cancel_requested else self.state

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``None`` ones too (what ``jobs status --json`` prints)."""
        return asdict(self)


@dataclass(frozen=True)
class RunProgress(Record):
    """Elapsed time and estimated time remaining of a run (seconds; None where nothing supports an estimate).

    ``elapsed_s`` adds up every attempt of the run (a resume continues it). ``seconds_per_epoch`` is the
    median of finished epochs' training time, else measured from the current epoch's logged steps;
    remaining times count training only, and are None during the final evaluation. ``phase``:
    training / evaluating / final evaluation / done; a benchmark's warm-up / timing / measuring memory,
    with its rounds (warm-up + timed repeats) in ``epoch``/``epochs``; ``queued`` while it waits for a
    job slot, ``queued_s`` then counting the seconds since it was queued.
    """

    run_id: str
    state: str
    elapsed_s: float | None = None
    queued_s: float | None = None
    epoch: int | None = None
    epochs: int | None = None
    epoch_fraction: float | None = None
    seconds_per_epoch: float | None = None
    epoch_remaining_s: float | None = None
    total_remaining_s: float | None = None
    phase: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Every field, ``None`` ones too (what ``jobs status --json`` prints)."""
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Liveness


def worker_alive(run: Path, raw: dict[str, Any]) -> bool:
    """Whether the run's worker (as it reported itself, else as start() spawned it) is running."""
    if raw.get("pid"):
        return pid_alive(raw.get("pid"), started=raw.get("pid_start"), command_has=run.name)
    spawned = RunFolder(run).read_json(RunFolder.SPAWN) or {}
    return pid_alive(spawned.get("pid"), command_has=run.name)


def refresh(run: Path) -> dict[str, Any]:
    """The raw status, with an active-looking run whose worker is gone recorded as failed/interrupted."""
    raw = read_status(run)
    if raw.get("state") not in ACTIVE:
        return raw
    if not raw.get("pid") and not RunFolder(run).file(RunFolder.SPAWN).exists():
        return raw  # created, never started: genuinely queued
    if worker_alive(run, raw):
        return raw
    raw = read_status(run)  # it may have finished between the two reads
    if raw.get("state") not in ACTIVE:
        return raw
    pid = raw.get("pid") or (RunFolder(run).read_json(RunFolder.SPAWN) or {}).get("pid")
    ending = {
        "interrupted": True,
        "error": f"interrupted: worker process {pid} is gone (killed or machine restarted)",
        "finished_at": stamp(),
    }
    try:
        return set_state(run, RunState.FAILED, **ending)
    except OSError:  # a full disk or a read-only cache: shown as it is, recorded by a later read
        return {**raw, **ending, "state": RunState.FAILED.value}


def status_from(run: Path, raw: dict[str, Any]) -> RunStatus:
    """RunStatus from a folder (a run, or a sweep point inside one) and its (refreshed) raw status."""
    folder = RunFolder(run)
    spec = folder.read_spec()
    data = {
        **raw,
        "run_id": run.name,
        "kind": raw.get("kind") or (spec.kind if spec is not None else "unknown"),
        "config": dict(spec.config) if spec is not None else {},
        "summary": raw.get("summary") or {},
        "cancel_requested": folder.file(RunFolder.CANCEL).exists()
        or bool(raw.get("cancel_requested")),
    }
    return RunStatus.from_dict(data)


# --------------------------------------------------------------------------------------------------
# Public reads


def status(run_id: str | os.PathLike) -> RunStatus:
    """The run's current status (a dead worker is noticed and recorded); RunError for a bad id."""
    run = run_dir(run_id)
    return status_from(run, refresh(run))


def run_folders() -> list[RunFolder]:
    """The run folders under the runs folder: real folders with settings; a stray file, a symbolic
    link or a folder without a readable ``config.json`` is skipped."""
    found = []
    for path in runs_root().iterdir():
        try:
            if path.name.startswith(".") or path.is_symlink() or not path.is_dir():
                continue
        except OSError:
            continue
        folder = RunFolder(path)
        if folder.read_spec() is not None:
            found.append(folder)
    return found


def list_runs() -> list[RunStatus]:
    """Every run under the runs folder, newest first (dead workers detected; stale lock and staging
    files of finished runs removed). A folder that cannot be read as a run is left out, never a crash."""
    out = []
    for folder in run_folders():
        try:
            current = status_from(folder.path, refresh(folder.path))
        except (LabError, OSError, TypeError, ValueError):
            continue  # a malformed status.json: not a run to list
        if current.state in FINAL and not worker_alive(folder.path, read_status(folder.path)):
            folder.clean_stale(STALE_AFTER_S)
        out.append(current)
    # by queue time: ids of one second sort by their random suffix, not by when they were made
    return sorted(out, key=lambda r: (r.queued_at or 0.0, r.run_id), reverse=True)


def result(run_id: str | os.PathLike) -> Record | None:
    """A finished run's typed result (its kind's result record: a ``FinetuneResult``, ``SweepResult``
    or ``BenchmarkResult``); None before, or when the document is not one."""
    folder = RunFolder(run_dir(run_id))
    spec = folder.read_spec()
    try:
        kind = run_kind(spec.kind if spec is not None else "finetune")
    except LabError:
        return None
    data = folder.read_result(kind.result_file)
    if data is None:
        return None
    try:
        return kind.result_type().from_dict(data)
    except (LabError, KeyError, TypeError, ValueError):
        return None


def convexity(run_id: str | os.PathLike) -> ConvexityComparison | None:
    """A finished fine-tune's pretrained vs fine-tuned convexity curves (``convexity.json``), or None.

    A file written before the split and clip count were recorded reads with ``split=""`` and
    ``n_clips=0`` (unknown)."""
    from core.training.model_convexity import ConvexityComparison

    data = RunFolder(run_dir(run_id)).read_json(RunFolder.CONVEXITY)
    if not isinstance(data, dict):
        return None
    try:
        return ConvexityComparison.from_dict({"split": "", "n_clips": 0, **data})
    except LabError:
        return None


def log_tail(run_id: str | os.PathLike, lines: int = 40) -> str:
    """The last ``lines`` lines of a run's ``train.log`` and ``worker.out`` (empty if none)."""
    folder = RunFolder(run_dir(run_id))
    parts = []
    for name in (RunFolder.LOG, RunFolder.WORKER_OUT):
        path = folder.file(name)
        if path.exists():
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            if text:
                parts.append(f"--- {name} ---\n" + "\n".join(text))
    return "\n".join(parts)


def _timestamp(iso: str | None) -> float | None:
    """Seconds since the epoch of an ISO time (None if absent or unreadable)."""
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


@dataclass(frozen=True)
class EpochEstimate(Record):
    """Where a fine-tune stands in its epochs, from its metric rows (see :func:`estimate_progress`)."""

    epoch: int
    epochs: int | None
    epoch_fraction: float
    seconds_per_epoch: float | None
    epoch_remaining_s: float | None
    total_remaining_s: float | None
    phase: str


def estimate_progress(
    metrics: RunMetrics, epochs: int | None, started: float | None, now: float
) -> EpochEstimate:
    """Current epoch, its fraction done, seconds per epoch, remaining time and phase from a run's
    typed metric rows.

    Seconds per epoch are the median of finished epochs' training time, else measured from the
    current epoch's logged steps (two training steps of this attempt at least: model loading before
    the first step is no basis for a rate). ``phase``: ``training``, ``evaluating`` (an epoch's steps
    are done, its evaluation is not) or ``final evaluation`` (every epoch is done; no time remaining
    is claimed for it). ``started`` is kept for callers; the estimate rests on the rows alone.
    """
    done_epochs = metrics.done_epochs
    train = metrics.train
    if train and train[-1].epoch > done_epochs:
        epoch, fraction = train[-1].epoch, float(train[-1].epoch_progress)
    else:
        epoch, fraction = done_epochs + 1, 0.0
    phase = "evaluating" if fraction >= 1.0 else "training"
    if epochs is not None and done_epochs >= epochs:
        epoch, fraction, phase = epochs, 1.0, "final evaluation"
    per_epoch = median_epoch_seconds(metrics)
    if per_epoch is None:
        attempt = [
            r
            for r in train
            if r.attempt == metrics.attempt and r.epoch == epoch and r.time is not None
        ]
        if len(attempt) >= 2:
            first, last = attempt[0], attempt[-1]
            gained = last.epoch_progress - first.epoch_progress
            if gained > 0 and first.time is not None and last.time is not None:
                per_epoch = max(0.0, last.time - first.time) / gained
    left = total = None
    if per_epoch is not None and phase != "final evaluation":
        left = per_epoch * (1.0 - fraction)
        if epochs is not None:
            total = left + max(0, epochs - epoch) * per_epoch
    return EpochEstimate(epoch, epochs, fraction, per_epoch, left, total, phase)


def median_epoch_seconds(metrics: RunMetrics) -> float | None:
    """Median training time of the finished epochs of a run, over every attempt (one median for the
    progress view and the run's facts); None before the first epoch ends."""
    timed = [r.epoch_seconds for r in metrics.evals if r.epoch_seconds is not None]
    return statistics.median(timed) if timed else None


def attempt_seconds(raw: dict[str, Any]) -> float:
    """Seconds the last attempt of a run ran (``started_at`` to ``finished_at``; 0 if it never started)."""
    start, end = _timestamp(raw.get("started_at")), _timestamp(raw.get("finished_at"))
    return max(0.0, end - start) if start is not None and end is not None else 0.0


def _benchmark_progress(last: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """Rounds done of a benchmark and the time left, from its last progress row (measured rounds only)."""
    last = last or {}
    done, total = int(last.get("done") or 0), int(last.get("total") or 0)
    out: dict[str, Any] = {"phase": str(last.get("phase") or "loading models")}
    if total:
        out.update(epoch=done, epochs=total, epoch_fraction=done / total)
        first, at = last.get("first_time"), last.get("time")
        if done >= 1 and first is not None and at is not None and done < total:
            per_round = (float(at) - float(first)) / done
            out["total_remaining_s"] = max(0.0, per_round * (total - done))
        if done >= total:
            out["phase"] = "measuring memory"
    return out


def progress(run_id: str | os.PathLike, *, now: float | None = None) -> RunProgress:
    """Elapsed time (over every attempt) and time remaining of a run.

    Fine-tunes: epochs and the time left (:func:`estimate_progress`); benchmarks: rounds done and the time
    left from measured rounds; sweeps: elapsed only (their points: :func:`sweep_points`).
    """
    current = status(run_id)
    raw = read_status(run_id)
    now = time.time() if now is None else now
    started = _timestamp(current.started_at)
    finished = _timestamp(current.finished_at) if not current.active else None
    before = float(raw.get("elapsed_before") or 0.0)
    # not started (yet, or again after a resume): what the earlier attempts ran
    ran = None if started is None else max(0.0, (finished or now) - started)
    elapsed = (before or None) if ran is None else before + ran
    base: dict[str, Any] = {"run_id": current.run_id, "state": current.state, "elapsed_s": elapsed}
    if current.state == RunState.DONE:
        base["phase"] = "done"
    if (
        current.state == RunState.QUEUED
    ):  # waiting for a job slot: nothing of the job itself has begun
        since = float(raw.get("queued_at") or now)
        return RunProgress(**base, queued_s=max(0.0, now - since), phase="queued")
    try:
        view = PROGRESS_VIEWS[run_kind(current.kind).view]
    except LabError:  # a folder of no kind known: its elapsed time only
        return RunProgress(**base)
    return view(current, raw, base, started, now)


def _elapsed_only(
    current: RunStatus, raw: dict[str, Any], base: dict[str, Any], started: float | None, now: float
) -> RunProgress:
    """A sweep's own progress: elapsed only (its points: :func:`sweep_points`)."""
    return RunProgress(**base)


def _rounds_progress(
    current: RunStatus, raw: dict[str, Any], base: dict[str, Any], started: float | None, now: float
) -> RunProgress:
    """A benchmark's rounds done and the time left while it runs."""
    if current.active:
        base = {**base, **_benchmark_progress(raw.get("last"), now)}
    return RunProgress(**base)


def _epochs_progress(
    current: RunStatus, raw: dict[str, Any], base: dict[str, Any], started: float | None, now: float
) -> RunProgress:
    """A fine-tune's epochs and time left (:func:`estimate_progress`)."""
    epochs = current.config.get("epochs")
    est = estimate_progress(metrics_of(read_metrics(current.run_id)), epochs, started, now)
    if current.state == RunState.DONE:
        est = replace(est, epoch_remaining_s=0.0, total_remaining_s=0.0, phase="done")
    elif not current.active:
        est = replace(est, epoch_remaining_s=None, total_remaining_s=None, phase=current.state)
    return RunProgress(**{**base, **asdict(est)})


ProgressView = Callable[
    [RunStatus, dict[str, Any], dict[str, Any], float | None, float], RunProgress
]
# each kind's view (core.training.kinds.VIEWS) of how its progress reads
PROGRESS_VIEWS: dict[str, ProgressView] = {
    "epochs": _epochs_progress,
    "points": _elapsed_only,
    "rounds": _rounds_progress,
}


@dataclass(frozen=True)
class PointProgress(Record):
    """One point of a sweep: its state, epoch, progress, time left and the accuracies it reported.

    ``prune_point`` is the depth the point keeps; ``plan`` its layers in words when a plan named them.
    """

    prune_point: int
    state: str  # done / training / evaluating / final evaluation / waiting
    epoch: int
    epochs: int
    fraction: float
    remaining_s: float | None
    validation_accuracy: float | None
    test_accuracy: float | None
    plan: str | None = None

    @property
    def point_label(self) -> str:
        """The point in words: its plan (``"drop 3-4"``) or ``"p = 8"``."""
        return self.plan or f"p = {self.prune_point}"


def _point_layers(sub: RunFolder, result: dict[str, Any] | None) -> tuple[int, str | None] | None:
    """A sweep point folder's depth and plan text, from its result, else its settings and name (None:
    a name no sweep writes)."""
    if result and result.get("prune_point") is not None:
        return int(result["prune_point"]), result.get("plan")
    name = sub.name[1:]
    spec = sub.read_spec()
    config = spec.config if spec is not None else {}
    plan = config.get("plan")
    if name.isdigit():
        return int(name), plan
    try:
        return PruningPlan.from_key(name).size, plan
    except LabError:
        return None


def sweep_points(run_id: str | os.PathLike, *, now: float | None = None) -> list[PointProgress]:
    """Progress of every prune point a sweep has started, shallowest first, by :func:`estimate_progress`."""
    run = run_dir(run_id)
    current = status(run_id)
    epochs = int(current.config.get("epochs") or 1)
    now = time.time() if now is None else now
    out = []
    for sub in RunFolder(run).points():
        result = sub.read_json(RunFolder.RESULT)
        layers = _point_layers(sub, result)
        if layers is None:
            continue
        metrics = metrics_of(sub.read_metrics())
        evals = metrics.evals
        est = estimate_progress(metrics, epochs, None, now)
        left: float | None
        if result:
            state, fraction, left = "done", 1.0, 0.0
        else:
            state = est.phase if current.active else current.state
            done_epochs = metrics.done_epochs
            fraction = min(1.0, (max(0, est.epoch - 1) + est.epoch_fraction) / epochs)
            fraction = max(fraction, done_epochs / epochs)
            left = est.total_remaining_s if current.active else None
        out.append(
            PointProgress(
                prune_point=layers[0],
                plan=layers[1],
                state=state,
                epoch=len(evals) if not result else epochs,
                epochs=epochs,
                fraction=float(fraction),
                remaining_s=left,
                validation_accuracy=evals[-1].accuracy if evals else None,
                test_accuracy=(result or {}).get("test_accuracy"),
            )
        )
    return out


def format_seconds(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min 05 s`` or ``42 s`` (``-`` when unknown); the CLI and the pages share it."""
    if seconds is None:
        return "-"
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"
