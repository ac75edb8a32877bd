"""Home, Prune sweep and Learn pages through Streamlit's AppTest (real script runs, a private cache).

The sweep launcher test submits a real background sweep job and cancels it at once (its worker is killed
before it trains); the result view is read from a finished-run folder written the way ``run_sweep`` writes
one, so the plot, both prune-point rules and the per-point progress are checked without training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import runs as run_store
from core.io.atomic import atomic_write_json
from core.models.whisper_offline import offline_whisper_available
from core.runs import lifecycle

APP = "../app.py"
MODEL = "whisper-tiny.en-offline"


@pytest.fixture()
def cache(private_cache: Path) -> Path:
    """A private, empty cache folder for the app and the jobs it starts."""
    return private_cache


def open_page(path: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    if path:
        at.switch_page(path).run()
        assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "info") for e in at.get(kind))


def test_home_is_first_and_explains_the_tool(cache: Path):
    at = open_page()  # the default page
    assert at.title[0].value == "Convexity Lab"
    body = texts(at)
    assert "2408.11858" in body and "Dorszewski" in body and "Tětková" in body
    assert "Convexity-based Pruning of Speech Representation Models" in body
    links = [e.proto.page for e in at.get("page_link")]
    for page in ("setup", "convexity", "sweep", "benchmarks"):
        assert any(page in link for link in links), (page, links)
    # the curve figure is drawn from the bundled sample's stored curves, with their numbers in the text
    stored = json.loads(
        (Path(__file__).parents[1] / "data/sample/convexity_curves.json").read_text()
    )
    model = next(iter(stored["models"]))
    assert len(at.get("plotly_chart")) == 1
    speaker = stored["models"][model]["speaker"]["scores"]
    assert f"{max(speaker):.2f}" in body
    at.radio(key="home_model").set_value(list(stored["models"])[-1]).run()
    assert not at.exception


@pytest.mark.skipif(not offline_whisper_available(MODEL), reason=f"{MODEL} not installed")
def test_sweep_launcher_submits_a_background_sweep(cache: Path):
    at = open_page("pages/sweep.py")
    assert any("No sweep yet" in c.value for c in at.caption)
    at.selectbox(key="sw_model").set_value(MODEL)
    at.radio(key="sw_task").set_value("speakers")
    at.multiselect(key="sw_points").set_value([2])
    at.number_input(key="sw_epochs").set_value(1)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    runs = [r for r in run_store.list_runs() if r.kind == "sweep"]
    assert len(runs) == 1
    run = runs[0]
    try:
        cfg = run.config
        assert cfg["points"] == ["suggested", "full", 2]
        assert (cfg["task"], cfg["model"], cfg["epochs"]) == ("speakers", MODEL, 1)
        assert (cfg["eval_split"], cfg["test_split"]) == ("validation", "test")
        assert any("started in the background" in s.value for s in at.success)
        assert at.selectbox(key="sw_pick").value == run.run_id
    finally:
        lifecycle.cancel(run.run_id, force=True, timeout=10)
    assert run_store.status(run.run_id).state == "cancelled"


def write_finished_sweep(run: Path) -> None:
    """A sweep folder as ``run_sweep`` leaves it: pretrained curves, per-point result and metrics, table."""
    pre = {
        "split": "train",
        "n_clips": 100,
        "n_layers": 4,
        "curves": {
            "speaker": {"scores": [0.6, 0.78, 0.6, 0.3, 0.13], "sems": [0.01] * 5},
            "word": {"scores": [0.1, 0.2, 0.5, 0.8, 0.9], "sems": [0.01] * 5},
        },
    }
    atomic_write_json(run / "pretrained_convexity.json", pre)
    rows = []
    for p, acc in ((1, 0.9), (4, 0.92)):
        sub = run / f"p{p}"
        sub.mkdir()
        lines = [{"kind": "eval", "epoch": 1, "accuracy": acc - 0.05}]
        (sub / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        atomic_write_json(sub / "result.json", {"best_accuracy": acc, "test_accuracy": acc - 0.01})
        rows.append(
            {
                "prune_point": p,
                "suggested": p == 1,
                "accuracy": acc,
                "test_accuracy": acc - 0.01,
                "params_total": 1e6 * p,
                "train_step_seconds": 0.01 * p,
            }
        )
    atomic_write_json(
        run / "results.json",
        {"suggested": 1, "fraction": 0.95, "rows": rows, "pretrained_convexity": pre["curves"]},
    )


def test_sweep_page_shows_progress_plot_and_both_rules(cache: Path):
    run = lifecycle.create_run(
        "sweep", {"model": MODEL, "task": "speakers", "epochs": 1, "points": ["suggested", "full"]}
    )
    write_finished_sweep(run)
    lifecycle.cancel(run.name, force=True)  # never started: recorded as cancelled, files stay
    at = open_page("pages/sweep.py")
    progress = at.dataframe[0].value
    assert list(progress["prune point"]) == [1, 4] and set(progress["state"]) == {"done"}
    assert len(at.get("plotly_chart")) == 1
    info = " ".join(i.value for i in at.info)
    assert "p = 1" in info and "Local-peak rule" in info


def test_learn_default_pair_leaves_its_class_and_steps_forward(cache: Path):
    at = open_page("pages/learn.py")
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["This path's score"]) < 1.0  # the default path leaves the class
    assert at.radio(key="ln_shape").value == "moons"
    assert any("step 1 of 4" in m.value for m in at.markdown)
    for n in (2, 3, 4):
        at.button(key="ln_next").click().run()
        assert not at.exception, at.exception
        assert any(f"step {n} of 4" in m.value for m in at.markdown)
    formulas = " ".join(e.value for e in at.get("latex"))
    assert "pair score" in formulas and "graph convexity" in formulas
    assert at.button(key="ln_next").disabled
    at.button(key="ln_back").click().run()
    assert any("step 3 of 4" in m.value for m in at.markdown)
    # choosing another class resets the pair and the step-through stays consistent
    at.radio(key="ln_shape").set_value("blobs").run()
    assert not at.exception, at.exception
    assert float(next(m.value for m in at.metric if m.label.startswith("Graph convexity"))) > 0.9
