"""Convexity while a model learns: a probe point before the first step and after every epoch, kept
exactly once through a crash and a resume, on pruned models too; the trajectory reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import TrainingError
from core.geometry.curves import LayerCurve
from core.training import finetune as finetune_module
from core.training.finetune import finetune
from core.training.trajectory import (
    TrajectoryPoint,
    probe_set,
    read_trajectory,
    trajectory_of,
)
from tests.helpers.tiny_assets import tiny_config


@pytest.fixture(autouse=True)
def _isolated(private_cache: Path, single_threaded: None) -> None:
    """Own cache folder per test, one torch thread."""


def _probe_config(assets: dict[str, Path], **kw: object):
    """Validation split as the selection split and probe (12 clips of 2 words and 4 speakers)."""
    return tiny_config(
        assets, eval_split="validation", test_split="test", max_steps_per_epoch=2, **kw
    )


def _point(epoch: int, step: int, progress: float = 1.0, score: float = 0.5) -> dict:
    curve = LayerCurve(scores=(score, score + 0.1))
    return {
        "kind": "convexity",
        **TrajectoryPoint(epoch, step, progress, 0.2, 30, {"word": curve}).to_dict(),
    }


def test_probe_set_is_a_seeded_subset_in_clip_order() -> None:
    waves = np.arange(40, dtype=np.float32).reshape(20, 2)
    words = [f"w{i % 3}" for i in range(20)]
    speakers = [f"s{i % 4}" for i in range(20)]
    a = probe_set("validation", waves, words, speakers, cap=8, seed=1)
    b = probe_set("validation", waves, words, speakers, cap=8, seed=1)
    assert len(a) == 8 and a.words == b.words and np.array_equal(a.waves, b.waves)
    rows = a.waves[:, 0].astype(int) // 2
    assert list(rows) == sorted(rows) and [words[i] for i in rows] == a.words
    assert len(probe_set("validation", waves, words, speakers, cap=None, seed=1)) == 20


def test_reader_keeps_the_last_point_per_step_in_training_order_and_skips_malformed_rows() -> None:
    rows = [
        _point(0, 0, 0.0),
        _point(1, 4, 1.0, score=0.1),
        {"kind": "eval", "epoch": 1, "epoch_seconds": 4.0},
        _point(1, 4, 1.0, score=0.3),  # rewritten (a resumed epoch): the last one counts
        _point(1, 2, 0.5),
        {"kind": "convexity", "epoch": "x"},
        {"kind": "train", "epoch": 1, "step": 4},
    ]
    traj = trajectory_of(rows)
    assert [(p.epoch, p.step) for p in traj.points] == [(0, 0), (1, 2), (1, 4)]
    assert [p.position for p in traj.points] == [0.0, 0.5, 1.0]
    assert traj.label_sets == ("word",) and traj.layers == (0, 1)
    assert np.allclose(traj.matrix("word")[2], [0.3, 0.4])
    assert np.isnan(traj.matrix("speaker")).all()
    assert traj.overhead() == pytest.approx(
        0.4 / 4.0
    )  # two epoch-1 points of 0.2 s, epoch 0 not counted


@pytest.mark.slow
def test_a_run_records_pretrained_and_every_epoch_once_through_a_crash_and_resume(
    tiny_assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _probe_config(tiny_assets, epochs=2, prune_point=1)
    run = tmp_path / "run"
    real_save = finetune_module.save_state
    saves: list[int] = []

    def crash_on_second(path, clf, opt, sched, state):
        saves.append(state.epoch)
        if len(saves) == 2:  # after epoch 2's probe point, before its checkpoint
            raise KeyboardInterrupt
        real_save(path, clf, opt, sched, state)

    monkeypatch.setattr(finetune_module, "save_state", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        finetune(cfg, run)
    assert [p.epoch for p in read_trajectory(run).points] == [0, 1, 2]
    monkeypatch.setattr(finetune_module, "save_state", real_save)
    finetune(cfg, run)  # resumes after epoch 1: epoch 2 is redone, its first point dropped

    traj = read_trajectory(run)
    assert [p.epoch for p in traj.points] == [0, 1, 2]
    assert traj.label_sets == ("word", "speaker")
    assert traj.layers == (0, 1)  # pruned at 1: hidden states 0 and 1
    assert all(p.n_clips == 12 for p in traj.points)
    word = traj.matrix("word")
    assert np.isfinite(word).all() and ((word >= 0) & (word <= 1)).all()
    assert traj.overhead() is not None and traj.overhead() > 0


@pytest.mark.slow
def test_steps_option_adds_mid_epoch_points_and_off_records_none(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    finetune(_probe_config(tiny_assets, epochs=1, trajectory_every=1), tmp_path / "steps")
    traj = read_trajectory(tmp_path / "steps")
    assert [(p.epoch, p.epoch_progress) for p in traj.points] == [(0, 0.0), (1, 0.5), (1, 1.0)]
    finetune(_probe_config(tiny_assets, epochs=1, trajectory=False), tmp_path / "off")
    assert read_trajectory(tmp_path / "off").points == ()


@pytest.mark.parametrize(
    "bad",
    [
        {"trajectory_target_se": 0},
        {"trajectory_target_se": float("nan")},
        {"trajectory_clips": 3},
        {"trajectory_every": -1},
    ],
)
def test_bad_probe_settings_are_refused(tiny_assets: dict[str, Path], bad: dict) -> None:
    with pytest.raises(TrainingError):
        _probe_config(tiny_assets, **bad).check()


def test_jobs_trajectory_prints_every_point_and_exports_csv_and_json(
    private_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import json

    from core import runs as run_store
    from core.cli.main import main
    from core.io.run_folder import RunFolder

    run = run_store.create_run(
        "finetune", {"model": "m", "task": "speakers", "trajectory_clips": 40}
    )
    assert main(["jobs", "trajectory", run.name]) == 2  # nothing measured yet: one line
    assert "measured no convexity" in capsys.readouterr().err
    for row in (_point(0, 0, 0.0), _point(1, 4, 1.0, score=0.3)):
        RunFolder(run).append_metric(row)
    out = tmp_path / "t.csv"
    assert main(["jobs", "trajectory", run.name, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pretrained: word 0.50 0.60" in printed and "epoch 1 (step 4): word 0.30 0.40" in printed
    lines = out.read_text().splitlines()
    about = json.loads(lines[0].removeprefix("# run: "))
    assert about["run_id"] == run.name and about["trajectory_clips"] == 40
    assert lines[1] == "label_set,epoch,step,position,hidden_state,score,sem,n_clips"
    assert len(lines) == 2 + 4 and lines[-1].startswith("word,1,4,1.0,1,0.4")
    doc_path = tmp_path / "t.json"
    assert main(["jobs", "trajectory", run.name, "--out", str(doc_path)]) == 0
    doc = json.loads(doc_path.read_text())
    assert [p["epoch"] for p in doc["run"]["points"]] == [0, 1]
    assert main(["jobs", "trajectory", run.name, "--out", str(tmp_path / "t.txt")]) == 2
