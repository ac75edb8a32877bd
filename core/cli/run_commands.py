"""Commands about runs: ``finetune``, ``sweep``, ``benchmark`` and ``jobs list|status|watch|cancel|resume|restart``.

``finetune`` and ``sweep`` take every field of their config dataclass as an option (see
:mod:`core.cli.options`); they run in the foreground (progress lines on stderr, the result on stdout)
or, with ``--background``, queue a worker and print its run id. ``jobs run-job RUN`` is the worker's
own entry point (what :func:`core.runs.lifecycle.start` spawns).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from core.cli.options import (
    common_options,
    config_from_args,
    config_options,
    executor_from_args,
    executor_options,
    out_path,
)
from core.cli.output import text_table
from core.errors import CliError
from core.io.atomic import atomic_write_bytes
from core.runs.records import format_seconds
from core.training.configs import PAPER_RECIPE

__all__ = ["register"]


def _print_json(obj: Any) -> None:
    """Indented JSON on stdout."""
    print(json.dumps(obj, indent=2, default=str))


def _launch(kind: str, config: Any, args: argparse.Namespace) -> int:
    """Create a run on the chosen executor; start it in the background or drive it here; print it."""
    from core.runs import lifecycle, records
    from core.runs.executors import require_executor
    from core.runs.lifecycle import create_run_on

    spec = require_executor(executor_from_args(args))
    run = create_run_on(kind, config.to_dict(), spec)
    background = args.background
    print(f"run {run.name} ({spec.name}): {run}")
    if background:
        pid = lifecycle.start(run)
        print(f"started in the background (pid {pid}); watch: python -m core jobs watch {run.name}")
        return 0
    code = lifecycle.run_job(run)
    status = records.status(run)
    print(f"{status.state}: {status.error or ''}".strip())
    result = records.result(run)
    if result is not None:
        _print_json(result.to_dict() if hasattr(result, "to_dict") else result)
    return code


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune one full or pruned model as a run."""
    from core.training.configs import FinetuneConfig

    preset = PAPER_RECIPE if args.paper else None
    return _launch("finetune", config_from_args(FinetuneConfig, args, preset), args)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Fine-tune at several prune points (and plans) and suggest one, as a run."""
    from core.training.configs import SweepConfig

    preset = PAPER_RECIPE if args.paper else None
    cfg = config_from_args(SweepConfig, args, preset)
    if args.plans:
        cfg.points = [*cfg.points, *args.plans]
    return _launch("sweep", cfg, args)


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Full vs pruned cost table (and optionally its files), with the settings the page's job uses."""
    from core.training.benchmark import benchmark_rows, run_benchmark, save_benchmark
    from core.training.configs import BenchmarkConfig
    from core.training.settings import check_settings

    cfg = config_from_args(BenchmarkConfig, args)
    check_settings("benchmark", cfg.to_dict())  # settings and prune point before any measuring
    res = run_benchmark(cfg)
    print(benchmark_rows(res))
    if args.out:
        for path in save_benchmark(res, args.out):
            print(f"wrote {path}")
    return 0


def _progress_line(run_id: str) -> str:
    """One line: state, epoch, elapsed and remaining time of a run."""
    from core.runs import records
    from core.runs.folders import RunState
    from core.runs.queue import queue_place

    pr = records.progress(run_id)
    status = records.status(run_id)
    parts = [f"{run_id}: {status.label}"]
    if pr.epoch is not None and pr.epochs:
        parts.append(f"epoch {pr.epoch}/{pr.epochs} ({100 * (pr.epoch_fraction or 0):.0f}%)")
    parts.append(f"elapsed {format_seconds(pr.elapsed_s)}")
    place = queue_place(run_id) if status.state == RunState.QUEUED else None
    if place is not None:
        parts.append(f"queued {place.where()}")
    elif status.active and pr.phase == "final evaluation":
        parts.append("final evaluation...")
    elif status.active:
        parts.append(f"epoch left {format_seconds(pr.epoch_remaining_s)}")
        parts.append(f"total left {format_seconds(pr.total_remaining_s)}")
    if status.error:
        parts.append(status.error)
    return ", ".join(parts)


def cmd_jobs_list(args: argparse.Namespace) -> int:
    """Every run, newest first."""
    from core.runs import records

    rows = []
    for r in records.list_runs():
        p = r.config.get("plan") or r.config.get("prune_point")
        rows.append(
            [
                r.run_id,
                r.label,
                r.kind,
                r.epoch or "-",
                r.config.get("task", ""),
                "full" if p is None else p,
                r.attempt,
                "yes" if r.resumable else "no",
                r.executor,
                r.error or "",
            ]
        )
    header = ["run", "state", "kind", "epoch", "task", "p", "attempt", "resumable", "on", "error"]
    print(text_table(rows, header) if rows else "no runs yet")
    return 0


def cmd_jobs_status(args: argparse.Namespace) -> int:
    """One run's status, progress, place in the queue and last metric rows as JSON."""
    from core.runs import records
    from core.runs.queue import queue_place

    doc = records.status(args.run).to_dict()
    doc["progress"] = records.progress(args.run).to_dict()
    place = queue_place(args.run)
    doc["queue"] = place.to_dict() if place is not None else None
    doc["metrics_tail"] = records.read_metrics(args.run)[-3:]
    _print_json(doc)
    return 0


def _new_curve_lines(run_id: str, shown: set[tuple[str, int, int]]) -> list[str]:
    """A line per convexity point the run (or a sweep point of it) measured since the last call."""
    from core.runs import run_dir
    from core.training.trajectory import describe, run_trajectories

    lines = []
    for name, traj in run_trajectories(run_dir(run_id)).items():
        for point in traj.points:
            if (name, point.epoch, point.step) not in shown:
                shown.add((name, point.epoch, point.step))
                lines.append(f"  convexity {name + ' ' if name else ''}{describe(point)}")
    return lines


def cmd_jobs_watch(args: argparse.Namespace) -> int:
    """Print a progress line whenever it changes, and each convexity curve the run measures while it
    trains, until the run is final; exit 0 only if it is done."""
    from core.runs import records
    from core.runs.folders import RunState

    last = None
    shown: set[tuple[str, int, int]] = set()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while True:
        line = _progress_line(args.run)
        if line != last:
            print(line, flush=True)
            last = line
        for curve_line in _new_curve_lines(args.run, shown):
            print(curve_line, flush=True)
        status = records.status(args.run)
        if not status.active:
            return 0 if status.state == RunState.DONE else 1
        if deadline is not None and time.monotonic() > deadline:
            return 1
        time.sleep(args.interval)


def cmd_jobs_trajectory(args: argparse.Namespace) -> int:
    """The convexity a run measured while it trained: one line per point, or a CSV/JSON export."""
    from core.runs import run_dir
    from core.training.trajectory import describe, run_about, run_trajectories, trajectory_csv

    out = out_path(args.out, (".csv", ".json"))
    run = run_dir(args.run)
    found = run_trajectories(run)
    if not found:
        raise CliError(f"run {args.run} measured no convexity while training (yet)")
    for name, traj in found.items():
        for point in traj.points:
            print(f"{name + ' ' if name else ''}{describe(point)}")
    if out is not None:
        folders = {name: run / name if name else run for name in found}
        if out.suffix.lower() == ".csv":
            text = "".join(trajectory_csv(t, run_about(folders[n])) for n, t in found.items())
        else:
            doc = {
                n or "run": {
                    "about": run_about(folders[n]),
                    "points": [p.to_dict() for p in t.points],
                }
                for n, t in found.items()
            }
            text = json.dumps(doc, indent=2)
        atomic_write_bytes(out, text.encode())
        print(f"wrote {out}")
    return 0


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    """Cancel a run (SIGTERM, or SIGKILL with --force), wait out its grace, print its status."""
    from core.runs import lifecycle, worker

    _print_json(
        lifecycle.cancel(args.run, force=args.force, timeout=worker.cancel_wait()).to_dict()
    )
    return 0


def _report_attempt(status: Any, args: argparse.Namespace) -> int:
    """Print a resumed or restarted run's status; in the foreground its ending is the exit code (1 when
    it failed; its worker logged the error in one line)."""
    from core.runs.folders import RunState

    _print_json(status.to_dict())
    return 0 if not args.foreground or status.state in (RunState.DONE, RunState.CANCELLED) else 1


def cmd_jobs_resume(args: argparse.Namespace) -> int:
    """Continue a failed/cancelled run from its last checkpoint, in its own folder."""
    from core.runs import lifecycle

    return _report_attempt(lifecycle.resume(args.run, background=not args.foreground), args)


def cmd_jobs_restart(args: argparse.Namespace) -> int:
    """Run a run again from scratch as a new attempt (a new run folder linked to the old one)."""
    from core.runs import lifecycle

    return _report_attempt(lifecycle.restart(args.run, background=not args.foreground), args)


def cmd_run_job(args: argparse.Namespace) -> int:
    """The background worker's body (spawned by ``core.runs.lifecycle.start``)."""
    from core.runs import lifecycle

    return lifecycle.run_job(args.run)


def _launch_options(p: argparse.ArgumentParser) -> None:
    """``--background``, ``--paper`` and where the run executes, shared by finetune and sweep."""
    executor_options(p)
    p.add_argument("--background", action="store_true", help="queue as a background job")
    p.add_argument(
        "--paper",
        action="store_true",
        help="the paper's recipe: Speech Commands, 20 epochs, batch 32, lr 3e-5, best on validation, "
        "scored on test (options given explicitly still win; a GPU is advised)",
    )


def _register_jobs(sub: argparse._SubParsersAction) -> None:
    """``jobs`` and its actions."""
    p = sub.add_parser(
        "jobs", help="list, watch, cancel, resume or restart runs (also after a reboot)"
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("list", parents=[common_options()], help="every run, newest first")
    a.set_defaults(func=cmd_jobs_list)
    specs = [
        ("status", cmd_jobs_status, "status, progress and last metrics of a run (JSON)"),
        ("watch", cmd_jobs_watch, "progress lines until the run ends (exit 0 if done)"),
        ("trajectory", cmd_jobs_trajectory, "convexity measured while the run trained"),
        ("cancel", cmd_jobs_cancel, "stop a run"),
        ("resume", cmd_jobs_resume, "continue a failed/cancelled run from its last checkpoint"),
        ("restart", cmd_jobs_restart, "run it again from scratch as a new attempt (new run id)"),
    ]
    for name, func, text in specs:
        a = actions.add_parser(name, parents=[common_options()], help=text)
        a.add_argument("run", help="run id (see 'jobs list')")
        a.set_defaults(func=func)
        if name == "watch":
            a.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
            a.add_argument("--timeout", type=float, default=None, help="give up after seconds")
        if name == "cancel":
            a.add_argument("--force", action="store_true", help="SIGKILL instead of SIGTERM")
        if name == "trajectory":
            a.add_argument("--out", help="write the points to FILE.csv or FILE.json")
        if name in ("resume", "restart"):
            a.add_argument("--foreground", action="store_true", help="run in this process")
    a = actions.add_parser("run-job", parents=[common_options()], help="(internal) worker body")
    a.add_argument("run", help="run id")
    a.set_defaults(func=cmd_run_job)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``finetune``, ``sweep``, ``benchmark`` and ``jobs``."""
    from core.training.configs import BenchmarkConfig, FinetuneConfig, SweepConfig

    p = sub.add_parser(
        "finetune",
        parents=[common_options()],
        help="fine-tune a full or pruned model as a run (add --background to queue it)",
    )
    config_options(p, FinetuneConfig, aliases={"prune_point": ["--prune"]})
    _launch_options(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser(
        "sweep",
        parents=[common_options()],
        help="fine-tune and benchmark several prune points; suggests one from convexity",
    )
    config_options(p, SweepConfig, exclude=("prune_point", "plan"))
    p.add_argument(
        "--plan",
        dest="plans",
        action="append",
        default=[],
        metavar="PLAN",
        help="also fine-tune this pruning plan: 'drop 3-4' or 'keep 1-2, 5-12' (repeatable)",
    )
    _launch_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "benchmark",
        parents=[common_options()],
        help="full vs pruned: parameters, training step, latency, throughput, memory",
    )
    config_options(
        p, BenchmarkConfig, aliases={"prune_point": ["--prune"], "n_labels": ["--labels"]}
    )
    p.add_argument("--out", default=None, help="folder for benchmark.json/.csv")
    p.set_defaults(func=cmd_benchmark)

    _register_jobs(sub)
