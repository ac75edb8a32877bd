"""Prune sweep page through AppTest: the launch form, identical launches, resume, data source, progress.

Workers are not spawned here (``lifecycle.start`` is replaced by a recorder): a launched run stays queued,
which is what the page must handle; real workers are covered by tests/test_jobs.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core import runs as run_store
from core.data.features import FeatureInfo
from core.io.atomic import atomic_write_json
from core.io.processes import proc_start
from core.runs import lifecycle
from core.runs.folders import RunState, set_state

APP = "../app.py"
MODEL = "whisper-tiny.en-offline"


def open_sweep() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    return at


def _walk(node: Any):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _forms(at: AppTest) -> dict[str, Any]:
    forms = {}
    for node in _walk(at._tree):
        proto = getattr(node, "proto", None)
        if type(proto).__name__ == "Block" and proto.WhichOneof("type") == "form":
            forms[proto.form.form_id] = proto.form
    return forms


def _submit(at: AppTest) -> AppTest:
    at.multiselect(key="sw_points").set_value([2])
    at.number_input(key="sw_epochs").set_value(1)
    next(b for b in at.button if b.label == "Start sweep").click().run()
    assert not at.exception, at.exception
    return at


def _sweeps() -> list[run_store.RunStatus]:
    return [r for r in run_store.list_runs() if r.kind == "sweep"]


def test_enter_never_submits_and_learning_rate_steps_through_sensible_values(started):
    """Enter in the learning rate or epochs field started three sweeps; +/- on 5e-4 stepped by 0.01."""
    at = open_sweep()
    assert _forms(at)["sw_form"].enter_to_submit is False
    lr = at.select_slider(key="sw_lr")
    assert lr.value == 5e-4 and "1e-04" in lr.options and "5e-04" in lr.options
    lr.set_value(1e-4)
    _submit(at)
    (run,) = _sweeps()
    assert run.config["lr"] == 1e-4


def test_identical_launch_asks_first_and_toast_names_the_shown_run(started):
    at = open_sweep()
    _submit(at)
    (first,) = _sweeps()
    assert at.selectbox(key="sw_pick").value == first.run_id
    _submit(at)  # the same settings again, while the first is queued
    assert [r.run_id for r in _sweeps()] == [first.run_id]  # nothing started yet
    assert any(first.run_id in w.value and "identical" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Start another identical sweep").click().run()
    assert not at.exception, at.exception
    second = next(r for r in _sweeps() if r.run_id != first.run_id)
    assert started == [first.run_id, second.run_id]
    # the message and the view name the same run, even though the old one was picked before
    assert any(second.run_id in s.value for s in at.success)
    assert at.selectbox(key="sw_pick").value == second.run_id
    assert second.run_id in " ".join(m.value for m in at.markdown)


def test_a_cancelled_sweep_resumes_in_its_folder(started):
    run = lifecycle.create_run("sweep", {"model": MODEL, "task": "speakers", "epochs": 1})
    lifecycle.cancel(run.name)
    assert run_store.status(run.name).state == "cancelled"
    at = open_sweep()
    next(b for b in at.button if b.label == "Resume sweep").click().run()
    assert not at.exception, at.exception
    assert run_store.status(run.name).state == "queued" and started == [run.name]


def test_sweep_trains_on_the_feature_sets_folder_and_speaker_rule(
    started, monkeypatch, tiny_assets
):
    """The folder lives at meta['root'] (not in meta['selection']): the sweep config must carry it."""
    from pages.parts import cached

    folder = str(tiny_assets["data"])
    meta = {
        "dataset": "folder",
        "root": folder,
        "selection": {
            "dataset": "folder",
            "speaker_regex": r"^(?P<speaker>spk\d)_",
            "split_seed": 2,
        },
    }
    info = FeatureInfo.from_dict(
        {
            "key": "abc123",
            "model_key": "",
            "model_id": "",
            "describe": "",
            "family": "",
            "input_mode": "",
            "n_layers": 4,
            "hidden_size": 8,
            "n_clips": 12,
            **meta,
        }
    )
    monkeypatch.setattr(cached, "feature_set", lambda key: SimpleNamespace(meta=meta, info=info))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.session_state["feature_key"] = "abc123"
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    _submit(at)
    (run,) = _sweeps()
    assert run.config["root"] == folder and run.config["dataset"] == "folder"
    assert run.config["speaker_regex"] == r"^(?P<speaker>spk\d)_" and run.config["split_seed"] == 2


def test_progress_says_final_evaluation_not_zero_seconds(started, tmp_path: Path):
    run = lifecycle.create_run("sweep", {"model": MODEL, "task": "speakers", "epochs": 1})
    sub = run / "p2"
    sub.mkdir()
    rows = [
        {"kind": "train", "step": 1, "epoch": 1, "loss": 1.0, "epoch_progress": 0.5, "time": 100.0},
        {"kind": "train", "step": 2, "epoch": 1, "loss": 0.9, "epoch_progress": 1.0, "time": 102.0},
        {
            "kind": "eval",
            "step": 2,
            "epoch": 1,
            "epoch_seconds": 4.0,
            "accuracy": 0.6,
            "loss": 0.8,
            "time": 103.0,
        },
    ]
    (sub / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    worker = subprocess.Popen(["sleep", "60"])  # a live worker: the run is running
    try:
        set_state(
            run,
            RunState.RUNNING,
            pid=worker.pid,
            pid_start=proc_start(worker.pid),
            started_at="2026-01-01T00:00:00+00:00",
        )
        at = open_sweep()
        table = at.dataframe[0].value
        row = table[table["prune point"] == 2].iloc[0]
        assert row["time left"] == "final evaluation..." and row["state"] == "final evaluation"
        assert row["validation accuracy (selection)"] == 0.6
    finally:
        worker.kill()
        worker.wait()


def test_cost_bars_stand_on_measured_points_only(private_cache: Path) -> None:
    """One measured point of three: one narrow bar at p = 1, the axis whole numbers over every point."""
    from core.runs.views import sweep_view
    from pages.parts.costs import sweep_cost_figure

    run = lifecycle.create_run("sweep", {"model": MODEL, "task": "speakers", "epochs": 1})
    rows = [
        {"prune_point": p, "suggested": p == 1, "accuracy": 0.6, "params_total": 1e6 * p}
        for p in (1, 2, 4)
    ]
    atomic_write_json(run / "results.json", {"suggested": 1, "fraction": 0.95, "rows": rows})
    bench = {"rows": [{"metric": "train_step_seconds", "ratio": 0.4, "reliable": True}]}
    atomic_write_json(run / "benchmark_p1.json", bench)
    fig = sweep_cost_figure(sweep_view(run))
    (bar,) = fig.data
    assert list(bar.x) == [1] and bar.width <= 0.4
    lo, hi = bar.x[0] - bar.width / 2, bar.x[0] + bar.width / 2
    assert lo > 0.5 and hi < 1.5  # the bar does not reach the next point
    axis = fig.layout.xaxis
    assert axis.dtick == 1 and axis.tickformat == "d" and list(axis.range) == [0.7, 4.3]


def test_a_plan_point_is_its_own_marker_not_a_point_of_the_top_p_line(private_cache: Path) -> None:
    """``drop 2-3`` keeps 2 layers like p = 2: the accuracy line runs over p = 1, 2, 4 only, the plan
    is a marker of its own at x = 2 named by its plan, and its cost is not a bar over p = 2's."""
    from core.runs.views import sweep_view
    from pages.parts.costs import sweep_cost_figure, sweep_result_figure

    run = lifecycle.create_run("sweep", {"model": MODEL, "task": "speakers", "epochs": 1})
    rows = [
        {"prune_point": p, "suggested": p == 1, "accuracy": 0.1 * p, "test_accuracy": 0.1 * p}
        for p in (1, 2, 4)
    ]
    rows.append({"prune_point": 2, "accuracy": 0.9, "test_accuracy": 0.9, "plan": "drop 2-3"})
    atomic_write_json(run / "results.json", {"suggested": 1, "fraction": 0.95, "rows": rows})
    (run / "pL4-k1.4").mkdir()
    atomic_write_json(
        run / "pL4-k1.4" / "config.json", {"kind": "finetune", "config": {"plan": "drop 2-3"}}
    )
    for name, ratio in (("2", 0.5), ("L4-k1.4", 0.6)):
        bench = {"rows": [{"metric": "train_step_seconds", "ratio": ratio, "reliable": True}]}
        atomic_write_json(run / f"benchmark_p{name}.json", bench)
    view = sweep_view(run)
    traces = {t.name: t for t in sweep_result_figure(view).data}
    line = traces["fine-tuned test accuracy"]
    assert list(line.x) == [1, 2, 4] and list(line.y) == pytest.approx([0.1, 0.2, 0.4])
    (planned,) = [t for n, t in traces.items() if "plan" in n]
    assert (list(planned.x), list(planned.y), list(planned.text)) == ([2], [0.9], ["drop 2-3"])
    (bar,) = sweep_cost_figure(view).data
    assert (list(bar.x), list(bar.y)) == ([2], [0.5])


def test_the_form_keeps_its_values_and_limits_clips(started) -> None:
    """A clip limit as the fine-tune form has one; the values entered survive a visit to another page."""
    at = open_sweep()
    at.number_input(key="sw_train_clips").set_value(70)
    at.number_input(key="sw_eval_clips").set_value(35)
    at.number_input(key="sw_test_clips").set_value(35)
    _submit(at)
    (sweep,) = _sweeps()
    assert sweep.config["max_train_clips"] == 70
    assert (sweep.config["max_eval_clips"], sweep.config["max_test_clips"]) == (35, 35)
    at.switch_page("pages/benchmarks.py").run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    assert at.number_input(key="sw_epochs").value == 1
    assert at.number_input(key="sw_train_clips").value == 70
    assert at.multiselect(key="sw_points").value == [2]


def test_a_double_click_shows_the_new_sweep_not_the_old_one(started) -> None:
    """The second click of a double click arrives with the picker still on the old sweep."""
    old = lifecycle.create_run("sweep", {"model": MODEL, "task": "words", "epochs": 2})
    lifecycle.cancel(old.name)
    at = open_sweep()
    _submit(at)
    new = next(r.run_id for r in _sweeps() if r.run_id != old.name)
    at.selectbox(key="sw_pick").set_value(old.name)  # what the browser still showed
    _submit(at)
    assert at.selectbox(key="sw_pick").value == new
    assert new in " ".join(m.value for m in at.markdown)
    label = at.selectbox(key="sw_pick").format_func(new)
    assert "sample" in label and "speakers" in label  # its data set and task, not the bare id


def test_a_plan_in_the_url_is_a_point_of_the_launched_sweep(started) -> None:
    """``/sweep?plan=drop+2`` prefills the plan field; the sweep launched from it sweeps that plan
    beside the suggested point and the full model, in the words results name it by."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["plan"] = "keep 1, 3-4"
    at.run().switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    assert at.text_input(key="sw_plan").value == "keep 1, 3-4"
    _submit(at)
    (sweep,) = _sweeps()
    assert sweep.config["points"] == ["suggested", "full", 2, "drop 2"]
