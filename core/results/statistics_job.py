"""Curve statistics as a detached worker process: started by the dashboard, cancellable, with progress.

The dashboard's server must stay responsive while minutes of compiled work run, and the work must run
as fast as ``python -m core convexity --chance K --resamples R`` does: so it runs in its own process
(``python -m core.results.statistics_job DIR``, own session, no GIL shared with the server), through
the same ``statistics_entry`` call as the CLI, into the same results store. The job folder
``<cache>/jobs/statistics/<id>/`` holds ``spec.json`` (what to compute), ``status.json`` (state,
cost-weighted progress, one-line error, the pid and the session that asked) and ``worker.log``.
Cancel sends SIGTERM to the worker's process group; the store only ever holds complete entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import ConvexityInputError, LabError
from core.geometry.curve_statistics import statistics_plan
from core.geometry.options import (
    DEFAULT_OPTIONS,
    DEFAULT_STATISTICS,
    ConvexityOptions,
    StatisticsOptions,
)
from core.geometry.resampling import check_half_sampling, design_groups
from core.io.atomic import atomic_write_json
from core.io.paths import REPO_ROOT, cache_dir
from core.io.processes import pid_alive
from core.io.records import Record

__all__ = [
    "StatisticsJob",
    "JobStatus",
    "StatisticsChoice",
    "statistics_choice",
    "start_job",
    "read_job",
    "cancel_job",
    "run_job",
    "format_seconds",
]

WRITE_EVERY_S = 0.5  # the worker writes its progress at most this often
ACTIVE = ("starting", "running")


def format_seconds(s: float) -> str:
    """'42 s' or '3 min 05 s'."""
    s = max(0.0, float(s))
    return f"{s:.0f} s" if s < 90 else f"{int(s // 60)} min {int(s % 60):02d} s"


@dataclass(frozen=True)
class StatisticsJob(Record):
    """What one job computes: ``statistics_entry(feature set, names, convexity, options)``."""

    feature_key: str
    names: tuple[str, ...]
    options: StatisticsOptions = DEFAULT_STATISTICS  # permutations, resamples, seeds, level
    convexity: ConvexityOptions = DEFAULT_OPTIONS  # how every curve is estimated

    @property
    def job_id(self) -> str:
        """A short id fixed by the request, so every session finds the same job."""
        request = [
            self.feature_key,
            list(self.names),
            self.options.key_fields(),
            self.convexity.to_dict(),
        ]
        text = json.dumps(request, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def folder(self) -> Path:
        """The job's folder under the cache."""
        return cache_dir() / "jobs" / "statistics" / self.job_id


@dataclass(frozen=True)
class JobStatus(Record):
    """A job's state as its worker (or a cancel) last wrote it."""

    state: str  # starting, running, done, failed, cancelled
    owner: str = ""  # the session that started it (errors are shown to it only)
    pid: int = 0
    started: float = 0.0  # wall clock (time.time()) at start
    updated: float = 0.0
    units_done: float = 0.0  # cost-weighted work (StatisticsPlan units)
    units_total: float = 0.0
    error: str = ""
    seconds: float = 0.0  # the whole computation, when done
    computing_since: float = 0.0  # wall clock once the features are loaded (the rate's start)

    @property
    def active(self) -> bool:
        """Whether the worker is starting or running."""
        return self.state in ACTIVE

    def fraction(self) -> float:
        """Share of the weighted work done, 0..1."""
        return min(1.0, self.units_done / self.units_total) if self.units_total else 0.0

    def remaining_s(self, now: float | None = None) -> float | None:
        """Seconds left at the measured seconds per unit of work so far (None before a step)."""
        if not self.units_done or not self.units_total:
            return None
        elapsed = (time.time() if now is None else now) - (self.computing_since or self.started)
        return elapsed * (self.units_total - self.units_done) / self.units_done

    def text(self, now: float | None = None) -> str:
        """'35 % of the work, 12 s so far, about 22 s left' (time left from the measured rate)."""
        elapsed = max(0.0, (time.time() if now is None else now) - self.started)
        left = self.remaining_s(now)
        out = f"{self.fraction():.0%} of the work, {format_seconds(elapsed)} so far"
        return out + (f", about {format_seconds(left)} left" if left is not None else ", measuring")


@dataclass(frozen=True)
class StatisticsChoice(Record):
    """What the dashboard asks for on one feature set: the options it can answer and, per part it
    cannot, one line saying why (e.g. too few speakers for a population interval)."""

    options: StatisticsOptions
    missing: dict[str, str] = field(default_factory=dict)
    units: float = 0.0  # the work, in real-curve layers (StatisticsPlan)
    n_layers: int = 0

    def estimate_s(self, curve_seconds: float | None) -> float | None:
        """Expected seconds from the real curves' own measured seconds (None if unknown)."""
        if not curve_seconds or not self.n_layers:
            return None
        return self.units * curve_seconds / self.n_layers


def statistics_choice(
    fs: Any, names: tuple[str, ...], options: StatisticsOptions
) -> StatisticsChoice:
    """``options`` less what this feature set cannot give: without enough units per class for
    half-samples the interval is left out (``n_resamples`` 0) and the chance level still computed."""
    from core.results.kinds import resample_units

    units = resample_units(fs, names)
    missing: dict[str, str] = {}
    for name in names:
        if not options.n_resamples:
            break
        try:
            check_half_sampling(list(fs.labels(name)), units[name], options.n_resamples, name)
        except ConvexityInputError as exc:
            missing[name] = f"no population interval or half-sample stability: {exc}"
    chosen = options.with_(n_resamples=0) if missing else options
    n_layers = int(fs.features.shape[1])
    n_designs = len(design_groups(list(names), units)) if chosen.n_resamples else 0
    plan = statistics_plan(
        n_layers, chosen.n_permutations, chosen.n_resamples, chosen.n_seeds, n_designs
    )
    return StatisticsChoice(chosen, missing, plan.units, n_layers)


def _status_path(job: StatisticsJob) -> Path:
    return job.folder / "status.json"


def _write_status(job: StatisticsJob, status: JobStatus) -> None:
    atomic_write_json(_status_path(job), status.to_dict())


def read_job(job: StatisticsJob) -> JobStatus | None:
    """The job's status, or None if it never started; a worker that died unannounced reads as
    failed, with where its log is."""
    try:
        status = JobStatus.from_dict(json.loads(_status_path(job).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if status.active and status.pid and not pid_alive(status.pid):
        return replace(
            status,
            state="failed",
            error=f"the worker stopped without a result (log: {job.folder / 'worker.log'})",
        )
    return status


def start_job(job: StatisticsJob, owner: str) -> JobStatus:
    """Start the job's worker unless one is already running (then that one's status)."""
    running = read_job(job)
    if running is not None and running.active:
        return running
    job.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job.folder / "spec.json", job.to_dict())
    status = JobStatus("starting", owner=owner, started=time.time(), updated=time.time())
    _write_status(job, status)
    log = (job.folder / "worker.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.results.statistics_job", str(job.folder)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: survives the page, and a cancel reaches it whole
        env={**os.environ, "CONVEXITY_LAB_CACHE": str(cache_dir())},
    )
    log.close()
    threading.Thread(target=proc.wait, daemon=True, name="statistics-reaper").start()
    status = replace(status, pid=proc.pid)
    current = read_job(job)
    if current is None or current.state == "starting":  # the worker may have written already
        _write_status(job, status)
    return status


def cancel_job(job: StatisticsJob) -> JobStatus | None:
    """Stop the job's worker (SIGTERM to its group) and record it as cancelled."""
    status = read_job(job)
    if status is None or not status.active:
        return status
    if status.pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(status.pid, signal.SIGTERM)
    cancelled = replace(status, state="cancelled", updated=time.time())
    _write_status(job, cancelled)
    return cancelled


def run_job(folder: Path) -> int:
    """The worker: compute the job in ``folder`` into the results store, reporting progress."""
    from core.data.features import load_cached_features
    from core.results.kinds import statistics_entry

    job = StatisticsJob.from_dict(json.loads((folder / "spec.json").read_text()))
    if job.folder.resolve() != folder.resolve():
        print(f"job folder {folder} does not match its spec ({job.folder})", file=sys.stderr)
        return 2
    first = read_job(job) or JobStatus("starting")
    status = replace(first, state="running", pid=os.getpid(), started=time.time())
    _write_status(job, status)
    last = [0.0]

    def on_units(done: float, total: float) -> None:
        nonlocal status
        status = replace(status, units_done=done, units_total=total, updated=time.time())
        if time.monotonic() - last[0] >= WRITE_EVERY_S or done >= total:
            last[0] = time.monotonic()
            _write_status(job, status)

    t0 = time.perf_counter()
    try:
        fs = load_cached_features(job.feature_key)
        status = replace(status, computing_since=time.time())
        statistics_entry(fs, list(job.names), job.convexity, job.options, on_units=on_units)
    except LabError as exc:
        _write_status(job, replace(status, state="failed", error=" ".join(str(exc).split())))
        return 2
    except BaseException as exc:  # a bug: the traceback goes to worker.log, one line to the page
        _write_status(
            job,
            replace(status, state="failed", error=f"{type(exc).__name__}: {exc} (see worker.log)"),
        )
        raise
    _write_status(
        job, replace(status, state="done", updated=time.time(), seconds=time.perf_counter() - t0)
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))
