"""The Prune & fine-tune page shows a run's convexity while training: layer x epoch heatmaps of both
label sets and a chosen epoch's curves against the pretrained ones (AppTest, real script runs)."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import runs as run_store
from core.geometry.curves import LayerCurve
from core.io.run_folder import RunFolder, RunState
from core.training.trajectory import TrajectoryPoint

APP = "../app.py"


def _point(epoch: int, word: float, speaker: float, n_clips: int = 40) -> dict:
    curves = {
        "word": LayerCurve(scores=(0.2, word, word), sems=(0.01, 0.01, 0.01)),
        "speaker": LayerCurve(scores=(0.3, speaker, speaker), sems=(0.01, 0.01, 0.01)),
    }
    if n_clips < 12:
        curves = {}
    return {
        "kind": "convexity",
        **TrajectoryPoint(epoch, 3 * epoch, 1.0, 0.5, n_clips, curves).to_dict(),
    }


def _run(points: list[dict], state: str = "done") -> str:
    run = run_store.create_run("finetune", {"model": "m", "epochs": 2, "task": "speakers"})
    folder = RunFolder(run)
    for e in (1, 2):
        folder.append_metric(
            {
                "kind": "eval",
                "step": 3 * e,
                "epoch": e,
                "epoch_seconds": 10.0,
                "accuracy": 0.5,
                "loss": 0.7,
            }
        )
    for row in points:
        folder.append_metric(row)
    folder.set_state(RunState(state), epoch=2)
    return run.name


def _view(run_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["ft_view"] = run_id
    at.run().switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    return at


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_run_view_shows_heatmaps_and_the_chosen_epochs_curve(private_cache: Path) -> None:
    run_id = _run([_point(0, 0.3, 0.4), _point(1, 0.25, 0.6), _point(2, 0.2, 0.8)])
    at = _view(run_id)
    assert any("Convexity while training" in m.value for m in at.markdown)
    (slider,) = [s for s in at.select_slider if s.label == "Curve of epoch"]
    assert list(slider.options) == ["0 (pretrained)", "1", "2"]
    assert "same 40 clips of the selection split" in _captions(at)
    assert "measuring took 5% of the epochs' time" in _captions(at)  # 2 x 0.5 s of 2 x 10 s
    charts = at.get("plotly_chart")
    figures = [c.proto.spec for c in charts]
    assert any('"type":"heatmap"' in f.replace(" ", "") for f in figures)
    assert any("speaker (epoch 2)" in f and "speaker (pretrained)" in f for f in figures)
    (download,) = at.get("download_button")
    assert download.proto.label == "Convexity while training (CSV)"
    slider.set_value(1.0).run()
    assert not at.exception, at.exception
    assert any("speaker (epoch 1)" in c.proto.spec for c in at.get("plotly_chart"))


def test_too_few_probe_clips_say_so_and_a_run_without_points_shows_nothing(
    private_cache: Path,
) -> None:
    at = _view(_run([_point(0, 0.3, 0.4, n_clips=6)]))
    assert "6 probe clips are too few" in _captions(at)
    at = _view(_run([]))
    assert not any("Convexity while training" in m.value for m in at.markdown)


def test_a_cancelled_run_shows_the_points_it_measured(private_cache: Path) -> None:
    at = _view(_run([_point(0, 0.3, 0.4)], state="cancelled"))
    assert any("Convexity while training" in m.value for m in at.markdown)
    assert not [s for s in at.select_slider if s.label == "Curve of epoch"]  # one point: no slider


def test_the_epoch_slider_starts_and_stays_at_the_last_epoch(private_cache: Path) -> None:
    run_id = _run([_point(0, 0.3, 0.4), _point(1, 0.25, 0.6)], state="running")
    at = _view(run_id)
    assert [s for s in at.select_slider if s.label == "Curve of epoch"][0].value == 1.0
    RunFolder(run_store.run_dir(run_id)).append_metric(_point(2, 0.2, 0.8))
    at.run()
    (slider,) = [s for s in at.select_slider if s.label == "Curve of epoch"]
    assert slider.value == 2.0  # the newest epoch, as it arrived
    slider.set_value(1.0).run()
    RunFolder(run_store.run_dir(run_id)).append_metric(_point(3, 0.2, 0.9))
    at.run()
    assert [s for s in at.select_slider if s.label == "Curve of epoch"][0].value == 1.0  # chosen
    heat = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if '"type":"heatmap"' in c.proto.spec.replace(" ", "")
    )
    assert heat["layout"]["xaxis"]["dtick"] == 1 and heat["layout"]["xaxis"]["tickformat"] == "d"


def test_loss_chart_legend_clears_the_titles_and_epochs_are_whole(private_cache: Path) -> None:
    at = _view(_run([]))
    spec = next(
        json.loads(c.proto.spec) for c in at.get("plotly_chart") if "train loss" in c.proto.spec
    )
    layout = spec["layout"]
    assert layout["legend"]["y"] < 0 and layout["legend"]["yanchor"] == "top"  # under the plots
    assert layout["xaxis2"]["dtick"] == 1 and layout["xaxis2"]["tickformat"] == "d"


def test_an_empty_convexity_comparison_says_why(private_cache: Path) -> None:
    run_id = _run([])
    RunFolder(run_store.run_dir(run_id)).write_json(
        RunFolder.CONVEXITY, {"split": "test", "n_clips": 6, "pretrained": {}, "finetuned": {}}
    )
    at = _view(run_id)
    assert any("Convexity after fine-tuning" in m.value for m in at.markdown)
    assert "6 test clips are too few" in _captions(at)
    assert not any("(pretrained)" in c.proto.spec for c in at.get("plotly_chart"))


def test_run_labels_name_their_data_set(private_cache: Path) -> None:
    run_id = _run([])
    at = _view(run_id)
    picker = at.selectbox(key="ft_view")
    assert picker.format_func(run_id).startswith(f"{run_id} · sample · speakers")
    assert at.dataframe[0].value.loc[0, "data"] == "sample"


def test_a_run_with_one_label_set_says_so_instead_of_both(private_cache: Path) -> None:
    rows = [_point(0, 0.3, 0.4), _point(1, 0.25, 0.6)]
    for row in rows:
        del row["curves"]["speaker"]
    at = _view(_run(rows))
    heading = next(m.value for m in at.markdown if "Convexity while training" in m.value)
    assert "both label sets" not in heading and "word labels" in heading
    assert "No speaker curve" in _captions(at)
