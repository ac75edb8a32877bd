"""Read-only views of run folders for the dashboard: finished fine-tunes, sweeps and saved benchmarks.

Nothing here trains or measures: fine-tunes, sweeps and cost benchmarks run as ``core.runs.lifecycle``
workers (their own processes), and these views read what they wrote. Accuracy is reported as the test
split's (the headline) with the selection split's beside it, each with its clip count; a sweep point's
cost is its own side-by-side benchmark's pruned / full ratio, never a quotient of separate runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import LabError
from core.geometry.curves import LayerCurve
from core.io.paths import cache_dir
from core.io.run_folder import RunFolder
from core.runs.folders import RunState, runs_root
from core.runs.records import RunStatus, list_runs
from core.training.configs import FinetuneConfig, SweepConfig
from core.training.kinds import RUN_KINDS

if TYPE_CHECKING:
    from core.training.finetune_result import FinetuneResult

__all__ = [
    "CostRatio",
    "FinetuneRunView",
    "FinishedRun",
    "RatioAxis",
    "SavedBenchmark",
    "SweepRow",
    "SweepRunView",
    "SweepView",
    "Score",
    "benchmarks_root",
    "comparison_source",
    "data_label",
    "export_provenance",
    "finetune_runs",
    "finetune_view",
    "finished_results",
    "list_benchmarks",
    "ratio_axis",
    "sweep_run_view",
    "sweep_runs",
    "sweep_view",
]

COST_METRIC = (
    "train_step_seconds"  # the cost a sweep plots: pruned / full time of one training step
)


def _registry_layers(model: str) -> int | None:
    """Depth L of a registry model or a local model folder (None if unknown)."""
    from core.models.loading import resolve_model
    from core.models.registry import MODELS

    spec = MODELS.get(model)
    if spec is None and Path(model).is_dir():  # read its config.json; no hub lookup
        try:
            spec = resolve_model(model)
        except LabError:
            return None
    return spec.n_layers if spec is not None else None


@dataclass(frozen=True)
class Score:
    """An accuracy with the split and the number of clips it was measured on."""

    accuracy: float
    split: str
    n_clips: int

    def text(self) -> str:
        """``90.2% (test, 315 clips)``."""
        clips = f", {self.n_clips} clips" if self.n_clips else ""
        return f"{self.accuracy:.1%} ({self.split}{clips})"


def headline_score(result: FinetuneResult) -> Score:
    """The score to report of a :class:`~core.training.finetune_result.FinetuneResult`: test if it has one."""
    scored = result.scored
    return Score(float(scored.accuracy), str(result.scored_split), int(scored.n))


def selection_score(result: FinetuneResult) -> Score:
    """The best checkpoint's score on the selection (validation) split."""
    return Score(float(result.best.accuracy), str(result.eval_split), int(result.best.n))


@dataclass(frozen=True)
class FinishedRun:
    """One finished fine-tune (its own run, or one point of a sweep) with its typed result and config."""

    id: str
    path: Path
    run: Path
    pruned: bool
    depth: int | None  # layers of the unpruned model
    result: FinetuneResult
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """The run folder's id (a sweep's id for a sweep point)."""
        return self.run.name

    @property
    def test(self) -> Score:
        """The headline: the test split's accuracy (the selection split's when the run had no test)."""
        return headline_score(self.result)

    @property
    def validation(self) -> Score:
        """The selection split's accuracy (the best checkpoint was chosen on it)."""
        return selection_score(self.result)

    @property
    def epoch_seconds_median(self) -> float | None:
        """Median epoch training time over every attempt, from the run's metrics (as its progress says)."""
        from core.runs.metrics import metrics_of
        from core.runs.records import median_epoch_seconds

        median = median_epoch_seconds(metrics_of(RunFolder(self.path).read_metrics()))
        return median if median is not None else self.result.epoch_seconds_median

    @property
    def layers(self) -> str:
        """The layers the model kept: its plan (``drop 3-4``) or ``p=2/4``."""
        return self.result.plan or f"p={self.result.prune_point}/{self.depth}"

    @property
    def label(self) -> str:
        """``<id> · sample · speakers · p=2/4 · test 0.902 (315 clips)`` (a plan: ``drop 3-4``)."""
        t = self.test
        return (
            f"{self.id} · {data_label(self.config)} · {self.result.task} · "
            f"{self.layers} · "
            f"{t.split} {t.accuracy:.3f} ({t.n_clips} clips)"
        )


def data_label(config: dict[str, Any]) -> str:
    """The data a run trains on, for its label: ``sample``, ``folder my-clips`` (the folder's name)."""
    dataset = str(config.get("dataset") or "sample")
    root = config.get("root")
    return f"{dataset} {Path(str(root)).name}" if root else dataset


@dataclass(frozen=True)
class FinetuneRunView:
    """One fine-tune as the run list shows it: its state, data, task, prune point and headline score."""

    run_id: str
    state: RunState
    label: str  # the state for display (``cancelling`` while a cancel is pending)
    active: bool
    resumable: bool
    data: str
    task: str
    prune_point: int | None  # None: the full model (or a plan)
    epochs: int | None
    test_accuracy: float | None
    n_test: int | None
    selection_accuracy: float | None
    selection_split: str
    updated_at: str
    error: str | None = None
    settings: FinetuneConfig | None = None  # None when its config.json is not a fine-tune's
    plan: str | None = None  # the layers kept when a plan named them ("drop 3-4")

    @property
    def prune_text(self) -> str:
        """``drop 3-4`` (a plan), ``p = 2`` or ``full model``."""
        if self.plan:
            return self.plan
        return "full model" if self.prune_point is None else f"p = {self.prune_point}"

    @property
    def score_text(self) -> str:
        """The headline: test accuracy with its clips, else the selection split's ("" before)."""
        if self.test_accuracy is not None:
            return f"test acc {self.test_accuracy:.3f} ({self.n_test or '?'} clips)"
        if self.selection_accuracy is not None:
            return f"{self.selection_split} acc {self.selection_accuracy:.3f} (selection split)"
        return ""

    @property
    def picker_label(self) -> str:
        """``<id> · sample · words · p = 2 · done · test acc 0.902 (315 clips)``."""
        score = f" · {self.score_text}" if self.score_text else ""
        return (
            f"{self.run_id} · {self.data} · {self.task} · {self.prune_text} · {self.label}{score}"
        )


def _number(value: Any) -> float | None:
    """A summary figure as a float (None when it is not a number)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def finetune_view(run: RunStatus) -> FinetuneRunView:
    """The typed view of one fine-tune's status (its settings and its summary's scores)."""
    cfg, summary = run.config, run.summary
    p, epochs, n_test = cfg.get("prune_point"), cfg.get("epochs"), summary.get("n_test")
    return FinetuneRunView(
        run_id=run.run_id,
        state=RunState.of(run.state),
        label=run.label,
        active=run.active,
        resumable=run.resumable,
        data=data_label(cfg),
        task=str(cfg.get("task") or "words"),
        prune_point=int(p) if isinstance(p, int) else None,
        epochs=int(epochs) if isinstance(epochs, int) else None,
        test_accuracy=_number(summary.get("test_accuracy")),
        n_test=int(n_test) if isinstance(n_test, int) else None,
        selection_accuracy=_number(summary.get("best_accuracy")),
        selection_split=str(summary.get("eval_split") or cfg.get("eval_split") or "validation"),
        updated_at=str(run.updated_at or "")[:19],
        error=run.error,
        settings=_settings(cfg),
        plan=str(cfg["plan"]) if cfg.get("plan") else None,
    )


def _settings(config: dict[str, Any]) -> FinetuneConfig | None:
    """A fine-tune's settings record (None when they are not one)."""
    try:
        return FinetuneConfig.from_dict(dict(config))
    except (LabError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class SweepRunView:
    """One sweep as its picker and header show it: state, data, model, task and prune points."""

    run_id: str
    state: RunState
    label: str
    active: bool
    data: str
    model: str
    task: str
    points: tuple[str, ...]
    settings: SweepConfig | None = None  # None when its config.json is not a sweep's

    @property
    def picker_label(self) -> str:
        """``<id> · sample · speakers · done``."""
        return f"{self.run_id} · {self.data} · {self.task} · {self.label}"


def sweep_run_view(run: RunStatus) -> SweepRunView:
    """The typed view of one sweep's status."""
    cfg = run.config
    try:
        settings = SweepConfig.from_dict(dict(cfg))
    except (LabError, TypeError, ValueError):
        settings = None
    return SweepRunView(
        run_id=run.run_id,
        state=RunState.of(run.state),
        label=run.label,
        active=run.active,
        data=data_label(cfg),
        model=str(cfg.get("model") or ""),
        task=str(cfg.get("task") or "words"),
        points=tuple(str(p) for p in cfg.get("points") or ()),
        settings=settings,
    )


def sweep_runs() -> list[SweepRunView]:
    """Every sweep, newest first, as typed views."""
    return [sweep_run_view(r) for r in list_runs() if r.kind == "sweep"]


def finetune_runs() -> list[FinetuneRunView]:
    """Every fine-tune run (not a sweep's points), newest first, as typed views."""
    return [finetune_view(r) for r in list_runs() if r.kind == "finetune"]


def export_provenance() -> dict[str, str]:
    """What every exported row names besides its runs: the code version and when it was exported."""
    from core.results.provenance import code_version

    return {
        "code_version": code_version(),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def comparison_source(full: FinishedRun, pruned: FinishedRun) -> dict[str, Any]:
    """Which runs, model, splits, clip counts and seeds a full-vs-pruned comparison row comes from."""
    ft, pt = full.test, pruned.test
    return {
        "full_run": full.id,
        "pruned_run": pruned.id,
        "model": full.result.model,
        "pruned_model": pruned.result.model,
        "full_prune_point": full.result.prune_point,
        "pruned_prune_point": pruned.result.prune_point,
        "full_layers": full.layers,
        "pruned_layers": pruned.layers,
        "scored_split": ft.split if ft.split == pt.split else f"{ft.split} / {pt.split}",
        "full_scored_clips": ft.n_clips,
        "pruned_scored_clips": pt.n_clips,
        "selection_split": full.result.eval_split,
        "full_selection_clips": full.validation.n_clips,
        "pruned_selection_clips": pruned.validation.n_clips,
        "full_seed": full.config.get("seed"),
        "pruned_seed": pruned.config.get("seed"),
        **export_provenance(),
    }


def _finetune_config(folder: RunFolder, run: RunFolder) -> dict[str, Any]:
    """The fine-tune config of a finished result (its own folder, else the sweep's)."""
    for candidate in (folder, run):
        spec = candidate.read_spec()
        if spec is not None and spec.config:
            return dict(spec.config)
    return {}


def _finished_candidates(run: RunFolder) -> list[tuple[RunFolder, str]]:
    """The folders of a run that may hold a finished fine-tune, with their labels (deepest point first)."""
    spec = run.read_spec()
    kind = RUN_KINDS.get(spec.kind) if spec is not None else None
    if kind is not None and kind.points:  # a sweep: each point is a fine-tune
        return [(p, f"{run.name} / {p.name}") for p in reversed(run.points())]
    if kind is not None and kind.view == "epochs":  # a fine-tune of its own
        return [(run, run.name)]
    return []


def finished_results(root: str | Path | None = None) -> list[FinishedRun]:
    """Finished fine-tunes (own runs and each point of a sweep) with their ``result.json``, newest first."""
    from core.training.finetune_result import FinetuneResult

    root = Path(root) if root is not None else runs_root()
    out: list[FinishedRun] = []
    if not root.is_dir():
        return out
    for path in sorted(root.iterdir(), reverse=True):
        if path.name.startswith(".") or path.is_symlink() or not path.is_dir():
            continue
        run = RunFolder(path)
        candidates = _finished_candidates(run)
        pre = run.read_json(RunFolder.PRETRAINED_CONVEXITY) or {} if candidates else {}
        for folder, label in candidates:
            data = folder.read_json(RunFolder.RESULT)
            if not data:
                continue
            try:
                result = FinetuneResult.from_dict(data)
            except (LabError, KeyError, TypeError, ValueError):
                continue  # damaged or foreign result.json: not a finished run to compare
            p = result.prune_point
            n = pre.get("n_layers") if isinstance(pre, dict) else None
            n = n or _registry_layers(result.model)
            own = folder.read_spec()
            mine = own.config if folder is run and own is not None else None
            if mine is not None and mine.get("prune_point") is None and not mine.get("plan"):
                n = p  # a full-model run
            out.append(
                FinishedRun(
                    id=label,
                    path=folder.path,
                    run=run.path,
                    pruned=n is not None and p < n,
                    depth=n,
                    result=result,
                    config=_finetune_config(folder, run),
                )
            )
    return out


@dataclass(frozen=True)
class CostRatio:
    """Pruned / full of one quantity from one side-by-side benchmark: median and min-max over repeats."""

    metric: str
    label: str
    ratio: float
    low: float
    high: float
    reliable: bool
    note: str = ""


@dataclass(frozen=True)
class SweepRow:
    """One point of a sweep: test accuracy (headline), validation accuracy (selection), its cost.

    ``prune_point`` is the depth the point keeps; ``plan`` its layers in words when a plan named them.
    """

    prune_point: int
    suggested: bool
    test: Score | None
    validation: Score
    params_total: int
    cost: CostRatio | None  # this point's own benchmark: pruned / full training step
    benchmark_id: str | None = None
    plan: str | None = None

    @property
    def layers(self) -> str:
        """The point in words: its plan (``drop 3-4``) or ``p = 8``."""
        return self.plan or f"p = {self.prune_point}"

    @property
    def headline(self) -> Score:
        """Test accuracy when measured, else the selection split's (labelled by its split)."""
        return self.test if self.test is not None else self.validation


@dataclass(frozen=True)
class SweepView:
    """A sweep's rows, suggested point, rule fraction and pretrained curves by label set."""

    run_id: str
    model: str
    task: str
    suggested: int | None
    fraction: float | None
    rows: tuple[SweepRow, ...]
    pretrained: dict[str, LayerCurve]
    seed: int | None = None

    @property
    def top_rows(self) -> tuple[SweepRow, ...]:
        """The prune points (keep layers 1..p), by depth: the points on the pretrained curve."""
        return tuple(r for r in self.rows if r.plan is None)

    @property
    def plan_rows(self) -> tuple[SweepRow, ...]:
        """The points that keep other layers (``drop 3-4``): no point of the pretrained curve."""
        return tuple(r for r in self.rows if r.plan is not None)

    def table(self) -> list[dict[str, Any]]:
        """Rows for a table a person reads: test first, validation labelled as the selection metric."""
        out = []
        for r in self.rows:
            out.append(
                {
                    "prune point": r.prune_point,
                    "layers kept": r.layers,
                    "suggested": r.suggested,
                    "test accuracy": r.test.accuracy if r.test else None,
                    "test clips": r.test.n_clips if r.test else None,
                    "validation accuracy (selection)": r.validation.accuracy,
                    "validation clips": r.validation.n_clips,
                    "parameters (M)": round(r.params_total / 1e6, 2),
                    "train step, pruned / full": r.cost.ratio if r.cost else None,
                    "ratio min": r.cost.low if r.cost else None,
                    "ratio max": r.cost.high if r.cost else None,
                    "ratio reliable": r.cost.reliable if r.cost else None,
                }
            )
        return out


@dataclass(frozen=True)
class RatioAxis:
    """A ratio chart's value axis that no single whisker can squash: its upper end and what it clips.

    ``upper`` covers every median and every whisker up to ``BULK`` x the largest median (and the 1.0
    line); a whisker above it is drawn to ``upper`` and marked with its true maximum (``clipped``).
    """

    upper: float
    shown_high: tuple[float, ...]
    clipped: tuple[bool, ...]


BULK = 2.0  # whiskers up to this many times the largest median stay on the axis


def ratio_axis(medians: list[float], highs: list[float]) -> RatioAxis:
    """The axis for bars ``medians`` with whiskers up to ``highs`` (see :class:`RatioAxis`)."""
    if not medians:
        return RatioAxis(1.2, (), ())
    bulk = BULK * max(max(medians), 1.0)
    kept = [h for h in highs if h <= bulk]
    upper = 1.1 * max([*medians, *kept, 1.0])
    clipped = tuple(h > upper for h in highs)
    return RatioAxis(upper, tuple(min(h, upper) for h in highs), clipped)


def _cost_ratio(bench: dict[str, Any] | None) -> CostRatio | None:
    """The training step's pruned / full ratio with its spread from a benchmark file's rows."""
    for row in (bench or {}).get("rows", []):
        if row.get("metric") == COST_METRIC and row.get("ratio") is not None:
            ratio = float(row["ratio"])
            if math.isnan(ratio):
                return None
            return CostRatio(
                metric=COST_METRIC,
                label=str(row.get("label", COST_METRIC)),
                ratio=ratio,
                low=float(row.get("ratio_min") if row.get("ratio_min") is not None else ratio),
                high=float(row.get("ratio_max") if row.get("ratio_max") is not None else ratio),
                reliable=bool(row.get("reliable", True)),
                note=str(row.get("note") or ""),
            )
    return None


def _score(accuracy: Any, split: str | None, n: Any) -> Score | None:
    """A Score, or None without an accuracy."""
    if accuracy is None:
        return None
    return Score(float(accuracy), str(split or "?"), int(n or 0))


def _curves(raw: Any) -> dict[str, LayerCurve]:
    """Typed pretrained curves by label set; a curve that is not one is left out."""
    out = {}
    for name, curve in (raw if isinstance(raw, dict) else {}).items():
        try:
            out[str(name)] = LayerCurve.from_dict(curve)
        except LabError:
            continue
    return out


def plan_points(folder: RunFolder) -> dict[str, str]:
    """A sweep's plan points: the plan's words (``drop 3-4``, as its settings hold them) -> the point's
    name in its folder and file names (``L12-k1-2.5-12``)."""
    out = {}
    for sub in folder.points():
        spec = sub.read_spec()
        plan = spec.config.get("plan") if spec is not None else None
        if plan and not sub.name[1:].isdigit():
            out[str(plan)] = sub.name[1:]
    return out


def sweep_view(run: str | Path) -> SweepView | None:
    """A sweep's rows, suggested point and pretrained curves (None if it has no results yet)."""
    folder = RunFolder(Path(run))
    res = folder.read_json(RunFolder.SWEEP_RESULTS)
    pre = folder.read_json(RunFolder.PRETRAINED_CONVEXITY)
    if not isinstance(res, dict) or not res.get("rows"):
        return None
    spec = folder.read_spec()
    cfg = dict(spec.config) if spec is not None else {}
    eval_split = res.get("eval_split") or cfg.get("eval_split") or "validation"
    test_split = res.get("test_split") or cfg.get("test_split") or "test"
    planned = plan_points(folder)
    rows = []
    for r in sorted(res["rows"], key=lambda r: (r["prune_point"], bool(r.get("plan")))):
        p, plan = int(r["prune_point"]), r.get("plan")
        name = planned.get(str(plan)) if plan else str(p)  # None: a plan whose folder is gone
        point = (folder.point(name).read_json(RunFolder.RESULT) or {}) if name else {}
        bench_name = RunFolder.benchmark_name(name) if name else None
        bench = folder.read_json(bench_name) if bench_name else None
        rows.append(
            SweepRow(
                prune_point=p,
                suggested=bool(r.get("suggested")),
                test=_score(r.get("test_accuracy"), test_split, point.get("n_test")),
                validation=Score(
                    float(r["accuracy"]), str(eval_split), int(point.get("n_eval") or 0)
                ),
                params_total=int(r.get("params_total") or 0),
                cost=_cost_ratio(bench),
                benchmark_id=f"{folder.name} / {Path(bench_name).stem}"
                if bench_name and folder.file(bench_name).exists()
                else None,
                plan=str(plan) if plan else None,
            )
        )
    return SweepView(
        run_id=folder.name,
        model=str(res.get("model") or cfg.get("model") or ""),
        task=str(cfg.get("task", res.get("task", "words"))),
        suggested=res.get("suggested"),
        fraction=res.get("fraction", cfg.get("fraction")),
        rows=tuple(rows),
        pretrained=_curves((pre or {}).get("curves") or res.get("pretrained_convexity") or {}),
        seed=cfg.get("seed"),
    )


def benchmarks_root() -> Path:
    """``cache_dir()/benchmarks`` (benchmarks saved by earlier versions of the page), created if missing."""
    root = cache_dir() / "benchmarks"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class SavedBenchmark:
    """One saved ``benchmark.json``: a benchmark run, a sweep point's, or an older page's folder."""

    id: str
    path: Path
    data: dict[str, Any]
    run_id: str | None = None


def list_benchmarks(root: str | Path | None = None) -> list[SavedBenchmark]:
    """Saved benchmarks (benchmark runs, each sweep's ``benchmark_p*.json``, older folders), newest first."""
    out: list[SavedBenchmark] = []
    base = Path(root) if root is not None else benchmarks_root()
    runs = runs_root() if root is None else base.parent / "runs"
    found: list[tuple[str, SavedBenchmark]] = []
    for path in runs.iterdir() if runs.is_dir() else []:
        if path.name.startswith(".") or path.is_symlink() or not path.is_dir():
            continue
        run = RunFolder(path)
        data = run.read_json(RunFolder.BENCHMARK)
        if data:
            saved = SavedBenchmark(run.name, run.file(RunFolder.BENCHMARK), data, run.name)
            found.append((run.name, saved))
        for _, bench in run.point_benchmarks():
            data = run.read_json(bench.name)
            if data:
                bid = f"{run.name} / {bench.stem}"
                found.append((run.name, SavedBenchmark(bid, bench, data, run.name)))
    for old in base.iterdir() if base.is_dir() else []:  # an older page's folder: the same file
        data = RunFolder(old).read_json(RunFolder.BENCHMARK)
        if data:
            found.append((old.name, SavedBenchmark(old.name, old / RunFolder.BENCHMARK, data)))
    for _, saved in sorted(found, key=lambda t: (t[0], t[1].id), reverse=True):
        out.append(saved)
    return out
