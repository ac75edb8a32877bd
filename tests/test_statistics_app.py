"""Curve statistics in the dashboard: the Convexity page's chance band, interval choice, prune-point
stability and background computation; the Compare page's chance band, paired differences and
comparison at equal size."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.imported import import_features
from core.geometry.options import ConvexityOptions, StatisticsOptions
from core.geometry.synthetic import speaker_population

APP = "../app.py"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from pages.parts.cached import results_memory

    results_memory().clear()
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("pages.parts.cached.STATS_RESAMPLES", 3)  # small and quick; same code path
    monkeypatch.setattr("pages.parts.cached.STATS_PERMUTATIONS", 2)
    monkeypatch.setattr("pages.parts.cached.STATS_SEEDS", 1)
    return tmp_path / "cache"


def _imported(tmp_path: Path, name: str, shift: float = 0.0, seed: int = 0):
    """A cached feature set of 8 synthetic speakers x 6 words x 2 takes (enough to half-sample)."""
    d = speaker_population(8, takes=2, seed=0).draw(np.random.default_rng(seed))
    x, words, speakers = d.features, d.words, d.speakers
    x = x + shift * np.eye(x.shape[2], dtype=np.float32)[words % x.shape[2]][:, None, :]
    np.save(tmp_path / f"{name}.npy", x)
    with (tmp_path / f"{name}.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["word", "speaker", "path"])
        for i, (a, b) in enumerate(zip(words, speakers, strict=True)):
            w.writerow([f"w{a}", f"s{b}", f"clip{i}.wav"])
    return import_features(tmp_path / f"{name}.npy", tmp_path / f"{name}.csv", name=name)


def _wait_for_job(key: str, timeout: float = 120.0):
    """The statistics job of feature set ``key`` once it has ended (or the timeout passed)."""
    from pages.parts.cached import statistics_status

    deadline = time.monotonic() + timeout
    while True:
        status = statistics_status(key, ("word", "speaker"), 10, "exact")
        if status is not None and not status.active or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def _chart(at: AppTest, key_part: str) -> dict:
    for chart in at.get("plotly_chart"):
        if key_part in chart.proto.id:
            return json.loads(chart.proto.spec)
    raise AssertionError(f"no chart {key_part!r}")


def _convexity_page(key: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["feature_key"] = key
    at.session_state["cx_precision"] = "exact"
    at.run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow  # ~20 s
def test_convexity_page_computes_statistics_in_the_background_then_shows_them(
    cache: Path, tmp_path: Path
):
    fs = _imported(tmp_path, "synthetic-a")
    at = _convexity_page(fs.key)
    assert not any("chance" in t["name"] for t in _chart(at, "cx_curve")["data"])
    next(b for b in at.button if b.label == "Chance level and population intervals").click().run()
    assert not at.exception, at.exception
    status = _wait_for_job(fs.key)
    assert status.state == "done", status
    at.run()
    assert not at.exception, at.exception
    names = [t["name"] for t in _chart(at, "cx_curve")["data"]]
    assert "chance (word)" in names and "chance (speaker)" in names
    stability = " ".join(w.value for w in at.caption) + " ".join(w.value for w in at.warning)
    assert "half-samples" in stability and "threshold p =" in stability
    at.selectbox(key="cx_bars").set_value("population interval").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "90% population interval" in captions and "half of the speakers" in captions
    spec = _chart(at, "cx_curve")
    word = next(t for t in spec["data"] if t["name"].startswith("word"))
    assert word["error_y"]["visible"]
    assert "speaker: same speakers, other recordings" in captions
    at.selectbox(key="cx_bars").set_value("half the speakers").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "speaker at half the speakers, 90% interval of the mean curve of other sets" in captions
    names = [t["name"] for t in _chart(at, "cx_curve")["data"]]
    assert "speaker, other speakers at half the count" in names


@pytest.mark.slow  # ~15 s
def test_compare_page_shows_chance_bands_and_a_paired_verdict(cache: Path, tmp_path: Path):
    from core.results.kinds import convexity_entry, statistics_entry

    opts = StatisticsOptions(n_permutations=2, n_resamples=4, n_seeds=0)
    ids = []
    for name, shift in (("plain", 0.0), ("tuned", 3.0)):
        fs = _imported(tmp_path, name, shift)
        entry, _ = convexity_entry(
            fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
        )
        statistics_entry(
            fs, ["word"], ConvexityOptions(max_pairs_per_class=None, k=5, device="cpu"), opts
        )
        ids.append(f"{entry.key[:12]}:word")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/compare.py").run()
    at.multiselect(key="cmp_curves").set_value(ids).run()
    assert not at.exception, at.exception
    names = [t["name"] for t in _chart(at, "cmp_curves_plot")["data"]]
    assert sum(n.startswith("chance · ") and not n.endswith(" band") for n in names) == 2
    verdict = " ".join(m.value for m in at.markdown if "Verdict" in m.value)
    assert "Verdict:" in verdict and ("on layers" in verdict or "no layer" in verdict)
    table = next(d.value for d in at.dataframe if "excludes 0" in d.value.columns)
    assert len(table) == 4
    at.radio(key="cmp_bars").set_value("interval").run()
    assert not at.exception, at.exception
    traces = [t for t in _chart(at, "cmp_curves_plot")["data"] if "chance" not in t["name"]]
    assert traces and all(t["error_y"]["visible"] for t in traces)
    assert any("stored 90% population interval" in c.value for c in at.caption)
    at.number_input(key="cmp_size_classes").set_value(4)
    at.number_input(key="cmp_size_clips").set_value(6)
    at.number_input(key="cmp_size_subsets").set_value(4).run()
    next(b for b in at.button if b.label == "Compare at equal size").click().run()
    assert not at.exception, at.exception
    sized = " ".join(m.value for m in at.markdown if "At equal size" in m.value)
    assert "A (word)" in sized or "no layer" in sized, sized
    table = next(d.value for d in at.dataframe if "A at size" in d.value.columns)
    assert len(table) == 4 and table["A at size"].between(0, 1).all()
    assert any("paired" in c.value and "4 classes x 6 clips each" in c.value for c in at.caption)
    at.toggle(key="cmp_norm").set_value(True).run()
    assert not at.exception
    assert _chart(at, "cmp_curves_plot")["layout"]["yaxis"]["title"]["text"].startswith(
        "chance-normalised"
    )


@pytest.mark.slow  # ~10 s
def test_cli_compare_prints_a_paired_verdict_and_exports_it(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    from core.cli.main import main

    a = _imported(tmp_path, "plain", 0.0)
    b = _imported(tmp_path, "tuned", 3.0)
    out = tmp_path / "paired.json"
    argv = ["convexity", "--key", a.key[:12], "--compare", b.key[:12], "--resamples", "4"]
    argv += ["--chance", "2", "--exhaustive", "--k", "5", "--labels", "word", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "paired difference" in printed and "verdict:" in printed
    doc = json.loads(out.read_text())
    assert doc["paired"][0]["verdict"] and len(doc["paired"][0]["low"]) == a.features.shape[1]
    assert doc["prune_point_stability"]["word"]["threshold"]["over_resamples"]
