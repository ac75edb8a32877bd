"""core.runs.views: finished runs and sweeps as typed views (test accuracy first, each point's own cost ratio); parameter counts per prune point (core.models)."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
from pathlib import Path

import pytest

import core.runs.views
from core import runs
from core.models.pruning import params_by_prune_point
from core.models.whisper_offline import offline_whisper_available
from core.runs.metrics import metrics_of
from core.runs.records import median_epoch_seconds
from core.runs.views import (
    CostRatio,
    FinishedRun,
    Score,
    SweepView,
    finished_results,
    ratio_axis,
    sweep_view,
)

MODEL = "whisper-tiny.en-offline"


@pytest.mark.skipif(not offline_whisper_available(MODEL), reason=f"{MODEL} weights not installed")
def test_params_by_prune_point_matches_real_pruning():
    from core.models.loading import load_encoder
    from core.models.pruning import count_parameters, prune

    enc = load_encoder(MODEL, device="cpu")
    table = params_by_prune_point(enc)
    assert sorted(table) == list(range(1, enc.n_layers + 1))
    for p in (1, 2, enc.n_layers):
        model = copy.deepcopy(enc.model)
        prune(model, p)
        assert table[p] == count_parameters(model)


def test_views_do_not_import_pruning():
    """Read-only views of run folders know nothing of pruning or model weights."""
    tree = ast.parse(Path(core.runs.views.__file__).read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("core.models.pruning") for m in modules), modules


def _result(prune_point: int, n_layers: int, **kw) -> dict:
    """A result.json as a fine-tune writes it: validation (selection) and test scores with clip counts."""
    return {
        "model": MODEL,
        "task": "speakers",
        "prune_point": prune_point,
        "n_layers": n_layers,
        "best_accuracy": 0.914,
        "n_eval": 35,
        "eval_split": "validation",
        "test_split": "test",
        "test_accuracy": 0.902,
        "n_test": 315,
        **kw,
    }


def test_finished_results_and_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    run = tmp_path / "runs" / "20200101-000000-finetune-m-abc"
    run.mkdir(parents=True)
    cfg = {"kind": "finetune", "config": {"model": MODEL, "prune_point": 2, "seed": 3}}
    (run / "config.json").write_text(json.dumps(cfg))
    result = _result(2, 2)
    (run / "result.json").write_text(json.dumps(result))
    (run / "train.log").write_text("a\nb\nfailed: boom\n")
    (tmp_path / "runs" / "not-a-run").mkdir()
    found = finished_results(tmp_path / "runs")
    assert [f.id for f in found] == [run.name]
    assert isinstance(found[0], FinishedRun)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].pruned = False  # type: ignore[misc]
    assert found[0].pruned is True and "p=2/4" in found[0].label
    assert found[0].config["seed"] == 3
    assert runs.log_tail(run.name, 1).endswith("failed: boom")
    typed = runs.result(run.name)  # the run's typed result, as the page shows it
    assert typed is not None and typed.best_accuracy == result["best_accuracy"]
    assert runs.convexity(run.name) is None


def test_finished_run_headline_is_test_accuracy_with_its_clips(tmp_path: Path):
    """The label and the headline score are the test split's (315 clips), not validation's 0.914."""
    run = tmp_path / "runs" / "20200101-000000-finetune-m-abc"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"kind": "finetune", "config": {"model": MODEL}}))
    (run / "result.json").write_text(json.dumps(_result(4, 4)))
    (found,) = finished_results(tmp_path / "runs")
    assert found.test == Score(0.902, "test", 315)
    assert found.validation == Score(0.914, "validation", 35)
    assert "test 0.902 (315 clips)" in found.label and "0.914" not in found.label
    assert found.pruned is False


def test_a_plan_runs_label_and_export_name_its_plan(tmp_path: Path):
    """A fine-tune of ``drop 2-3`` is a pruned run whose label and comparison export say ``drop 2-3``
    (not ``p=2/4``, which keeps other layers)."""
    root = tmp_path / "runs"
    for name, config, result in (
        ("20200101-000000-finetune-full", {"model": MODEL}, _result(4, 4)),
        (
            "20200101-000001-finetune-plan",
            {"model": MODEL, "plan": "drop 2-3"},
            _result(2, 2, plan="drop 2-3"),
        ),
    ):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps({"kind": "finetune", "config": config}))
        (root / name / "result.json").write_text(json.dumps(result))
    planned, full = finished_results(root)
    assert planned.pruned and not full.pruned
    assert " drop 2-3 " in planned.label and "p=2/4" not in planned.label
    source = core.runs.views.comparison_source(full, planned)
    assert (source["pruned_layers"], source["full_layers"]) == ("drop 2-3", "p=4/4")


def _bench_rows(ratio: float, low: float, high: float, reliable: bool = True) -> dict:
    return {
        "rows": [
            {
                "metric": "train_step_seconds",
                "label": "training step (batch 8)",
                "full": 0.33,
                "pruned": 0.33 * ratio,
                "ratio": ratio,
                "ratio_min": low,
                "ratio_max": high,
                "reliable": reliable,
                "note": "",
            }
        ]
    }


def test_sweep_view_plots_each_points_own_ratio_not_separate_times(tmp_path: Path):
    """p = 1's separate benchmark timed its pruned side at 0.564 s and p = 4's full at 0.332 s: the
    view must carry p = 1's own side-by-side ratio (x0.28), not 0.564 / 0.332."""
    run = tmp_path / "runs" / "20200101-000000-sweep-m-abc"
    run.mkdir(parents=True)
    (run / "config.json").write_text(
        json.dumps({"kind": "sweep", "config": {"model": MODEL, "task": "speakers", "seed": 1}})
    )
    rows = [
        {
            "prune_point": 1,
            "suggested": True,
            "accuracy": 0.667,
            "test_accuracy": 0.70,
            "params_total": 1e6,
            "train_step_seconds": 0.564,
        },
        {
            "prune_point": 4,
            "suggested": False,
            "accuracy": 0.838,
            "test_accuracy": 0.817,
            "params_total": 4e6,
            "train_step_seconds": 0.332,
        },
    ]
    (run / "results.json").write_text(json.dumps({"suggested": 1, "rows": rows}))
    (run / "benchmark_p1.json").write_text(json.dumps(_bench_rows(0.28, 0.25, 0.31)))
    (run / "benchmark_p4.json").write_text(json.dumps(_bench_rows(1.0, 0.97, 1.04)))
    for p, n_test in ((1, 315), (4, 315)):
        (run / f"p{p}").mkdir()
        (run / f"p{p}" / "result.json").write_text(json.dumps(_result(p, p, n_test=n_test)))
    view = sweep_view(run)
    assert isinstance(view, SweepView)
    p1, p4 = view.rows
    assert p1.cost == CostRatio(
        "train_step_seconds", "training step (batch 8)", 0.28, 0.25, 0.31, True
    )
    assert p4.cost.ratio == 1.0
    assert p1.headline == Score(0.70, "test", 315)  # the headline: test, with its clips
    assert p1.validation.accuracy == 0.667
    table = view.table()
    assert table[0]["train step, pruned / full"] == 0.28
    assert (
        table[0]["test accuracy"] == 0.70 and table[0]["validation accuracy (selection)"] == 0.667
    )


def test_a_sweeps_plan_point_reads_its_own_folder_and_benchmark(tmp_path: Path):
    """``drop 2-3`` keeps 2 layers like p = 2: its row reads the plan's folder and benchmark (found by
    the plan its settings name), never p = 2's, even without the pretrained curve file."""
    run = tmp_path / "runs" / "20200101-000000-sweep-m-abc"
    run.mkdir(parents=True)
    (run / "config.json").write_text(
        json.dumps({"kind": "sweep", "config": {"model": MODEL, "task": "speakers"}})
    )
    rows = [
        {"prune_point": 2, "suggested": True, "accuracy": 0.6, "test_accuracy": 0.61},
        {
            "prune_point": 2,
            "suggested": False,
            "accuracy": 0.7,
            "test_accuracy": 0.72,
            "plan": "drop 2-3",
        },
    ]
    (run / "results.json").write_text(json.dumps({"suggested": 2, "rows": rows}))
    for name, plan, n_test, ratio in (("p2", None, 100, 0.5), ("pL4-k1.4", "drop 2-3", 200, 0.6)):
        (run / name).mkdir()
        spec = {"kind": "finetune", "config": {"model": MODEL, "prune_point": None, "plan": plan}}
        (run / name / "config.json").write_text(json.dumps(spec))
        (run / name / "result.json").write_text(json.dumps(_result(2, 4, n_test=n_test, plan=plan)))
        (run / f"benchmark_{name}.json").write_text(json.dumps(_bench_rows(ratio, ratio, ratio)))
    top, planned = sweep_view(run).rows
    assert (top.plan, top.layers, top.test.n_clips, top.cost.ratio) == (None, "p = 2", 100, 0.5)
    assert (planned.plan, planned.layers, planned.test.n_clips) == ("drop 2-3", "drop 2-3", 200)
    assert planned.cost.ratio == 0.6 and planned.benchmark_id.endswith("benchmark_pL4-k1.4")
    assert [r["layers kept"] for r in sweep_view(run).table()] == ["p = 2", "drop 2-3"]


def test_one_wild_whisker_does_not_squash_the_chart():
    """A 31.78 whisker over bars near 0.3-1 is clipped at the bulk's axis end and marked."""
    axis = ratio_axis([0.28, 0.5, 1.0], [0.31, 31.78, 1.04])
    assert axis.upper < 3
    assert axis.clipped == (False, True, False)
    assert axis.shown_high[1] == axis.upper and axis.shown_high[0] == 0.31
    assert not any(ratio_axis([0.3, 0.9], [0.35, 1.1]).clipped)


def test_one_median_epoch_over_every_attempt(tmp_path: Path):
    """60 s in one view, 63 s in another: the run's facts use the progress view's median (all epochs)."""
    run = tmp_path / "runs" / "20200101-000000-finetune-m-abc"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"kind": "finetune", "config": {"model": MODEL}}))
    (run / "result.json").write_text(json.dumps(_result(4, 4, epoch_seconds_median=60.0)))
    rows = [
        {"kind": "eval", "step": e, "epoch": e, "accuracy": 0.5, "loss": 1.0, "epoch_seconds": s}
        for e, s in ((1, 63.0), (2, 66.0), (3, 60.0))
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (found,) = finished_results(tmp_path / "runs")
    assert found.epoch_seconds_median == 63.0 == median_epoch_seconds(metrics_of(rows))


def test_a_comparison_is_frozen_rows_with_the_headline_first(tmp_path: Path) -> None:
    """The Benchmarks page's comparison shaped in core: test first, selection next, parameters, facts."""
    import dataclasses

    from core.runs.comparison import compare_runs
    from core.runs.views import FinishedRun
    from core.training.finetune_result import FinetuneResult

    def run(name: str, p: int, test: float, seed: int) -> FinishedRun:
        result = FinetuneResult.from_dict(
            {
                "model": "m",
                "task": "words",
                "prune_point": p,
                "n_layers": p,
                "best_accuracy": 0.8,
                "n_eval": 35,
                "eval_split": "validation",
                "test_split": "test",
                "test_accuracy": test,
                "n_test": 315,
                "params": {"total": 1e6 * p},
                "train_seconds": 60.0,
            }
        )
        return FinishedRun(name, tmp_path, tmp_path, p < 4, 4, result, {"seed": seed, "epochs": 2})

    cmp = compare_runs(run("full", 4, 0.9, 0), run("pruned", 2, 0.85, 1))
    assert [r.quantity for r in cmp.rows][:2] == [
        "test accuracy",
        "validation accuracy (selection)",
    ]
    assert cmp.rows[0].change == "-5.0 points" and cmp.rows[0].better == "full ✓"
    assert cmp.rows[2].quantity == "parameters (total)" and cmp.rows[2].better == "pruned ✓"
    assert cmp.differences == ("seed: 0 vs 1",)
    assert [t.run for t in cmp.times] == ["full model", "pruned model"]
    assert cmp.export_rows()[0]["full_run"] == "full" and "code_version" in cmp.export_rows()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cmp.rows[0].better = ""  # type: ignore[misc]
