"""Checkpoint series: which checkpoints a run gives, the series of real (tiny) models through the caches,
its aligned layouts, the CLI's tables and exports, and bad input refused in one line before any work."""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from core import runs as run_store
from core.cli.main import main
from core.data.features import Selection
from core.errors import ResultError
from core.geometry.curves import LayerCurve
from core.io.run_folder import RunFolder
from core.results.precision import Precision
from core.results.series import (
    CheckpointRef,
    aligned_umap,
    load_series,
    make_series,
    parse_checkpoint,
    run_checkpoints,
    stored_aligned_umap,
)
from core.results.series_data import Checkpoint, CheckpointSeries
from core.results.store import list_results


def _saved_model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_checkpoint_names_come_from_the_text_or_the_folder() -> None:
    assert parse_checkpoint("tiny=whisper-tiny.en-offline") == CheckpointRef(
        "tiny", "whisper-tiny.en-offline"
    )
    assert parse_checkpoint("/runs/r1/epochs/e2/") == CheckpointRef("e2", "/runs/r1/epochs/e2/")
    for bad in ("=whisper-tiny.en-offline", "a;b=m", "name=", "x" * 90 + "=m"):
        with pytest.raises(ResultError):
            parse_checkpoint(bad)


def test_a_run_gives_pretrained_then_kept_epochs_else_best_and_last(private_cache: Path) -> None:
    run = run_store.create_run("finetune", {"model": "whisper-tiny.en-offline", "epochs": 3})
    with pytest.raises(ResultError, match="no saved checkpoint"):
        run_checkpoints(run)
    for name in ("best", "last"):
        _saved_model(run / name)
    assert [r.name for r in run_checkpoints(run)] == ["pretrained", "best", "last"]
    folder = RunFolder(run)
    for epoch in (2, 1, 10):
        _saved_model(folder.epoch_model(epoch))
    (run / "epochs" / "e3").mkdir()  # a save that never completed: no config.json
    refs = run_checkpoints(run)
    assert [r.name for r in refs] == ["pretrained", "epoch 1", "epoch 2", "epoch 10"]
    assert refs[0].model == "whisper-tiny.en-offline" and refs[3].model == str(run / "epochs/e10")
    sweep = run_store.create_run("sweep", {"model": "m"})
    with pytest.raises(ResultError, match="not a fine-tuning run"):
        run_checkpoints(sweep)


def test_matrix_leaves_hidden_states_past_a_pruned_checkpoint_blank() -> None:
    cps = (Checkpoint("full", "m", "k1", "w", 3), Checkpoint("pruned", "m2", "k2", "w", 1))
    series = CheckpointSeries(
        cps,
        ("word",),
        {"word": (LayerCurve(scores=(0.1, 0.2, 0.3, 0.4)), LayerCurve(scores=(0.5, 0.6)))},
        "± 0.005",
    )
    assert series.layers == (0, 1, 2, 3)
    m = series.matrix("word")
    assert np.allclose(m[0], [0.1, 0.2, 0.3, 0.4]) and np.allclose(m[1, :2], [0.5, 0.6])
    assert np.isnan(m[1, 2:]).all() and np.isnan(series.matrix("speaker")).all()
    assert CheckpointSeries.from_dict(series.to_dict()) == series


@pytest.mark.parametrize(
    "argv",
    [
        ["series", "only-one=whisper-tiny.en-offline"],
        ["series", "a=whisper-tiny.en-offline", "a=whisper-base-offline"],
        ["series", "a=m1", "b=m2", "--out", "series.txt"],
        ["series", "a=m1", "b=m2", "--aligned-layer", "-1"],
        ["series", "a=m1", "b=m2", "--target-se", "0"],
        ["series", "--run", "no-such-run", "extra=m"],
        ["series", "--run", "../escape"],
        ["series", "a=m1", "b=m2", "--device", "bogus"],
    ],
)
def test_bad_series_invocations_are_one_line_before_any_work(
    argv: list[str], private_cache: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not (private_cache / "features").exists() and not list_results()


@pytest.fixture
def two_checkpoints(model_dir: Path, tiny_assets: dict[str, Path]) -> list[CheckpointRef]:
    """A 3-layer and a 2-layer tiny random wav2vec2 (different depths, same width)."""
    return [
        CheckpointRef("three", str(model_dir)),
        CheckpointRef("two", str(tiny_assets["wav2vec2"])),
    ]


@pytest.mark.slow
def test_series_of_real_models_is_stored_reopens_without_recomputing_and_lays_out(
    two_checkpoints: list[CheckpointRef],
    tree: Path,
    private_cache: Path,
    single_threaded: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import core.data.features as features
    import core.geometry.convexity as convexity_engine

    calls: Counter = Counter()
    for module, name in ((convexity_engine, "layerwise_convexity"), (features, "compute_rows")):
        real = getattr(module, name)

        @functools.wraps(real)  # the store keys requests by the engine's signature
        def counted(*a, _real=real, _name=name, **k):
            calls[_name] += 1
            return _real(*a, **k)

        monkeypatch.setattr(module, name, counted)
    selection = Selection.of("folder", str(tree))
    precision = Precision.exact()
    key, series = make_series(two_checkpoints, selection, precision, device="cpu")
    assert [c.name for c in series.checkpoints] == ["three", "two"]
    assert [c.n_layers for c in series.checkpoints] == [3, 2]
    word = series.matrix("word")
    assert word.shape == (2, 4) and np.isfinite(word[0]).all() and np.isnan(word[1, 3])
    assert calls == {"layerwise_convexity": 2, "compute_rows": 2}
    again_key, again = make_series(two_checkpoints, selection, precision, device="cpu")
    assert again_key == key and again == series
    assert calls == {"layerwise_convexity": 2, "compute_rows": 2}  # features and curves stored
    stored, entry = load_series(key)
    assert stored == series and entry.provenance.extra["checkpoints"] == ["three", "two"]
    assert entry.provenance.n_clips == len(selection.table())

    assert stored_aligned_umap(key, 1) is None
    layouts = aligned_umap(key, 1)
    assert layouts.shape == (2, len(selection.table()), 2) and np.isfinite(layouts).all()
    assert np.array_equal(stored_aligned_umap(key, 1), layouts)
    with pytest.raises(ResultError, match="choose 0..2"):
        aligned_umap(key, 3)  # the 2-layer checkpoint has no hidden state 3


@pytest.mark.slow
def test_cli_series_prints_both_tables_and_exports_with_provenance(
    two_checkpoints: list[CheckpointRef],
    tree: Path,
    private_cache: Path,
    single_threaded: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    names = [f"{r.name}={r.model}" for r in two_checkpoints]
    common = ["--dataset", "folder", "--root", str(tree), "--exhaustive", "--no-progress"]
    out = tmp_path / "series.csv"
    assert main(["series", *names, *common, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "word convexity (rows: checkpoints in order" in text and "speaker convexity" in text
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# provenance: ")
    assert lines[1] == "label_set,checkpoint,order,hidden_state,score,sem"
    rows = [r.split(",") for r in lines[2:]]
    assert {(r[0], r[1]) for r in rows} == {
        (s, c) for s in ("word", "speaker") for c in ("three", "two")
    }
    assert len(rows) == 2 * (4 + 3)  # both label sets: 4 + 3 hidden states
    doc_path = tmp_path / "series.json"
    assert main(["series", *names, *common, "--out", str(doc_path)]) == 0
    doc = json.loads(doc_path.read_text())
    assert [c["name"] for c in doc["checkpoints"]] == ["three", "two"]
    assert doc["provenance"][0]["extra"]["checkpoints"] == ["three", "two"]


@pytest.mark.slow
def test_compare_page_shows_a_stored_series_and_lays_out_a_hidden_state_on_request(
    two_checkpoints: list[CheckpointRef], tree: Path, private_cache: Path, single_threaded: None
) -> None:
    from streamlit.testing.v1 import AppTest

    key, series = make_series(
        two_checkpoints, Selection.of("folder", str(tree)), Precision.exact(), device="cpu"
    )
    at = AppTest.from_file("../app.py", default_timeout=240)
    at.run().switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert "Checkpoint series" in [h.value for h in at.subheader]
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any('"heatmap"' in s and '"three"' in s and '"two"' in s for s in specs)
    assert any("hidden state 3" in s for s in specs)  # per-layer lines over checkpoints
    assert any("same" in c.value and "clips at exact" in c.value for c in at.caption)
    assert not [s for s in at.select_slider if s.label == "Checkpoint"]  # nothing laid out yet
    (go,) = [b for b in at.button if b.label.startswith("Lay out hidden state")]
    go.click().run()
    assert not at.exception, at.exception
    (slider,) = [s for s in at.select_slider if s.label == "Checkpoint"]
    assert list(slider.options) == ["three", "two"]
    slider.set_value("two").run()
    assert not at.exception, at.exception
    assert stored_aligned_umap(key, at.slider[0].value) is not None
