"""The paper's study as one grid: model x task x prune point x seed, each cell one fine-tune run.

What this module holds (no executor: ``core.runs.executors`` decides where cells run):

- :class:`GridSpec`: models, tasks, points (ints, ``"suggested"``, ``"full"``, plans such as
  ``"drop 3-4"``), seeds and the training recipe shared by every cell; ``grid_id`` is a hash of all
  of it, so re-running the same command finds the same cells (resumable: a cell whose run is done is
  skipped).
- :func:`suggestion`: the pretrained convexity curve of one (model, task) and the suggested prune
  point (the sweep's rule, :func:`core.training.sweep.suggest_prune_point`); computed once per
  (model, task) with seed 0, so every seed of a cell trains the same depth.
- :func:`plan_cells`: the cells, each with its finetune config and a deterministic run id. A
  (model, task) whose suggestion failed (``{"error": ...}``, see :func:`guarded`) fails only the cells
  that need it (``suggested``/``full`` and plans, which need its curve or its layer count), each with
  the error; cells at explicit layer numbers still run.
- :func:`grid_table`: accuracy mean +- std over the seeds that finished, per (model, task, point),
  and cost ratios (pruned / full) taken only from benchmarks (full and pruned measured side by side
  in one process, :func:`core.training.benchmark.benchmark`), never from training times of separate
  runs. Stored in the results store (kind ``grid``, one entry per grid id, replaced as cells finish)
  with provenance: models and their weights/revisions, data fingerprints, recipe and points, engine
  version, device, date (:func:`write_grid_table`); Benchmarks and ``results list`` read it there.
  ``cache_dir()/results/grid/<grid_id>/`` keeps only the grid's working files (suggestions, benchmarks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.data.datasets import label_set
from core.errors import LabError
from core.io.paths import cache_dir
from core.io.records import Record
from core.models.loading import resolve
from core.models.plans import PruningPlan, parse_plan
from core.models.request import ModelRequest
from core.results.provenance import Provenance
from core.training.configs import PAPER_RECIPE

__all__ = [
    "ENGINE_VERSION",
    "PAPER_RECIPE",
    "Cell",
    "GridRow",
    "GridSpec",
    "GridTable",
    "benchmark_cell",
    "check_plans",
    "grid_root",
    "grid_table",
    "model_slug",
    "guarded",
    "is_plan_text",
    "parse_points",
    "plan_cells",
    "grid_meta",
    "read_grid_tables",
    "StoredGrid",
    "suggestion",
    "write_grid_table",
]

ENGINE_VERSION = "2"  # of the table's aggregation; bump when the figures it computes change


def grid_root() -> Path:
    """``cache_dir()/results/grid``, created if missing."""
    root = cache_dir() / "results" / "grid"
    root.mkdir(parents=True, exist_ok=True)
    return root


def is_plan_text(item: Any) -> bool:
    """Whether a grid or sweep point names a plan (``"drop 3-4"``, ``"keep 1-2, 5-12"``)."""
    return isinstance(item, str) and item.strip()[:5].lower() in ("drop ", "keep ")


def check_plans(spec: GridSpec) -> None:
    """Refuse (one LabError line) a plan point that some model of the grid cannot keep (a layer out
    of range, every layer dropped), before any work; a model that does not resolve fails its own cells."""
    plans = [str(p) for p in spec.points if is_plan_text(p)]
    for model in spec.models if plans else ():
        try:
            n_layers = resolve(ModelRequest(model)).n_layers
        except LabError:
            continue
        for plan in plans:
            try:
                parse_plan(plan, n_layers)
            except LabError as exc:
                raise LabError(f"plan {plan!r} for {model}: {exc}") from None


def parse_points(text: str | Sequence[Any]) -> tuple[str | int, ...]:
    """``"suggested,full,4"`` -> ``("suggested", "full", 4)``; a sequence may also hold plans
    (``"drop 3-4"``, checked against each model's depth when the cells are planned); LabError on
    anything else."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str | int] = []
    for item in items:
        item = str(item).strip()
        if item in ("suggested", "full"):
            out.append(item)
        elif item.isdigit() and int(item) >= 1:
            out.append(int(item))
        elif is_plan_text(item) and not isinstance(text, str):
            out.append(item)
        else:
            raise LabError(f"prune point {item!r}: use 'suggested', 'full' or a layer number >= 1")
    return tuple(out)


@dataclass(frozen=True)
class GridSpec(Record):
    """Models x tasks x points x seeds and the shared training recipe (FinetuneConfig fields)."""

    models: tuple[str, ...]
    tasks: tuple[str, ...] = ("words", "speakers")
    points: tuple[str | int, ...] = ("suggested", "full")
    seeds: tuple[int, ...] = (0, 1, 2)
    train: Mapping[str, Any] = field(default_factory=dict)
    fraction: float = 0.95
    convexity_split: str = "train"
    convexity_max_clips: int | None = None
    benchmark: bool = True

    def __post_init__(self) -> None:
        if not self.models or not self.tasks or not self.points or not self.seeds:
            raise LabError("a grid needs at least one model, task, point and seed")
        bad = [t for t in self.tasks if t not in ("words", "speakers")]
        if bad:
            raise LabError(f"unknown task {bad[0]!r}: use words or speakers")
        clash = {"model", "task", "seed", "prune_point", "plan"} & set(self.train)
        if clash:
            raise LabError(f"the grid sets {sorted(clash)} per cell; leave them out of the recipe")

    @property
    def grid_id(self) -> str:
        """``grid-<10 hex>``: hash of everything that defines the cells and their training."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
        return f"grid-{digest[:10]}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        d = asdict(self)
        d["train"] = dict(self.train)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def finetune_dict(
        self, model: str, task: str, point: int, seed: int, plan: str | None = None
    ) -> dict[str, Any]:
        """The FinetuneConfig dict of one cell (a plan cell names its plan, not a prune point)."""
        layers = {"prune_point": None, "plan": plan} if plan else {"prune_point": point}
        return {**self.train, "model": model, "task": task, **layers, "seed": seed}

    def suggestion_dict(self, model: str, task: str) -> dict[str, Any]:
        """The SweepConfig dict whose pretrained convexity suggests the (model, task) prune point."""
        return {
            **self.train,
            "model": model,
            "task": task,
            "seed": 0,
            "fraction": self.fraction,
            "convexity_split": self.convexity_split,
            "convexity_max_clips": self.convexity_max_clips,
        }


@dataclass(frozen=True)
class Cell:
    """One fine-tune of the grid: model, task, point label (``suggested``/``full``/int/plan), depth
    kept, seed.

    ``error``: the cell cannot run (its suggestion failed); ``point`` is then 0 (unknown). ``plan``:
    the layers kept when a plan names them (``"drop 3-4"``); ``depth``: the full model's layers.
    """

    model: str
    task: str
    label: str
    point: int
    seed: int
    run_id: str
    error: str | None = None
    plan: str | None = None
    depth: int = 0

    @property
    def layers(self) -> int | str:
        """What the cell keeps, as the grid's tables key it: its plan's text, else its prune point."""
        return self.plan or self.point

    @property
    def token(self) -> str:
        """The point's part of run ids and file names: ``p8``, or ``p`` + the plan's key."""
        return f"p{parse_plan(self.plan, self.depth).key()}" if self.plan else f"p{self.point}"

    @property
    def pruned(self) -> bool:
        """Whether the cell's model keeps fewer layers than the full model."""
        return 0 < self.point < self.depth

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def model_slug(text: str) -> str:
    """A run-id-safe short form of a model name or path."""
    return re.sub(r"[^a-z0-9]+", "-", Path(str(text)).name.lower()).strip("-")[:32] or "model"


def guarded(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or ``{"error": "<Type>: <one line>"}`` when it raises: one unit of a grid fails
    alone (recorded with its error) while the rest goes on. Module-level so Ray ships it by reference."""
    try:
        return fn(*args)
    except Exception as exc:  # any failure of this unit is its own, recorded, never the grid's
        return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}


def suggestion(spec: GridSpec, model: str, task: str) -> dict[str, Any]:
    """Pretrained convexity of (model, task) and the suggested prune point (plain dict, JSON-ready).

    Without a ``suggested`` point in the grid only the layer count is needed (no extraction).
    """
    from core.training.sweep import SweepConfig, pretrained_convexity, suggest_prune_point

    facts = _facts(spec, model, task)
    if "suggested" not in spec.points:
        from core.models.loading import resolve_model

        n_layers = int(resolve_model(model).n_layers)
        return {"model": model, "task": task, "n_layers": n_layers, "suggested": None, **facts}
    cfg = SweepConfig.from_dict(spec.suggestion_dict(model, task))
    pre = pretrained_convexity(cfg)
    relevant = label_set(task)
    pre["suggested"] = int(suggest_prune_point(pre["curves"][relevant]["scores"], spec.fraction))
    pre.update(model=model, task=task, fraction=spec.fraction, **facts)
    return pre


def _facts(spec: GridSpec, model: str, task: str) -> dict[str, Any]:
    """Provenance of a (model, task): the model's weights identity and the task's data fingerprint."""
    from core.data.source import ClipSource, Selection

    t = spec.train
    sel = Selection(ClipSource(str(t.get("dataset", "sample")), t.get("root")), task=task)
    return {
        "weights": resolve(ModelRequest(model)).identity.weights or "?",
        "dataset_fingerprint": sel.table().fingerprint(),
    }


def plan_cells(
    spec: GridSpec, suggestions: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[Cell]:
    """Every cell, with ``suggested``/``full`` resolved from ``suggestions[(model, task)]``.

    A point label that resolves to a layer another label already names (e.g. suggested == full) is
    kept once, under the first label given.
    """
    cells: list[Cell] = []
    for model in spec.models:
        for task in spec.tasks:
            sug = suggestions[(model, task)]
            if sug.get("error"):
                cells += _failed_cells(spec, model, task, str(sug["error"]))
                n_layers = None
            else:
                n_layers = int(sug["n_layers"])
            seen: set[tuple[int, ...]] = set()
            for label in spec.points:
                if n_layers is None and (label in ("suggested", "full") or is_plan_text(label)):
                    continue  # failed above, with the suggestion's error
                plan = _cell_plan(label, sug.get("suggested"), n_layers)
                p = int(label) if plan is None else plan.size  # None: depth unknown
                kept = (p,) if plan is None else plan.kept
                text = None if plan is None or plan.is_top else plan.describe()
                if kept in seen:
                    continue
                seen.add(kept)
                for seed in spec.seeds:
                    cell = Cell(
                        model, task, str(label), p, int(seed), "", None, text, n_layers or 0
                    )
                    run_id = _run_id(spec, model, task, cell.token, seed)
                    cells.append(dataclasses.replace(cell, run_id=run_id))
    return cells


def _cell_plan(label: str | int, suggested: Any, n_layers: int | None) -> PruningPlan | None:
    """The plan a grid point names for a model of ``n_layers`` (None: a layer number, depth unknown)."""
    if n_layers is None:
        return None
    if is_plan_text(label):
        return parse_plan(str(label), n_layers)
    p = {"full": n_layers, "suggested": suggested}.get(str(label))
    p = int(label) if p is None else int(p)
    if not 1 <= p <= n_layers:
        raise LabError(f"prune point {p} outside 1..{n_layers}")
    return PruningPlan.top(p, n_layers)


def _run_id(spec: GridSpec, model: str, task: str, point: str, seed: int) -> str:
    """A cell's deterministic run id (``point``: ``p<layer>``, or the label of a cell that cannot run)."""
    return f"{spec.grid_id}-{model_slug(model)}-{task}-{point}-s{seed}"


def _failed_cells(spec: GridSpec, model: str, task: str, error: str) -> list[Cell]:
    """The cells of (model, task) that need its failed suggestion, each carrying the error."""
    return [
        Cell(
            model,
            task,
            str(label),
            0,
            int(seed),
            _run_id(spec, model, task, str(label), seed),
            f"suggestion: {error}",
        )
        for label in spec.points
        if label in ("suggested", "full") or is_plan_text(label)
        for seed in spec.seeds
    ]


def benchmark_cell(
    spec: GridSpec, model: str, task: str, point: int, n_labels: int, plan: str | None = None
) -> dict[str, Any]:
    """Full vs pruned cost of (model, point), measured side by side in one process with the
    benchmark's own defaults (:class:`~core.training.configs.BenchmarkConfig`), as the JSON document
    the grid keeps (a failed cell is ``{"error": ...}`` through :func:`guarded`)."""
    from core.training.benchmark import run_benchmark
    from core.training.configs import BenchmarkConfig

    t = spec.train
    cfg = BenchmarkConfig(
        model=model,
        prune_point=None if plan else point,
        plan=plan,
        n_labels=n_labels,
        train_batch=int(t.get("batch_size", 16)),
        device=t.get("device"),
        bf16=bool(t.get("bf16", True)),
        whisper_input=str(t.get("whisper_input", "trimmed")),
    )
    return run_benchmark(cfg).to_dict()


@dataclass(frozen=True)
class GridRow(Record):
    """One (model, task, point) of the table: accuracy over seeds, failures, cost ratios."""

    model: str
    task: str
    label: str
    point: int
    seeds_done: tuple[int, ...]
    accuracy_mean: float | None
    accuracy_std: float | None
    test_accuracy_mean: float | None
    test_accuracy_std: float | None
    params_total: int | None
    cost_ratios: Mapping[str, float | None]
    failed: Mapping[str, str]
    plan: str | None = None  # the layers kept when a plan named them ("drop 3-4")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (``plan`` only when set)."""
        d = asdict(self)
        if d["plan"] is None:
            del d["plan"]
        d["seeds_done"] = list(self.seeds_done)
        d["cost_ratios"], d["failed"] = dict(self.cost_ratios), dict(self.failed)
        return d


@dataclass(frozen=True)
class GridTable(Record):
    """The grid's results: spec, rows, cells still missing, when and how it ran."""

    grid_id: str
    spec: Mapping[str, Any]
    rows: tuple[GridRow, ...]
    n_cells: int
    n_done: int
    executor: str
    created: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "grid_id": self.grid_id,
            "spec": dict(self.spec),
            "rows": [r.to_dict() for r in self.rows],
            "n_cells": self.n_cells,
            "n_done": self.n_done,
            "executor": self.executor,
            "created": self.created,
        }

    def records(self) -> list[dict[str, Any]]:
        """Flat rows for a table view: ``accuracy`` as ``mean ± std (n)`` plus the cost ratios."""
        out = []
        for r in self.rows:
            where = r.plan or (f"p={r.point}" if r.point else "p=?")
            acc = "-" if r.accuracy_mean is None else f"{r.accuracy_mean:.4f}"
            if r.accuracy_std is not None:
                acc += f" ± {r.accuracy_std:.4f}"
            out.append(
                {
                    "model": r.model,
                    "task": r.task,
                    "point": f"{r.label} ({where})",
                    "accuracy": f"{acc} (n={len(r.seeds_done)})",
                    "params": r.params_total,
                    **{f"{k} ratio": v for k, v in r.cost_ratios.items()},
                    "failed seeds": ", ".join(f"{s}: {e}" for s, e in r.failed.items()) or "",
                }
            )
        return out


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; None with fewer than two values)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def grid_table(
    spec: GridSpec,
    cells: Sequence[Cell],
    results: Mapping[str, Mapping[str, Any] | None],
    errors: Mapping[str, str],
    benchmarks: Mapping[tuple[str, str, int | str], Mapping[str, Any]],
    executor: str,
) -> GridTable:
    """Aggregate cell results (``results[run_id]`` = result.json or None) into the table
    (``benchmarks`` by model, task and :attr:`Cell.layers`)."""
    groups: dict[tuple[str, str, str, int, str | None], list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.model, c.task, c.label, c.point, c.plan), []).append(c)
    rows = []
    for (model, task, label, point, plan), members in groups.items():
        done = [(c, r) for c in members if (r := results.get(c.run_id))]
        acc = _mean_std([r["best_accuracy"] for _, r in done])
        test = _mean_std([r.get("test_accuracy") for _, r in done])
        params = next(((r.get("params") or {}).get("total") for _, r in done), None)
        bench = benchmarks.get((model, task, plan or point)) or {}
        ratios = {b["metric"]: b.get("ratio") for b in bench.get("rows", [])}
        failed = {str(c.seed): errors[c.run_id] for c in members if c.run_id in errors}
        rows.append(
            GridRow(
                model,
                task,
                label,
                point,
                tuple(c.seed for c, _ in done),
                acc[0],
                acc[1],
                test[0],
                test[1],
                params,
                ratios,
                failed,
                plan,
            )
        )
    n_done = sum(1 for c in cells if results.get(c.run_id))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return GridTable(spec.grid_id, spec.to_dict(), tuple(rows), len(cells), n_done, executor, stamp)


@dataclass(frozen=True)
class StoredGrid:
    """A grid table as the results store holds it: its entry key, the table and its provenance."""

    key: str
    table: GridTable
    provenance: Provenance


def grid_meta(
    table: GridTable, suggestions: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, Any]:
    """The provenance facts of a grid (models + weights, data fingerprints, settings, device)."""
    spec = GridSpec.from_dict(table.spec)
    sugs = [suggestions.get((m, t)) or {} for m in spec.models for t in spec.tasks]
    weights = {str(s["model"]): s.get("weights", "?") for s in sugs if s.get("model")}
    prints = sorted(
        {f"{s['task']}:{s['dataset_fingerprint']}" for s in sugs if s.get("dataset_fingerprint")}
    )
    return {
        "model_id": ",".join(spec.models),
        "model_key": ",".join(model_slug(m) for m in spec.models),
        "weights": "; ".join(f"{model_slug(m)}={w}" for m, w in weights.items()) or "?",
        "dataset": str(spec.train.get("dataset", "sample")),
        "selection": {"root": spec.train.get("root"), "tasks": list(spec.tasks)},
        "dataset_fingerprint": "; ".join(prints) or "?",
        "n_clips": 0,
        "n_layers": max((int(s.get("n_layers") or 0) for s in sugs), default=0),
        "device": str(spec.train.get("device") or "auto"),
        "label_sets": list(spec.tasks),
        "settings": {
            "train": dict(spec.train),
            "points": list(spec.points),
            "seeds": list(spec.seeds),
            "fraction": spec.fraction,
            "executor": table.executor,
            "engine_version": ENGINE_VERSION,
            "cells": table.n_cells,
            "cells_done": table.n_done,
        },
    }


def write_grid_table(
    table: GridTable, suggestions: Mapping[tuple[str, str], Mapping[str, Any]]
) -> str:
    """Store the table with its provenance in the results store; returns the entry key."""
    from core.results.kinds import store_grid_table

    return store_grid_table(table.to_dict(), grid_meta(table, suggestions))


def read_grid_tables() -> list[StoredGrid]:
    """Every grid table in the results store (newest first); unreadable entries are skipped."""
    from core.results.kinds import stored_grid_tables

    out = []
    for entry in stored_grid_tables():
        try:
            out.append(StoredGrid(entry.key, GridTable.from_dict(entry.data), entry.provenance))
        except (ValueError, KeyError, TypeError):
            continue
    return out
