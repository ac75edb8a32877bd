"""Projections on imported features (AppTest): diagnostics in the background with the plot kept, a
selected region as a table with CSV, the chosen clip kept in the URL, imported rows without audio,
path labels only at the path's ends."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.imported import import_features

APP = "../app.py"
N, STATES, D = 60, 4, 8


@pytest.fixture(scope="module")
def feature_key(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("pj-import")
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEXITY_LAB_CACHE", str(base / "cache"))
    rng = np.random.default_rng(0)
    words = np.arange(N) % 3
    centres = rng.normal(scale=3.0, size=(3, D))
    x = np.stack(
        [centres[words] * i / (STATES - 1) + rng.normal(size=(N, D)) for i in range(STATES)], 1
    )
    np.save(base / "emb.npy", x.astype(np.float32))
    (base / "labels.csv").write_text(
        "word,speaker\n" + "".join(f"w{w},s{i % 5}\n" for i, w in enumerate(words))
    )
    fs = import_features(base / "emb.npy", base / "labels.csv")
    yield str(fs.key)
    mp.undo()


def _open(key: str, **state) -> AppTest:
    from pages.parts.cached import background_tasks, results_memory

    results_memory().clear()
    background_tasks().clear()
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["feature_key"] = key
    for name, value in state.items():
        at.session_state[name] = value
    at.run().switch_page("pages/projections.py").run()
    assert not at.exception, at.exception
    return at


def _spec(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _until(at: AppTest, ready, timeout: float = 120) -> None:
    """Rerun (as the progress fragment does every second) until ``ready(at)``."""
    deadline = time.monotonic() + timeout
    while not ready(at):
        assert time.monotonic() < deadline, "the background diagnostics did not land"
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception


def _has_colorbar(at: AppTest) -> bool:
    return "colorbar" in _spec(at)["data"][0].get("marker", {})


@pytest.mark.slow
def test_diagnostics_run_in_the_background_and_the_plot_stays(feature_key: str):
    at = _open(feature_key)
    at.segmented_control(key="pj_colour").set_value("clip convexity").run()
    assert not at.exception, at.exception
    spec = _spec(at)
    assert sum(len(t["customdata"]) for t in spec["data"]) == N  # the word-coloured plot stays
    assert at.get("progress") and not _has_colorbar(at)  # the page did not wait for them
    _until(at, _has_colorbar)
    assert _spec(at)["data"][0]["marker"]["colorbar"]["title"]["text"] == "clip convexity"


@pytest.mark.slow
def test_a_selected_region_lists_its_clips_across_layers(feature_key: str):
    at = _open(feature_key, pj_selected=(3, 1, 7, 3))
    _until(
        at,
        lambda a: any(
            "purity" in d.value.columns and d.value["convexity"].notna().all() for d in a.dataframe
        ),
    )
    table = next(d.value for d in at.dataframe if "purity" in d.value.columns)
    assert table["clip"].tolist() == [1, 3, 7]
    assert table["word"].tolist() == ["w1", "w0", "w1"]
    assert table["convexity"].notna().all() and table["purity"].between(0, 1).all()
    assert any(b.label == "Download the selection (CSV)" for b in at.get("download_button"))
    selected = [t.get("selectedpoints") for t in _spec(at)["data"]]
    assert sum(len(s) for s in selected if s) == 3
    at.slider(key="pj_layer").set_value(1).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "purity" in d.value.columns)
    assert table["clip"].tolist() == [1, 3, 7]


@pytest.mark.slow
def test_the_chosen_clip_lives_in_the_url_and_imported_rows_say_they_have_no_audio(
    feature_key: str,
):
    from pages.parts.cached import results_memory

    results_memory().clear()
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["feature_key"] = feature_key
    at.query_params["clip"] = "4"
    at.run().switch_page("pages/projections.py").run()
    assert not at.exception, at.exception
    assert at.session_state["pj_clip"] == 4
    captions = " ".join(c.value for c in at.caption)
    assert "no audio" in captions and "not found" not in captions
    at.number_input(key="pj_clip").set_value(5).run()
    assert at.query_params["clip"] == ["5"] or at.query_params["clip"] == "5"
    path = next(t for t in _spec(at)["data"] if t.get("name") == "shortest path")
    labelled = [t for t in path["text"] if t]
    assert len(labelled) == 2 and labelled[0].startswith("start")
    text = " ".join(m.value for m in at.markdown)
    assert "1 edges" not in text and "1 interior clips" not in text


@pytest.mark.slow
def test_learn_offers_no_more_clips_per_word_than_exist(feature_key: str):
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["feature_key"] = feature_key
    at.run().switch_page("pages/learn.py").run()
    assert not at.exception, at.exception
    at.segmented_control(key="ln_mode").set_value("Real layer").run()
    assert not at.exception, at.exception
    per_word = at.slider(key="ln_real_per_word")
    assert per_word.max == N // 3 and per_word.value == N // 3  # 20 clips of each word exist
