"""Benchmarks page through AppTest: test accuracy first, exports with provenance, the benchmark as a job,
an out-of-range prune point, reliability in measured terms, each sweep point's own cost ratio.

Run folders are written the way the workers write them; ``lifecycle.start`` is replaced by a recorder, so a
launched benchmark stays queued (real benchmark workers: tests/test_jobs.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import runs as run_store
from core.io.atomic import atomic_write_json
from core.runs import lifecycle
from core.runs.views import comparison_source, finished_results
from core.training.configs import BenchmarkConfig
from tests.helpers.builders import BENCHMARK_MODEL as MODEL
from tests.helpers.builders import saved_benchmark

APP = "../app.py"


def open_benchmarks() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    return at


def _finetune(prune_point: int | None, val: float, test: float, seed: int) -> Path:
    run = lifecycle.create_run(
        "finetune", {"model": MODEL, "prune_point": prune_point, "seed": seed}
    )
    p = prune_point or 4
    atomic_write_json(
        run / "result.json",
        {
            "model": MODEL,
            "task": "speakers",
            "prune_point": p,
            "n_layers": p,
            "best_accuracy": val,
            "n_eval": 35,
            "eval_split": "validation",
            "test_split": "test",
            "test_accuracy": test,
            "n_test": 315,
            "params": {"total": 8e6 if p == 4 else 3e6},
            "train_seconds": 60.0,
        },
    )
    lifecycle.cancel(run.name)  # never started: its status is final, its files stay
    return run


def test_test_accuracy_is_the_headline_and_exports_name_their_runs(started):
    """'accuracy (best epoch) 91.4% vs 82.9%' was validation on 35 clips; test (315 clips) was absent."""
    full = _finetune(None, 0.914, 0.902, seed=0)
    pruned = _finetune(1, 0.829, 0.870, seed=0)
    at = open_benchmarks()
    table = at.table[0].value
    assert list(table.index[:2]) == ["test accuracy", "validation accuracy (selection)"]
    assert table.loc["test accuracy", "full model"] == "90.2% (test, 315 clips)"
    assert table.loc["test accuracy", "pruned model"] == "87.0% (test, 315 clips)"
    assert (
        table.loc["validation accuracy (selection)", "full model"] == "91.4% (validation, 35 clips)"
    )
    by_id = {f.id: f for f in finished_results()}
    source = comparison_source(by_id[full.name], by_id[pruned.name])
    assert (source["full_run"], source["pruned_run"]) == (full.name, pruned.name)
    assert source["model"] == MODEL and source["scored_split"] == "test"
    assert source["full_scored_clips"] == 315 and source["full_seed"] == 0
    assert source["code_version"] and source["exported_at"]


def test_benchmark_is_a_background_job_with_the_cli_defaults(started):
    at = open_benchmarks()
    at.selectbox(key="bm_model").set_value(MODEL)
    at.number_input(key="bm_point").set_value(2)
    at.button(key="bm_go").click().run()
    assert not at.exception, at.exception
    (run,) = [r for r in run_store.list_runs() if r.kind == "benchmark"]
    assert started == [run.run_id]  # a worker process, not a thread of the server
    assert run.config == BenchmarkConfig(model=MODEL, prune_point=2).to_dict()
    at.button(key="bm_go").click().run()  # the same benchmark again while it is queued
    assert [r.run_id for r in run_store.list_runs() if r.kind == "benchmark"] == [run.run_id]
    assert any(run.run_id in i.value and "already" in i.value for i in at.info)


def test_out_of_range_prune_point_is_refused_not_clamped(started):
    at = open_benchmarks()
    at.selectbox(key="bm_model").set_value(MODEL)
    at.number_input(key="bm_point").set_value(9)
    at.button(key="bm_go").click().run()
    assert not at.exception, at.exception
    assert any("prune point 9 is out of range" in e.value and "1..4" in e.value for e in at.error)
    assert not [r for r in run_store.list_runs() if r.kind == "benchmark"] and not started


def test_unreliable_benchmark_names_what_was_measured_not_a_steady_load(started):
    run = lifecycle.create_run("benchmark", BenchmarkConfig(model=MODEL, prune_point=1).to_dict())
    saved_benchmark(run, (0.5, 0.5, 0.5))
    lifecycle.cancel(run.name)
    at = open_benchmarks()
    warning = " ".join(w.value for w in at.warning)
    assert "x0.15-2.68" in warning and "Load steady" in warning and "does not explain" in warning
    assert "quieter" not in warning


def test_sweep_cost_is_each_points_own_ratio_and_no_whisker_squashes_it(started):
    run = lifecycle.create_run("sweep", {"model": MODEL, "task": "speakers", "epochs": 1})
    rows = []
    for p, ratio, high in ((1, 0.28, 31.78), (2, 0.5, 0.55), (4, 1.0, 1.04)):
        rows.append(
            {
                "prune_point": p,
                "suggested": p == 1,
                "accuracy": 0.667,
                "test_accuracy": 0.70,
                "params_total": 1e6 * p,
                "train_step_seconds": 0.564 if p == 1 else 0.332,
            }
        )
        bench = {
            "rows": [
                {
                    "metric": "train_step_seconds",
                    "label": "training step",
                    "ratio": ratio,
                    "ratio_min": ratio * 0.9,
                    "ratio_max": high,
                    "reliable": high < 2,
                }
            ]
        }
        atomic_write_json(run / f"benchmark_p{p}.json", bench)
    atomic_write_json(run / "results.json", {"suggested": 1, "fraction": 0.95, "rows": rows})
    lifecycle.cancel(run.name)
    at = open_benchmarks()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    cost = next(
        c for c in charts if c["data"][0].get("type") == "bar" and c["data"][0]["x"] == [1, 2, 4]
    )
    assert cost["data"][0]["y"] == [0.28, 0.5, 1.0]  # own ratios, not 0.564 / 0.332
    upper = cost["layout"]["yaxis"]["range"][1]
    assert 1.0 < upper < 3.0  # the bulk decides the axis, not the 31.78 whisker
    assert any(
        "31.78" in a["text"] and "clipped" in a["text"] for a in cost["layout"]["annotations"]
    )
    # counted axes show whole numbers only: prune points 1..4, no 0.5 ticks, no tick past the last
    for chart in charts:
        if chart["data"] and chart["data"][0].get("x") and "xaxis" in chart["layout"]:
            axis = chart["layout"]["xaxis"]
            if axis.get("title", {}).get("text", "").startswith("prune point"):
                assert axis["tickformat"] == "d" and axis["dtick"] == 1, axis
    assert cost["layout"]["xaxis"]["range"] == [0.7, 4.3]
    table = at.dataframe[0].value
    assert list(table["train step, pruned / full"]) == [0.28, 0.5, 1.0]
    assert "test accuracy" in table.columns and "validation accuracy (selection)" in table.columns


def test_exports_download_without_a_rerun(started):
    """A click that reran the page could lose the file's answer: the button spun for minutes."""
    at = open_benchmarks()
    buttons = at.get("download_button")
    assert {b.proto.label for b in buttons} >= {"Everything shown (JSON)", "Full vs pruned (CSV)"}
    assert all(b.proto.ignore_rerun for b in buttons)


def test_the_cost_form_keeps_its_values_across_pages(started):
    at = open_benchmarks()
    at.number_input(key="bm_repeats").set_value(7).run()
    at.number_input(key="bm_point").set_value(3).run()
    at.switch_page("pages/sweep.py").run()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    assert at.number_input(key="bm_repeats").value == 7
    assert at.number_input(key="bm_point").value == 3


def test_a_plan_in_the_url_is_the_benchmarked_pruned_side(started):
    """``/benchmarks?plan=drop+2`` prefills the plan field; the benchmark launched from it times that
    plan (not the prune point) against the full model, and its saved result names the plan."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["plan"] = "keep 1, 3-4"
    at.run().switch_page("pages/benchmarks.py").run()
    at.selectbox(key="bm_model").set_value(MODEL).run()
    assert not at.exception, at.exception
    assert at.text_input(key="bm_plan").value == "keep 1, 3-4"
    at.button(key="bm_go").click().run()
    (run,) = [r for r in run_store.list_runs() if r.kind == "benchmark"]
    assert (run.config["plan"], run.config["prune_point"]) == ("drop 2", None)
    assert started == [run.run_id]
    folder = run_store.run_dir(run.run_id)
    saved_benchmark(folder, (0.5, 0.5, 0.5))
    data = json.loads((folder / "benchmark.json").read_text())
    atomic_write_json(folder / "benchmark.json", {**data, "prune_point": 3, "plan": "drop 2"})
    lifecycle.cancel(run.run_id)
    at.text_input(key="bm_plan").set_value("drop 1-4").run()  # every layer: refused, nothing starts
    assert any("leaves no model" in e.value for e in at.error)
    assert at.button(key="bm_go").disabled
    captions = " ".join(c.value for c in at.caption)
    assert "vs pruned to drop 2 (3 layers)" in captions
