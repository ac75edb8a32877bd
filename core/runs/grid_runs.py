"""Running a :class:`~core.training.grid.GridSpec` on an executor: suggestions, cells, benchmarks, table.

Every cell is an ordinary run folder ``runs/<grid_id>-<model>-<task>-p<k>-s<seed>/`` (kind
``finetune``), so cells show up in ``jobs list`` and the dashboard's run list whichever executor ran
them. Resumable: a cell whose run is ``done`` (with ``result.json``) is skipped; any other existing
cell is queued again and resumes from its epoch checkpoint. Per-(model, task) suggestions and the
benchmarks are kept under ``results/grid/<grid_id>/`` and reused on the next call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.io.atomic import atomic_write_json
from core.io.processes import pid_alive
from core.io.run_folder import RunFolder
from core.runs.executors import Executor
from core.runs.folders import RunState, enqueue, read_status, run_dir, runs_root
from core.runs.lifecycle import create_run_on
from core.runs.records import ACTIVE
from core.runs.spec import ExecutorSpec
from core.training.grid import (
    GridSpec,
    GridTable,
    benchmark_cell,
    check_plans,
    grid_root,
    grid_table,
    guarded,
    model_slug,
    plan_cells,
    suggestion,
    write_grid_table,
)

__all__ = ["run_grid"]

Say = Callable[[str], None]


def _read(path: Path) -> dict[str, Any] | None:
    """A JSON file, or None when missing/unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _suggestions(spec: GridSpec, executor: Executor, folder: Path, say: Say) -> dict:
    """Pretrained convexity + suggested point per (model, task): from disk, else computed in parallel.

    A pair whose computation fails gives ``{"error": ...}`` (kept in memory only: the next run tries it
    again) and fails only the cells that need it.
    """
    pairs = [(m, t) for m in spec.models for t in spec.tasks]
    path = {p: folder / f"suggest-{model_slug(p[0])}-{p[1]}.json" for p in pairs}
    found = {p: _read(path[p]) for p in pairs}
    missing = [p for p in pairs if found[p] is None]
    if missing:
        say(f"pretrained convexity of {len(missing)} (model, task) pair(s) on {executor.name}")
        calls = [(suggestion, spec, *p) for p in missing]
        for p, sug in zip(missing, executor.map(guarded, calls, gpu=True), strict=True):
            if sug.get("error"):
                say(f"  {p[0]} / {p[1]}: suggestion failed: {sug['error']}")
            else:
                atomic_write_json(path[p], sug)
            found[p] = sug
    return found


def _prepare_cell(run: Path, cfg: dict[str, Any], run_id: str, espec: ExecutorSpec) -> bool:
    """Create or re-queue a cell's run folder; False when it is already done.

    An existing cell keeps its settings (``config.json`` is written once): it resumes as it began.
    """
    folder = RunFolder(run)
    if not folder.exists:
        create_run_on("finetune", cfg, espec, run_id=run_id, check=False)  # fails alone
        return True
    status = read_status(run)
    if status.get("state") == RunState.DONE and folder.file(RunFolder.RESULT).exists():
        return False
    if status.get("state") in ACTIVE and pid_alive(
        status.get("pid"), started=status.get("pid_start"), command_has=run.name
    ):
        raise RunError(
            f"cell {run.name} is being run by pid {status.get('pid')}; wait or cancel it"
        )
    enqueue(run, executor=espec.name)
    return True


def _benchmarks(spec: GridSpec, executor: Executor, cells: list, folder: Path, say: Say) -> dict:
    """Full-vs-pruned cost per (model, task, pruned point), measured once each and kept on disk."""
    out: dict[tuple[str, str, int | str], Any] = {}
    todo = []
    for c in cells:
        key = (c.model, c.task, c.layers)
        if c.error is not None or not c.pruned:
            continue
        result = RunFolder(run_dir(c.run_id)).read_json(RunFolder.RESULT)
        if key in out or result is None:
            continue
        path = folder / f"bench-{model_slug(c.model)}-{c.task}-{c.token}.json"
        out[key] = _read(path)
        if out[key] is None:
            todo.append((key, path, len(result["labels"])))
    if todo:
        say(f"benchmarking {len(todo)} (model, point) pair(s), full and pruned side by side")
        calls = [
            (benchmark_cell, spec, m, t, *_point_and_plan(layers, n))
            for (m, t, layers), _, n in todo
        ]
        for (key, path, _), bench in zip(todo, executor.map(guarded, calls, gpu=True), strict=True):
            if bench.get("error"):  # no ratios for this point; the table says nothing false
                say(f"  benchmark {key}: {bench['error']}")
                out[key] = None
                continue
            atomic_write_json(path, bench)
            out[key] = bench
    return out


def _point_and_plan(layers: int | str, n_labels: int) -> tuple[int, int, str | None]:
    """:func:`benchmark_cell`'s point, labels and plan for a cell's
    :attr:`~core.training.grid.Cell.layers`."""
    return (0, n_labels, str(layers)) if isinstance(layers, str) else (int(layers), n_labels, None)


def run_grid(
    spec: GridSpec,
    executor: Executor,
    espec: ExecutorSpec,
    *,
    say: Say = print,
    stop: Callable[[], bool] | None = None,
) -> GridTable:
    """Run (or resume) the grid on ``executor``; write and return the results table."""
    check_plans(spec)
    folder = grid_root() / spec.grid_id
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "spec.json", spec.to_dict())
    suggestions = _suggestions(spec, executor, folder, say)
    cells = plan_cells(spec, suggestions)
    todo = []
    for c in cells:
        run = runs_root() / c.run_id
        if c.error is None and _prepare_cell(
            run, spec.finetune_dict(c.model, c.task, c.point, c.seed, c.plan), c.run_id, espec
        ):
            todo.append(run)
    blocked = sum(1 for c in cells if c.error is not None)
    done = len(cells) - len(todo) - blocked
    say(f"{spec.grid_id}: {len(cells)} cells, {done} done, {len(todo)} to run, {blocked} failed")
    t0 = time.perf_counter()
    for run in todo:
        executor.submit(run)
    finals = executor.wait(todo, stop=stop) if todo else {}
    for name, status in sorted(finals.items()):
        say(f"  {name}: {status.state} {status.error or ''}".rstrip())
    if todo:
        say(f"cells ran in {time.perf_counter() - t0:.1f} s on {executor.name}")
    results, errors = {}, {}
    for c in cells:
        if c.error is not None:
            errors[c.run_id] = c.error
            continue
        raw = read_status(c.run_id)
        if raw.get("state") == RunState.DONE:
            results[c.run_id] = RunFolder(run_dir(c.run_id)).read_json(RunFolder.RESULT)
        elif raw.get("state") == RunState.FAILED:
            errors[c.run_id] = str(raw.get("error"))
    bench = _benchmarks(spec, executor, cells, folder, say) if spec.benchmark else {}
    table = grid_table(spec, cells, results, errors, bench, executor.name)
    key = write_grid_table(table, suggestions)
    say(f"table stored in the results store: {key[:12]} (python -m core results list --kind grid)")
    return table
