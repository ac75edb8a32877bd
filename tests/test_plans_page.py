"""The Plans page (AppTest): the table computed in the background with progress, the similarity map with its
blocks and provenance, the plan picker (detected block, typed plan), plans of equal size with their evidence,
and the links that launch a fine-tune or benchmark of the picked plan.

Real features of a tiny random wav2vec2 on the small audio folder, in a private cache."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from core.data.features import Selection, extract_features
from core.models import PruningPlan

APP = "../app.py"
LOOSE = -1.0  # every layer pairwise this similar: one block 1..L


@pytest.fixture(scope="module")
def feature_key(tree: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory, one_thread):
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEXITY_LAB_CACHE", str(tmp_path_factory.mktemp("pl-cache")))
    fs = extract_features(model_dir, Selection.of("folder", str(tree)), batch_size=8)
    yield str(fs.key)
    mp.undo()


def _open(key: str | None, **state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    if key is not None:
        at.session_state["feature_key"] = key
    for name, value in state.items():
        at.session_state[name] = value
    at.run().switch_page("pages/plans.py").run()
    assert not at.exception, at.exception
    return at


def _until_computed(at: AppTest, seconds: float = 120) -> AppTest:
    """Rerun while the background table computes (its progress shows) until the map appears."""
    deadline = time.monotonic() + seconds
    while not at.get("plotly_chart") and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    assert at.get("plotly_chart"), [e.value for e in at.error]
    return at


def _figure(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_without_features_the_page_says_where_to_choose_them(private_cache: Path) -> None:
    at = _open(None)
    assert any("Setup page" in i.value for i in at.info)


@pytest.mark.slow
def test_table_in_background_then_map_picker_rows_and_links(feature_key: str):
    at = _open(feature_key, pl_threshold=LOOSE, pl_stability=0)
    assert any("No plans table" in i.value for i in at.info)
    at.button(key="pl_compute").click().run()
    assert not at.exception, at.exception
    at = _until_computed(at)
    spec = _figure(at)
    heat = spec["data"][0]
    assert heat["type"] == "heatmap" and heat["z"]["shape"] == "4, 4"  # hidden states 0..3
    rects = [s for s in spec["layout"]["shapes"] if s["type"] == "rect"]
    assert [(r["x0"], r["x1"]) for r in rects] == [(0.5, 3.5)]  # the block 1-3 outlined
    caption = " ".join(a["text"] for a in spec["layout"]["annotations"])
    assert "tiny-w2v" in caption and "store entry" in caption  # provenance under the figure

    # the detected block is picked by default: drop 2-3 (the same layers as top-1), beside the full model
    frame = at.dataframe[0].value
    assert list(frame["plan"]) == ["keep all 3", "▶ keep 1"]
    assert list(frame["layers"]) == [3, 1] and frame["fine-tuned test acc."].eq("-").all()
    assert all("[" in cell for cell in frame["logistic (vs full)"])  # score with its interval
    links = [b.proto.url for b in at.get("link_button")]
    assert links == ["/finetune?plan=keep+1", "/benchmarks?plan=keep+1"]

    # the convexity suggestion: the Convexity page's curve (computed on request) gives a top-p plan
    at.radio(key="pl_source").set_value("convexity top-p").run()
    assert not at.dataframe  # nothing computed before asked
    at.button(key="pl_curve_btn").click().run()
    assert not at.exception, at.exception
    frame = at.dataframe[0].value
    picked = frame[frame["plan"].str.startswith("▶")]
    assert len(picked) == 1 and picked["kind"].iloc[0] in ("top", "full")

    # a typed plan: a bad one is one line; one the table lacks is scored on request, beside top-p
    at.radio(key="pl_source").set_value("custom").run()
    at.text_input(key="pl_custom").set_value("drop 7").run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and "7" in at.error[0].value and "\n" not in at.error[0].value
    at.text_input(key="pl_custom").set_value("drop 2").run()
    assert any("not in the table" in c.value for c in at.caption) and not at.dataframe
    at.button(key="pl_score_extra").click().run()
    deadline = time.monotonic() + 120
    while not at.dataframe and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    frame = at.dataframe[0].value
    assert list(frame["plan"]) == ["keep all 3", "drop 3", "▶ drop 2"]  # top-2 beside it
    assert [b.proto.url for b in at.get("link_button")][0] == "/finetune?plan=drop+2"


@pytest.mark.slow
def test_the_background_table_shows_progress_and_can_be_cancelled(feature_key: str, monkeypatch):
    from core.errors import Cancelled
    from pages.parts import plans_view

    def slow_table(full, features, base, request, *, progress, should_stop, **_):
        progress(1, 4)
        deadline = time.monotonic() + 60
        while not should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise Cancelled("the plans table was cancelled")

    monkeypatch.setattr(plans_view, "stored_plans_table", slow_table)
    at = _open(feature_key, pl_threshold=0.5, pl_stability=3)
    at.button(key="pl_compute").click().run()
    deadline = time.monotonic() + 60

    def progress() -> str:
        return " ".join(p.proto.text for p in at.get("progress"))

    while "1/4 steps" not in progress() and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    assert "1/4 steps" in progress() and "left" in progress()  # done of total, time left
    at.button(key="pl_cancel").click().run()
    deadline = time.monotonic() + 30
    while not at.warning and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == ["Cancelled: nothing was stored."]
    assert at.button(key="pl_compute")  # and it can be started again


def test_rows_carry_fine_tuned_accuracy_and_cost_ratio_of_matching_runs(monkeypatch) -> None:
    from pages.parts import plans_view

    runs = [
        SimpleNamespace(
            test_accuracy=0.91,
            task="words",
            run_id="r2",
            settings=SimpleNamespace(model="m", prune_point=None, plan="drop 2-3"),
        ),
        SimpleNamespace(
            test_accuracy=0.5,
            task="words",
            run_id="r1",
            settings=SimpleNamespace(model="m", prune_point=None, plan="drop 2-3"),
        ),
        SimpleNamespace(
            test_accuracy=0.8,
            task="speakers",
            run_id="r0",
            settings=SimpleNamespace(model="m", prune_point=1, plan=None),
        ),
        SimpleNamespace(
            test_accuracy=0.7,
            task="words",
            run_id="r3",
            settings=SimpleNamespace(model="other", prune_point=1, plan=None),
        ),
    ]
    bench = SimpleNamespace(
        id="b1",
        data={
            "model": "m",
            "prune_point": 1,
            "rows": [{"metric": plans_view.LATENCY, "ratio": 0.41}],
        },
    )
    monkeypatch.setattr(plans_view, "finetune_runs", lambda: runs)
    monkeypatch.setattr(plans_view, "list_benchmarks", lambda: [bench])
    assert plans_view.finetuned_accuracy("m", "words", 3) == {
        PruningPlan.drop([2, 3], 3): "0.910 (r2)"
    }
    assert plans_view.cost_ratios("m", 3) == {PruningPlan.top(1, 3): "0.41x latency (b1)"}


def test_typed_plans_read_like_the_cli() -> None:
    from core.errors import PruneError
    from core.models.plans import parse_plan

    assert parse_plan("drop 3-4", 6) == PruningPlan.drop([3, 4], 6)
    assert parse_plan("keep 1-2, 5-6", 6) == PruningPlan.keep([1, 2, 5, 6], 6)
    assert parse_plan("top 2", 6) == PruningPlan.top(2, 6)
    assert parse_plan("keep all 6", 6) == PruningPlan.top(6, 6)
    for bad in ("remove 3", "drop 9", "top x", "drop 1-6"):
        with pytest.raises(PruneError):
            parse_plan(bad, 6)


def test_a_cancel_after_the_last_step_does_not_hide_the_stored_table() -> None:
    from pages.parts.plans_view import PlansWork

    late = PlansWork("plans of m", result=object(), finished=True)
    late.stop.set()  # Cancel pressed after the table was stored
    assert late.outcome() is None
    cancelled = PlansWork("plans of m", finished=True)
    cancelled.stop.set()
    assert cancelled.outcome() == "Cancelled: nothing was stored."
    failed = PlansWork("plans of m", error="no space left on device", finished=True)
    assert failed.outcome() == "The plans table failed: no space left on device"
    assert (
        PlansWork("plans of m", finished=True).outcome() is not None
    )  # ended without a result: said
