"""The Projections page's clip views (AppTest): colour by clip convexity and bridges, a chosen clip's
neighbours and its path to a class-mate drawn on the UMAP, diagnostics tables, breakdowns and the CSV.

Real features of a tiny random wav2vec2 on the small audio folder, in a private cache."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.data.features import Selection, extract_features

APP = "../app.py"


@pytest.fixture(scope="module")
def feature_key(tree: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory, one_thread):
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEXITY_LAB_CACHE", str(tmp_path_factory.mktemp("pj-cache")))
    fs = extract_features(model_dir, Selection.of("folder", str(tree)), batch_size=8)
    yield str(fs.key)
    mp.undo()


def _open(key: str) -> AppTest:
    from pages.parts.cached import results_memory

    results_memory().clear()
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["feature_key"] = key
    at.run().switch_page("pages/projections.py").run()
    assert not at.exception, at.exception
    return at


def _trace_names(at: AppTest) -> list[str]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return [t.get("name") for t in spec["data"]]


@pytest.mark.slow
def test_a_chosen_clip_shows_neighbours_and_its_path_on_the_umap(feature_key: str):
    at = _open(feature_key)
    assert any("Click a point" in c.value for c in at.caption)
    at.number_input(key="pj_clip").set_value(0).run()
    assert not at.exception, at.exception
    names = _trace_names(at)
    assert "10 nearest neighbours" in names
    assert "chosen clip" in names and "shortest path" in names
    tables = [d.value for d in at.dataframe]
    path = next(v for v in tables if "role" in v.columns)
    assert path["role"].iloc[0] == "source" and path["clip"].iloc[0] == 0
    assert path["role"].iloc[-1] == "target"
    assert (path["word"] == path["word"].iloc[0]).iloc[-1]
    neighbours = next(v for v in tables if "same class" in v.columns)
    assert len(neighbours) >= 1 and neighbours["distance"].is_monotonic_increasing
    assert len(at.get("audio")) >= 1
    partner = next(s for s in at.selectbox if s.key.startswith("pj_partner_0_word"))
    other = next(o for o in partner.options if o != partner.value)
    partner.set_value(int(other.split()[1])).run()
    assert not at.exception, at.exception


@pytest.mark.slow
def test_colour_by_clip_convexity_and_the_diagnostics_tables(feature_key: str):
    at = _open(feature_key)
    at.segmented_control(key="pj_colour").set_value("clip convexity").run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 240
    while "colorbar" not in json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["marker"]:
        assert time.monotonic() < deadline, "the clip diagnostics did not land"
        time.sleep(0.5)
        at.run()  # what the progress fragment does every second
        assert not at.exception, at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["marker"]["colorbar"]["title"]["text"] == "clip convexity"
    at.toggle(key="pj_tables").set_value(True).run()
    assert not at.exception, at.exception
    clip_tables = [d.value for d in at.dataframe if "purity" in d.value.columns]
    low, high = clip_tables[0], clip_tables[1]  # the first two tabs
    assert low["convexity"].is_monotonic_increasing
    assert high["bridge"].is_monotonic_decreasing
    texts = " ".join(c.value for c in at.caption)
    assert "lowest_share" in texts and "n_components" in texts
    assert at.get("download_button")
    at.radio(key="pj_labels").set_value("speaker").run()
    assert not at.exception, at.exception
    at.segmented_control(key="pj_colour").set_value("bridge").run()
    assert not at.exception, at.exception


@pytest.mark.slow
def test_learn_real_mode_steps_through_a_real_layer(feature_key: str):
    from pages.parts.cached import results_memory

    results_memory().clear()
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["feature_key"] = feature_key
    at.run().switch_page("pages/learn.py").run()
    assert not at.exception, at.exception
    at.segmented_control(key="ln_mode").set_value("Real layer").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="ln_real_words").value == ["go", "stop", "yes"]
    start = at.selectbox(key="ln_real_start").value
    end = at.selectbox(key="ln_real_end").value
    assert start != end
    for _ in range(3):
        at.button(key="ln_next").click().run()
        assert not at.exception, at.exception
    assert at.session_state["ln_step"] == 3
    assert any("graph convexity" in m.value for m in at.get("latex"))
    metrics = [m.label for m in at.metric]
    assert "This path's score" in metrics and any("Graph convexity (3 words)" in m for m in metrics)
    assert len(at.get("audio")) >= 2  # start and end are playable
    at.slider(key="ln_real_layer").set_value(0).run()
    assert not at.exception and at.session_state["ln_step"] == 0
    at.segmented_control(key="ln_mode").set_value("2-D toy").run()
    assert not at.exception and at.get("plotly_chart")


@pytest.mark.parametrize(
    "n_points, kind", [(1_000, "scatter"), (1_001, "scattergl"), (10_990, "scattergl")]
)
def test_many_points_are_drawn_with_webgl(n_points: int, kind: str):
    """A UMAP of more than a thousand clips is drawn with WebGL (an SVG redraw of ~10,000 markers took
    3-4 s per click at the paper's size), class and value colourings alike; smaller plots stay SVG."""
    import numpy as np
    import plotly.graph_objects as go

    from pages.parts.figures import class_traces, value_trace

    xy = np.random.default_rng(0).normal(size=(n_points, 2))
    labels = np.arange(n_points) % 7
    by_class = class_traces(go.Figure(), xy, labels, selected=labels == 3)
    by_value = value_trace(go.Figure(), xy, xy[:, 0], "clip convexity")
    assert {t.type for t in by_class.data} == {kind}
    assert {t.type for t in by_value.data} == {kind}
    assert sum(len(t.x) for t in by_class.data) == n_points


def _index_of_plot(at: AppTest) -> int:
    """Index, among the main area's elements, of the one holding the UMAP (the plot's fragment)."""

    def holds_plot(node) -> bool:
        if getattr(node, "type", None) == "plotly_chart":
            return True
        return any(holds_plot(child) for child in getattr(node, "children", {}).values())

    return next(i for i, child in at.main.children.items() if holds_plot(child))


@pytest.mark.slow
def test_the_plots_fragment_keeps_its_place_while_diagnostics_come_and_go(
    feature_key: str, monkeypatch
):
    """A fragment's id follows its place on the page; a request from the browser to the id it had
    (a clip typed while the page reruns) is dropped once the id changes. What shows above the plot
    (the diagnostics' progress while they run) must not move it."""
    import threading

    import core.results

    release = threading.Event()
    real = core.results.diagnostics_entry

    def held(*args, **kwargs):
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(core.results, "diagnostics_entry", held)
    from pages.parts.cached import background_tasks

    background_tasks().clear()  # no finished diagnostics of this set left by the tests before
    at = _open(feature_key)
    before = _index_of_plot(at)
    at.segmented_control(key="pj_colour").set_value("clip convexity").run()
    assert not at.exception, at.exception
    assert at.get("progress"), "the diagnostics run in the background, with their progress shown"
    during = _index_of_plot(at)
    release.set()
    deadline = time.monotonic() + 60
    while at.get("progress") and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    assert not at.get("progress") and not at.exception
    assert before == during == _index_of_plot(at)
