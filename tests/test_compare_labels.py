"""Compare's picker labels tell curves apart by what they are, and its defaults open on two curves
that share their classes (core functions and the page, AppTest, on stored synthetic results)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from core.geometry.options import ConvexityOptions
from core.results.compare import default_curves, picker_labels, series_label, series_of
from core.results.store import list_results
from tests.helpers.builders import fake_features

APP = "../app.py"


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """Word and speaker curves of one synthetic model at k=5 and k=7, stored; their series."""
    from core.results.kinds import convexity_entry
    from pages.parts.cached import results_memory

    results_memory().clear()
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    fs = fake_features(layers=4, model="tiny")
    for k in (5, 7):
        options = ConvexityOptions(k=k, max_pairs_per_class=None, device="cpu")
        convexity_entry(fs, {"word": fs.words, "speaker": fs.speakers}, options)
    return [
        s
        for e in list_results()
        if e.kind == "convexity"
        for s in series_of(e.key, e.kind, e.data, e.provenance)
    ]


def test_labels_differ_by_what_the_curves_are_not_by_a_hash(stored: list) -> None:
    labels = picker_labels(stored)
    assert len(set(labels.values())) == len(stored) == 4
    for s in stored:
        text = labels[s.id]
        assert s.entry_key[:6] not in text  # what tells them apart is said in words
        assert f"k={s.provenance.k}" in text and s.label_set in text and "60 clips" in text


def test_defaults_open_on_two_curves_of_one_label_set(stored: list) -> None:
    first, second = (next(s for s in stored if s.id == i) for i in default_curves(stored))
    assert first.label_set == second.label_set and first.entry_key != second.entry_key
    assert set(first.per_class) == set(second.per_class)


def test_fine_tuning_runs_and_series_are_named_by_their_run() -> None:
    from core.results.compare import CurveSeries

    prov = SimpleNamespace(
        model_key="wav2vec2-base",
        model_id="x",
        extra={"run": "20260101-ft-words"},
        selection={"split": "test"},
        dataset="speech_commands",
        n_clips=400,
        k=None,
        created="2026-01-01T10:00:00",
        origin=None,
    )
    s = CurveSeries("a" * 64, "word (finetuned)", (0, 1), None, None, None, provenance=prov)
    assert picker_labels([s])[s.id].startswith("run 20260101-ft-words (wav2vec2-base)")
    entry = SimpleNamespace(
        data={
            "checkpoints": [
                {"name": "best", "model": "/c/runs/20260101-ft-words/best-model"},
                {"name": "base", "model": "facebook/wav2vec2-base"},
            ]
        },
        provenance=SimpleNamespace(dataset="sample", n_clips=70, created="2026-01-02T09:30:00"),
    )
    label = series_label(entry)
    assert "best (run 20260101-ft-words) → base (facebook/wav2vec2-base)" in label
    assert "stored 2026-01-02 09:30" in label


def test_the_page_opens_on_curves_that_share_classes(stored: list) -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    picked = at.multiselect(key="cmp_curves").value
    assert len(picked) == 2 and len({p.split(":")[1] for p in picked}) == 1
    assert not any("share no classes" in i.value for i in at.info)
    assert at.get("plotly_chart")  # the per-class difference heatmap has rows
