"""The bundled sample's stored curves: the committed file reads as typed curves, and
``scripts/sample_curves.py`` writes such a file from real measurements (tiny Whisper, real clips)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.data.sample_curves import SAMPLE_CURVES, SampleCurves, read_sample_curves
from core.errors import DatasetError
from core.io.paths import REPO_ROOT

SAMPLE = REPO_ROOT / "data" / "sample"


def test_committed_curves_hold_both_models_both_label_sets_with_exactness() -> None:
    curves = read_sample_curves(SAMPLE_CURVES)
    assert curves.names == ("whisper-tiny.en-offline", "whisper-base-offline")
    assert [m.n_layers for m in curves.models] == [4, 6]
    for m in curves.models:
        assert m.n_clips == 2520
        for name in ("word", "speaker"):
            c = m.curve(name)
            assert all(0 <= s <= 1 for s in c.scores)
            assert all(se == 0 for se, e in zip(c.sems, c.exact, strict=True) if e)
    assert "2,520 clips" in curves.provenance and "load average" in curves.provenance


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no stored curves"):
        read_sample_curves(tmp_path / "absent.json")
    (tmp_path / "old.json").write_text(json.dumps({"models": {"m": {"word": {"scores": [1]}}}}))
    with pytest.raises(DatasetError, match="format"):
        read_sample_curves(tmp_path / "old.json")
    good = read_sample_curves(SAMPLE_CURVES).to_dict()
    good["models"][next(iter(good["models"]))]["word"]["sems"] = [0.0]
    (tmp_path / "bad.json").write_text(json.dumps(good))
    with pytest.raises(DatasetError, match=r"malformed: ModelCurves\.word: .*per hidden state"):
        read_sample_curves(tmp_path / "bad.json")


def test_script_measures_a_folder_and_compares_two(
    tiny_assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Three words x four voices of the sample (exact curves), measured twice: identical, diff 0."""
    from scripts.sample_curves import main

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "mini"
    voices = sorted({p.name.split("_nohash_")[0] for p in (SAMPLE / "yes").glob("*.ogg")})[:4]
    rels = [
        f"{w}/{v}_nohash_{t}.ogg" for w in ("yes", "no", "up") for v in voices for t in range(3)
    ]
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / rel, root / rel)
    (root / "validation_list.txt").write_text(rels[0] + "\n")
    (root / "testing_list.txt").write_text(rels[1] + "\n")
    model = str(tiny_assets["whisper"])
    out = tmp_path / "curves.json"
    assert main(["--root", str(root), "--models", model, "--k", "3", "--out", str(out)]) == 0
    curves = SampleCurves.from_dict(json.loads(out.read_text()))
    (m,) = curves.models
    assert m.n_clips == 36 and m.n_layers == 2 and m.word.all_exact and m.speaker.all_exact
    assert set(m.word.sems) == {0.0} and "exact" in curves.settings
    capsys.readouterr()
    assert main(["--compare", str(out), str(out)]) == 0
    table = capsys.readouterr().out
    assert "| max abs. difference | 0.000 | 0.000 |" in table


def test_home_draws_the_stored_curves_with_exactness_and_names_model_and_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    stored = read_sample_curves(SAMPLE_CURVES)
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    assert not at.exception, at.exception
    for name in stored.names:
        at.radio(key="home_model").set_value(name).run()
        assert not at.exception, at.exception
        m = stored.model(name)
        captions = "\n".join(c.value for c in at.caption)
        assert m.describe in captions and f"{m.n_clips:,} clips" in captions
        assert "not Speech Commands" in captions and "load average" in captions
        (chart,) = at.get("plotly_chart")
        traces = json.loads(chart.proto.spec)["data"]
        assert [t["y"] for t in traces] == [list(m.word.scores), list(m.speaker.scores)]
        for trace, curve in zip(traces, (m.word, m.speaker), strict=True):
            assert trace["error_y"]["array"] == list(curve.sems)
            marks = ["diamond" if e else "circle" for e in curve.exact]
            assert trace["marker"]["symbol"] == marks


def test_stored_whole_sample_curves_have_the_papers_shape() -> None:
    """The shape tests/test_whisper_sample.py pins on a slice, on the stored whole-sample curves."""
    for m in read_sample_curves(SAMPLE_CURVES).models:
        speaker, word = m.speaker.scores, m.word.scores
        peak = max(range(len(speaker)), key=speaker.__getitem__)
        assert 1 <= peak < len(speaker) / 2 and speaker[-1] <= 0.5 * speaker[peak], m.model
        assert word[-1] - word[0] > 0.3 and word[-1] == max(word), m.model
