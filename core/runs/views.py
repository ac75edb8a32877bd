"""Read-only views of run folders for the dashboard: finished fine-tunes, sweeps and saved benchmarks.

Nothing here trains or measures: fine-tunes, sweeps and cost benchmarks run as ``core.runs.jobs``
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

from core.io.paths import cache_dir
from core.runs.folders import read_json, runs_root

if TYPE_CHECKING:
    from core.training.finetune_result import FinetuneResult

__all__ = [
    "CostRatio",
    "FinishedRun",
    "RatioAxis",
    "SavedBenchmark",
    "SweepRow",
    "SweepView",
    "Score",
    "benchmarks_root",
    "comparison_source",
    "export_provenance",
    "finished_results",
    "list_benchmarks",
    "ratio_axis",
    "read_json",
    "sweep_view",
]

COST_METRIC = (
    "train_step_seconds"  # the cost a sweep plots: pruned / full time of one training step
)


def _registry_layers(model: str) -> int | None:
    """Depth L of a registry model or a local model folder (None if unknown)."""
    from core.errors import LabError
    from core.models.registry import MODELS, resolve_model

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
        from core.runs.folders import read_metrics_file
        from core.runs.records import median_epoch_seconds

        median = median_epoch_seconds(read_metrics_file(self.path / "metrics.jsonl"))
        return median if median is not None else self.result.epoch_seconds_median

    @property
    def label(self) -> str:
        """``<id> · speakers · p=2/4 · test 0.902 (315 clips)``."""
        t = self.test
        return (
            f"{self.id} · {self.result.task} · p={self.result.prune_point}/{self.depth} · "
            f"{t.split} {t.accuracy:.3f} ({t.n_clips} clips)"
        )


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


def _finetune_config(folder: Path, run: Path) -> dict[str, Any]:
    """The fine-tune config of a finished result (its own folder, else the sweep's)."""
    for candidate in (folder, run):
        cfg = (read_json(candidate / "config.json") or {}).get("config")
        if cfg:
            return cfg
    return {}


def finished_results(root: str | Path | None = None) -> list[FinishedRun]:
    """Finished fine-tunes (own runs and each point of a sweep) with their ``result.json``, newest first."""
    from core.training.finetune_result import FinetuneResult

    root = Path(root) if root is not None else runs_root()
    out: list[FinishedRun] = []
    if not root.is_dir():
        return out
    for run in sorted(root.iterdir(), reverse=True):
        if not run.is_dir() or run.name.startswith("."):
            continue
        spec = read_json(run / "config.json") or {}
        if spec.get("kind") == "finetune":
            candidates = [(run, run.name)]
        elif spec.get("kind") == "sweep":
            subs = sorted(run.glob("p*/result.json"), key=lambda q: -int(q.parent.name[1:] or 0))
            candidates = [(q.parent, f"{run.name} / {q.parent.name}") for q in subs]
        else:
            continue
        pre = read_json(run / "pretrained_convexity.json") or {}
        for folder, label in candidates:
            data = read_json(folder / "result.json")
            if not data:
                continue
            try:
                result = FinetuneResult.from_dict(data)
            except (KeyError, TypeError, ValueError):
                continue  # damaged or foreign result.json: not a finished run to compare
            cfg = _finetune_config(folder, run)
            p = result.prune_point
            n = pre.get("n_layers") or _registry_layers(result.model)
            own = (read_json(folder / "config.json") or {}).get("config", {})
            if own.get("prune_point") is None and spec.get("kind") == "finetune":
                n = p  # a full-model run
            out.append(
                FinishedRun(
                    id=label,
                    path=folder,
                    run=run,
                    pruned=n is not None and p < n,
                    depth=n,
                    result=result,
                    config=cfg,
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
    """One prune point of a sweep: test accuracy (headline), validation accuracy (selection), its cost."""

    prune_point: int
    suggested: bool
    test: Score | None
    validation: Score
    params_total: int
    cost: CostRatio | None  # this point's own benchmark: pruned / full training step
    benchmark_id: str | None = None

    @property
    def headline(self) -> Score:
        """Test accuracy when measured, else the selection split's (labelled by its split)."""
        return self.test if self.test is not None else self.validation


@dataclass(frozen=True)
class SweepView:
    """A sweep's rows, suggested point, rule fraction and pretrained curves (``{"scores", "sems"}``)."""

    run_id: str
    model: str
    task: str
    suggested: int | None
    fraction: float | None
    rows: tuple[SweepRow, ...]
    pretrained: dict[str, dict[str, list[float]]]
    seed: int | None = None

    def table(self) -> list[dict[str, Any]]:
        """Rows for a table a person reads: test first, validation labelled as the selection metric."""
        out = []
        for r in self.rows:
            out.append(
                {
                    "prune point": r.prune_point,
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


def sweep_view(run: str | Path) -> SweepView | None:
    """A sweep's rows, suggested point and pretrained curves (None if it has no results yet)."""
    run = Path(run)
    res = read_json(run / "results.json")
    pre = read_json(run / "pretrained_convexity.json")
    if not res or not res.get("rows"):
        return None
    spec = read_json(run / "config.json") or {}
    cfg = spec.get("config", {})
    eval_split = res.get("eval_split") or cfg.get("eval_split") or "validation"
    test_split = res.get("test_split") or cfg.get("test_split") or "test"
    rows = []
    for r in sorted(res["rows"], key=lambda r: r["prune_point"]):
        p = int(r["prune_point"])
        point = read_json(run / f"p{p}" / "result.json") or {}
        rows.append(
            SweepRow(
                prune_point=p,
                suggested=bool(r.get("suggested")),
                test=_score(r.get("test_accuracy"), test_split, point.get("n_test")),
                validation=Score(
                    float(r["accuracy"]), str(eval_split), int(point.get("n_eval") or 0)
                ),
                params_total=int(r.get("params_total") or 0),
                cost=_cost_ratio(read_json(run / f"benchmark_p{p}.json")),
                benchmark_id=f"{run.name} / benchmark_p{p}"
                if (run / f"benchmark_p{p}.json").exists()
                else None,
            )
        )
    return SweepView(
        run_id=run.name,
        model=str(res.get("model") or cfg.get("model") or ""),
        task=str(cfg.get("task", res.get("task", "words"))),
        suggested=res.get("suggested"),
        fraction=res.get("fraction", cfg.get("fraction")),
        rows=tuple(rows),
        pretrained=(pre or {}).get("curves") or res.get("pretrained_convexity") or {},
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
    for run in runs.iterdir() if runs.is_dir() else []:
        if not run.is_dir() or run.name.startswith("."):
            continue
        data = read_json(run / "benchmark.json")
        if data:
            found.append(
                (run.name, SavedBenchmark(run.name, run / "benchmark.json", data, run.name))
            )
        for path in run.glob("benchmark_p*.json"):
            data = read_json(path)
            if data:
                bid = f"{run.name} / {path.stem}"
                found.append((run.name, SavedBenchmark(bid, path, data, run.name)))
    for folder in base.iterdir() if base.is_dir() else []:
        data = read_json(folder / "benchmark.json")
        if data:
            found.append(
                (folder.name, SavedBenchmark(folder.name, folder / "benchmark.json", data))
            )
    for _, saved in sorted(found, key=lambda t: (t[0], t[1].id), reverse=True):
        out.append(saved)
    return out
