"""Every dashboard page renders and reacts, driven through Streamlit's AppTest (real script runs).

Features: a 140-clip slice of the bundled sample through the offline Whisper tiny.en, extracted once into a
temporary ``CONVEXITY_LAB_CACHE`` (the converted model directory is linked in when the repo cache has it).
Caching is proven by counting calls of the real engines (wrapped, still run), not by timing reruns.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.data.features import Selection, extract_features
from core.io.paths import REPO_ROOT
from core.models.whisper_offline import offline_whisper_available

MODEL = "whisper-tiny.en-offline"
CLIPS = 140
APP = "../app.py"

needs_model = pytest.mark.skipif(
    not offline_whisper_available(MODEL), reason=f"{MODEL} weights not installed"
)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory, one_thread) -> Path:
    """A private cache for this module (env var set for the module's duration)."""
    root = tmp_path_factory.mktemp("lab-cache")
    models = REPO_ROOT / "cache" / "models"
    if models.is_dir():
        (root / "models").symlink_to(models, target_is_directory=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEXITY_LAB_CACHE", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def feature_key(cache_root: Path) -> str:
    """Key of the cached 140-clip feature set."""
    fs = extract_features(MODEL, Selection.of("sample", max_clips=CLIPS), batch_size=35)
    assert fs.features.shape[0] == CLIPS
    return str(fs.key)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts of the engines the pages run: convexity, UMAP and model loading for extraction (each still runs)."""
    import core.data.features as features
    import core.geometry.convexity as convexity_engine
    import core.geometry.projections as projections

    counter: Counter = Counter()

    def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)  # the results store reads the engine's signature
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        convexity_engine,
        "layerwise_convexity",
        counted("convexity", convexity_engine.layerwise_convexity),
    )
    monkeypatch.setattr(
        projections, "layer_embeddings", counted("umap", projections.layer_embeddings)
    )
    monkeypatch.setattr(
        features, "prepare_encoder", counted("load_encoder", features.prepare_encoder)
    )
    return counter


def forget() -> None:
    """Drop every stored result, in memory and on disk (so the next page run computes)."""
    from core.results.store import list_results, remove_result
    from pages.parts.cached import results_memory

    results_memory().clear()
    for entry in list_results():
        remove_result(entry.key)


def app(key: str | None = None) -> AppTest:
    """A fresh app on its Setup page (first run done) with the shared feature choice set."""
    at = AppTest.from_file(APP, default_timeout=180)
    if key is not None:
        at.session_state["feature_key"] = key
    return at.run().switch_page("pages/setup.py").run()


def page(key: str, path: str) -> AppTest:
    """A fresh app switched to ``path`` and run."""
    at = app(key)
    assert not at.exception
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


@needs_model
def test_setup_page_reuses_cached_features_and_reports_errors(feature_key: str, calls: Counter):
    at = app()
    assert not at.exception
    assert at.selectbox(key="model").value == MODEL
    assert at.radio(key="whisper_input").value == "trimmed"
    assert any(feature_key[:8] in str(df.value) for df in at.dataframe)  # cached sets are listed
    at.number_input(key="max_clips").set_value(CLIPS).run()
    next(b for b in at.button if b.label == "Extract features").click().run()
    assert not at.exception
    assert calls["load_encoder"] == 0  # reused, not recomputed: the model was never loaded
    assert at.session_state["feature_key"] == feature_key, [e.value for e in at.error]
    assert any("loaded from the cache" in s.value for s in at.success)

    at.selectbox(key="dataset").set_value("folder").run()
    at.text_input(key="root").set_value("/nonexistent/audio").run()
    next(b for b in at.button if b.label == "Extract features").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "\n" not in at.error[0].value


def test_setup_page_custom_model_is_opt_in_for_remote_code(cache_root: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without the hub: answer at once
    at = app()
    assert not at.checkbox  # no remote-code switch for registry models
    at.text_input(key="custom_model").set_value("facebook/wav2vec2-base").run()
    assert at.checkbox(key="trust_remote_code").value is False
    next(b for b in at.button if b.label == "Extract features").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "\n" not in at.error[0].value
    assert "offline" in at.error[0].value.lower() or "hub" in at.error[0].value.lower()


@pytest.mark.slow
@needs_model
def test_convexity_page_curves_controls_and_cache(feature_key: str, calls: Counter):
    forget()
    at = page(feature_key, "pages/convexity.py")
    assert calls["convexity"] == 1
    labels = [m.label for m in at.metric]
    assert any(lab == "max word convexity" for lab in labels)
    assert any(lab == "prune point (speaker)" for lab in labels)
    assert len(at.get("plotly_chart")) == 2  # curves + heatmap
    prune = next(m.value for m in at.metric if m.label == "prune point (word)")

    at.slider(key="cx_fraction").set_value(0.6).run()
    assert not at.exception
    assert int(next(m.value for m in at.metric if "(word)" in m.label)[4:]) <= int(prune[4:])
    assert calls["convexity"] == 1  # the prune rule only reads the curves
    captions = " ".join(c.value for c in at.caption)
    assert "exact (exhaustive)" in captions  # 140 clips: every tree is cheaper than the target SE
    at.select_slider(key="cx_precision").set_value("± 0.01").run()
    assert not at.exception
    at.select_slider(key="cx_precision").set_value("exact").run()
    assert not at.exception
    assert "exhaustive" in " ".join(c.value for c in at.caption)
    at.slider(key="cx_k").set_value(5).run()
    assert not at.exception
    assert calls["convexity"] == 4  # quick, exact, k = 5: new settings, each computed once
    at.segmented_control(key="cx_heat").set_value("speaker").run()
    assert not at.exception

    at.slider(key="cx_k").set_value(10).run()  # settings seen before: served from the store
    at.select_slider(key="cx_precision").set_value("± 0.005").run()
    assert not at.exception
    assert calls["convexity"] == 4


@needs_model
@pytest.mark.slow
def test_convexity_page_criteria_panel(feature_key: str):
    at = page(feature_key, "pages/convexity.py")
    assert len(at.get("plotly_chart")) == 2  # criteria are opt-in: nothing computed yet
    at.toggle(key="cr_on").set_value(True).run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 2 + 1 + 3  # + scaled curves + CKA, mutual kNN, angular-distance heatmaps
    table = at.table[-1].value.reset_index()  # a static table: the rule text wraps, never cut
    assert "rule" in table.columns
    assert table["criterion"].iloc[0].startswith("convexity")
    assert {"linear_probe", "knn_accuracy", "linear_cka"} <= set(table["criterion"])
    assert table["layer"].between(1, 4).all()


@needs_model
@pytest.mark.slow
def test_projections_page_slider_and_colour(feature_key: str, calls: Counter):
    forget()
    at = page(feature_key, "pages/projections.py")
    assert len(at.get("plotly_chart")) == 1
    assert calls["umap"] == 1
    for layer in (0, 2):
        at.slider(key="pj_layer").set_value(layer).run()
        assert not at.exception
    at.segmented_control(key="pj_colour").set_value("speaker").run()
    assert not at.exception
    assert calls["umap"] == 1  # precomputed: moving the slider does not recompute
    assert any("Click a point" in c.value for c in at.caption)


@needs_model
def test_a_bug_on_a_page_shows_its_exception_and_a_user_error_one_line(
    feature_key: str, monkeypatch: pytest.MonkeyPatch
):
    import core.geometry.convexity as convexity_engine
    from core.errors import ConvexityInputError

    @functools.wraps(convexity_engine.layerwise_convexity)
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug in the engine")

    @functools.wraps(convexity_engine.layerwise_convexity)
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise ConvexityInputError("features contain NaN or infinite values in layer 2: 3 points")

    for fault, is_bug in ((broken, True), (refused, False)):
        forget()
        monkeypatch.setattr(convexity_engine, "layerwise_convexity", fault)
        at = app(feature_key)
        at.switch_page("pages/convexity.py").run()
        if (
            is_bug
        ):  # shown as what it is: an exception box with the traceback, no disguised one-liner
            assert len(at.exception) == 1 and not at.error
            assert "a bug in the engine" in at.exception[0].message
            assert at.exception[0].stack_trace
        else:
            assert not at.exception and len(at.error) == 1
            assert at.error[0].value == (
                "Cannot compute convexity: features contain NaN or infinite values in layer 2: 3 points"
            )
    forget()


def test_pages_without_features_point_to_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    for path in ("pages/convexity.py", "pages/projections.py"):
        at = app()
        at.switch_page(path).run()
        assert not at.exception
        assert any("Setup" in i.value for i in at.info)


@needs_model
def test_choices_survive_page_changes(feature_key: str):
    at = app(feature_key)
    at.number_input(key="max_clips").set_value(CLIPS).run()
    at.switch_page("pages/convexity.py").run()
    at.slider(key="cx_k").set_value(7).run()
    at.switch_page("pages/learn.py").run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception
    assert at.slider(key="cx_k").value == 7
    at.switch_page("pages/setup.py").run()
    assert at.number_input(key="max_clips").value == CLIPS
    assert not at.warning  # no "default value also set via Session State" warnings


def _fake_finetune_run(root: Path, run_id: str, prune_point: int | None, acc: float) -> Path:
    """A finished fine-tune run folder as core.runs.lifecycle/core.training.finetune write it (no training)."""
    import json

    run = root / "runs" / run_id
    run.mkdir(parents=True)
    cfg = {"model": MODEL, "prune_point": prune_point, "task": "words", "epochs": 2}
    (run / "config.json").write_text(json.dumps({"kind": "finetune", "config": cfg}))
    status = {"state": "done", "kind": "finetune", "run_id": run_id, "epoch": 2, "pid": None}
    (run / "status.json").write_text(json.dumps(status))
    rows = [
        {"kind": "train", "step": s, "epoch": 1 + s // 3, "loss": 3.0 / s, "time": s}
        for s in range(1, 7)
    ] + [{"kind": "eval", "step": 6, "epoch": 2, "accuracy": acc, "loss": 0.5, "time": 7}]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    p = prune_point or 4
    result = {
        "model": MODEL,
        "task": "words",
        "prune_point": p,
        "n_layers": p,
        "best_accuracy": acc,
        "best_epoch": 2,
        "n_eval": 35,
        "eval_split": "test",
        "train_seconds": 10.0 * p,
        "epoch_seconds_median": 5.0 * p,
        "params": {"total": 1_000_000 * p, "trainable": 900_000 * p},
    }
    (run / "result.json").write_text(json.dumps(result))
    curve = {"layers": list(range(p + 1)), "scores": [0.5] * (p + 1), "sems": [0.0] * (p + 1)}
    conv = {"pretrained": {"word": curve, "speaker": curve}, "finetuned": {"word": curve}}
    (run / "convexity.json").write_text(json.dumps(conv))
    return run


def test_finetune_and_benchmarks_pages_without_anything(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    at = app()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    assert any("Needs one finished full" in i.value for i in at.info)
    assert any(b.label == "Run benchmark" for b in at.button)


@needs_model
def test_finetune_page_suggestion_params_runs_and_live_view(feature_key: str, cache_root: Path):
    _fake_finetune_run(cache_root, "20200101-000000-finetune-x-aaaaaa", None, 0.9)
    _fake_finetune_run(cache_root, "20200101-000001-finetune-x-bbbbbb", 2, 0.8)
    at = page(feature_key, "pages/finetune.py")
    assert at.slider(key="ft_prune").value in range(1, 5)
    labels = {m.label: m.value for m in at.metric}
    assert labels["parameters"].endswith("M")
    at.slider(key="ft_prune").set_value(2).run()
    assert not at.exception
    assert any(b.label == "Fine-tune pruned (p = 2)" for b in at.button)
    assert next(m.value for m in at.metric if m.label == "parameters saved").endswith("%")
    # the newest run is shown: finished, curves and convexity
    assert at.selectbox(key="ft_view").value.endswith("bbbbbb")
    assert {m.label: m.value for m in at.metric}["status"] == "done"
    assert len(at.get("plotly_chart")) == 2
    at.selectbox(key="ft_view").set_value("20200101-000000-finetune-x-aaaaaa").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["test accuracy"] == "0.900"
    # launch a real background run, see it listed, cancel it
    assert at.slider(key="ft_prune").value == 4  # the form follows the shown (full) run
    at.number_input(key="ft_epochs").set_value(1).run()
    at.slider(key="ft_prune").set_value(2).run()
    next(b for b in at.button if b.label.startswith("Fine-tune pruned")).click().run()
    assert not at.exception, at.exception
    new = at.session_state["ft_view"]
    assert new not in ("20200101-000000-finetune-x-aaaaaa", "20200101-000001-finetune-x-bbbbbb")
    from core.runs import folders, lifecycle

    assert folders.read_status(new)["state"] in ("queued", "running", "failed", "done")
    cancel = [b for b in at.button if b.label == "Cancel run"]
    if cancel:
        cancel[0].click().run()
        assert not at.exception
    lifecycle.cancel(new, force=True)
    assert folders.read_status(new)["state"] in ("cancelled", "failed", "done")


@needs_model
@pytest.mark.slow
def test_benchmarks_page_compares_runs_and_criteria(feature_key: str, cache_root: Path):
    if not list((cache_root / "runs").glob("*aaaaaa")):
        _fake_finetune_run(cache_root, "20200101-000000-finetune-x-aaaaaa", None, 0.9)
        _fake_finetune_run(cache_root, "20200101-000001-finetune-x-bbbbbb", 2, 0.8)
    at = page(feature_key, "pages/benchmarks.py")
    table = at.table[0].value
    acc = table.loc["accuracy (best epoch, chosen on the same split)"]  # no separate test split
    assert (acc["full model"], acc["pruned model"]) == (
        "90.0% (test, 35 clips)",
        "80.0% (test, 35 clips)",
    )
    assert acc["pruned vs full"] == "-10.0 points" and acc["better"] == "full ✓"
    compare = [b for b in at.button if b.label == "Compare criteria"]
    if compare:  # the Convexity page's test may have computed them already (shared store)
        compare[0].click().run()
    assert not at.exception, at.exception
    crit = at.dataframe[-1].value
    assert crit["criterion"].iloc[0].startswith("convexity")
    assert {"linear_probe", "block_influence"} <= set(crit["criterion"])
    assert len(at.get("download_button")) == 2


# ------------------------------------------------------------------------------------------------
# Issue 11: one test per defect the dashboard showed (AppTest where it suffices; the rest in the browser)


def _fake_run_with(root: Path, run_id: str, prune_point: int | None, **config) -> Path:
    """A finished fake run whose config.json carries extra settings."""
    import json

    run = _fake_finetune_run(root, run_id, prune_point, 0.7)
    spec = json.loads((run / "config.json").read_text())
    spec["config"].update(config)
    (run / "config.json").write_text(json.dumps(spec))
    return run


def test_defect1_runs_compared_without_dividing_wall_times(tmp_path: Path, monkeypatch):
    """#1: training times of separate runs are facts (no ratio); settings that differ are named."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    _fake_run_with(tmp_path, "20200101-000000-finetune-x-aaaaaa", None, max_train_clips=350)
    _fake_run_with(tmp_path, "20200101-000001-finetune-x-bbbbbb", 2, max_train_clips=140)
    at = app()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    comparison, facts = at.table[0].value, at.table[1].value
    assert not any("time" in q for q in comparison.index)  # no wall-time row with a ratio
    assert not any("ratio" in c or "/" in c or " vs " in c for c in facts.columns)
    assert {"training time", "device", "machine load"} <= set(facts.columns)
    caption = " ".join(c.value for c in at.caption)
    assert "(test, 35 clips)" in caption and "seed" in caption and "training clips" in caption
    assert any("training clips cap: 350 vs 140" in w.value for w in at.warning)


@needs_model
def test_defect5_p_equal_L_is_the_full_model(tmp_path: Path, monkeypatch):
    """#5: at p = L the page says "full model": no "pruned (p = 4)" button, no "0% vs full" delta."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    at = app()
    at.switch_page("pages/finetune.py").run()
    at.slider(key="ft_prune").set_value(4).run()
    assert not at.exception, at.exception
    labels = [b.label for b in at.button]
    assert "Fine-tune full model (4 layers)" in labels
    assert not any("pruned" in lab or "both" in lab for lab in labels)
    metrics = {m.label: m for m in at.metric}
    assert metrics["parameters saved"].value == "none"
    assert metrics["layers kept"].value == "all 4"
    assert any("keeps every layer" in c.value for c in at.caption)
    assert not metrics["parameters"].delta  # no "0% vs full" in red


def test_defect6_run_tables_have_one_type_per_column(tmp_path: Path, monkeypatch):
    """#6: the runs table mixes no numbers and "full" (pyarrow fails on it; Streamlit logs a traceback)."""
    import logging

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    _fake_finetune_run(tmp_path, "20200101-000000-finetune-x-aaaaaa", None, 0.9)
    _fake_finetune_run(tmp_path, "20200101-000001-finetune-x-bbbbbb", 2, 0.8)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("streamlit.dataframe_util")
    logger.addHandler(handler)
    try:
        at = app()
        at.switch_page("pages/finetune.py").run()
        assert not at.exception, at.exception
        runs = at.dataframe[0].value
        at.switch_page("pages/benchmarks.py").run()
        assert not at.exception, at.exception
    finally:
        logger.removeHandler(handler)
    assert not [r.getMessage() for r in records if "Arrow" in r.getMessage()]
    assert set(runs["prune point"]) == {"full model", "p = 2"}


@pytest.fixture(scope="module")
def saved_benchmarks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with two real benchmarks of a tiny model: a steady one and one with a slowed repeat."""
    import torch

    from core.training.benchmark import benchmark, save_benchmark
    from core.training.configs import BenchmarkConfig
    from tests.helpers.tiny_assets import make_trainable_wav2vec2

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bm-cache")
    model = make_trainable_wav2vec2(root / "tiny", layers=3)

    def slow(side: str, timing: str, repeat: int) -> None:
        if (side, timing, repeat) == ("pruned", "train_step", 1):
            time.sleep(1.0)

    for name, hook in (("20200101-000000-tiny-p1", None), ("20200101-000001-tiny-p1", slow)):
        cfg = BenchmarkConfig(
            model=str(model),
            prune_point=1,
            n_labels=4,
            train_batch=4,
            infer_batch=8,
            warmup=1,
            repeats=3,
            device="cpu",
            timing_threads=None,
        )
        res = benchmark(model, cfg, timing_hook=hook)
        save_benchmark(res, root / "benchmarks" / name)
    return root


def test_defect7_and_12_benchmark_table_is_human_and_flags_disagreeing_repeats(
    saved_benchmarks: Path, monkeypatch
):
    """#7: one table in human units and names, better side marked; #12: a spread, and a warning when
    the repeats disagree (a slowed repeat)."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(saved_benchmarks))
    at = app()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="bm_saved").value == "20200101-000001-tiny-p1"  # the newest
    assert len(at.table) == 1 and not at.dataframe  # one table for the comparison
    table = at.table[0].value
    assert list(table.columns) == [
        "full model",
        "pruned model",
        "pruned / full (min-max)",
        "better",
        "note",
    ]
    assert not any("_" in q for q in table.index)
    assert table.loc["parameters (total)", "full model"].endswith(" M")
    assert table.loc["weights", "pruned model"].endswith(" MB")
    assert table.loc["weights", "better"] == "pruned ✓"
    assert table.loc["inference throughput (batch 8)", "full model"].endswith("clips/s")
    assert table.loc["training step (batch 4)", "full model"].endswith(("ms", " s"))
    assert "-" in table.loc["training step (batch 4)", "pruned / full (min-max)"]  # the spread
    assert table.loc["training step (batch 4)", "better"] == "unreliable"
    assert any("Unreliable: training step" in w.value for w in at.warning)
    at.selectbox(key="bm_saved").set_value("20200101-000000-tiny-p1").run()
    assert not at.exception
    assert at.table[0].value.loc["weights", "better"] == "pruned ✓"


@needs_model
def test_defect8_new_session_starts_from_the_stored_choice(feature_key: str, cache_root: Path):
    """#8: a new session uses the last explicit Setup choice, not the newest cached feature set."""
    from core.io.choice import SetupChoice, save_choice

    newer = extract_features(MODEL, Selection.of("sample", max_clips=35), batch_size=35)
    assert newer.key != feature_key  # the newest entry in the cache is now a 35-clip set
    save_choice(SetupChoice(feature_key=feature_key, model=MODEL, max_clips=CLIPS))
    at = app()  # a new session: nothing in its state
    assert not at.exception
    assert at.number_input(key="max_clips").value == CLIPS  # Setup shows the stored choice
    at.switch_page("pages/convexity.py").run()
    assert not at.exception
    assert at.session_state["feature_key"] == feature_key
    assert any(f"{CLIPS} clips" in c.value for c in at.caption)


@needs_model
def test_defect8_finetune_form_reflects_the_displayed_run(tmp_path: Path, monkeypatch):
    """#8: after a reload the form shows the settings of the run displayed below it, not defaults."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    _fake_run_with(tmp_path, "20200101-000000-finetune-x-aaaaaa", None, epochs=2, lr=1e-4)
    _fake_run_with(tmp_path, "20200101-000001-finetune-x-bbbbbb", 1, epochs=5, batch_size=8)
    at = app()
    at.switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="ft_view").value.endswith("bbbbbb")
    assert at.slider(key="ft_prune").value == 1
    assert at.number_input(key="ft_epochs").value == 5
    assert at.select_slider(key="ft_batch").value == 8
    at.selectbox(key="ft_view").set_value("20200101-000000-finetune-x-aaaaaa").run()
    assert not at.exception
    assert at.slider(key="ft_prune").value == 4  # the full model
    assert at.number_input(key="ft_epochs").value == 2
    assert at.select_slider(key="ft_lr").value == 1e-4


def test_defect11_finished_run_shows_its_epoch_time(tmp_path: Path, monkeypatch):
    """#11 (page side): a run's time per epoch is shown; the estimate itself is tested in test_eta."""
    import json

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    run = _fake_finetune_run(tmp_path, "20200101-000000-finetune-x-aaaaaa", 2, 0.8)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows[-1]["epoch_seconds"] = 65.0
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    at = app()
    at.switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    assert any("1 min 05 s per epoch" in c.value for c in at.caption)
