"""Fine-tuning on real (tiny, random) models and real audio files: it learns, checkpoints reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import LabError, TrainingError
from core.models.classifier import load_classifier
from core.training.evaluation import EvalResult, evaluate
from core.training.finetune import FinetuneConfig, finetune
from core.training.finetune_result import FinetuneResult
from tests.helpers.tiny_assets import SR, tiny_config


@pytest.fixture(autouse=True)
def _isolated(private_cache: Path, single_threaded: None) -> None:
    """Own cache folder per test, one torch thread (2 shared cores)."""


def _rows(run: Path, kind: str) -> list[dict]:
    return [
        r
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if r.get("kind") == kind
    ]


@pytest.mark.slow
def test_tiny_finetune_learns_and_reports_convexity(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_assets, epochs=4, convexity=True, convexity_max_pairs=None)
    run = tmp_path / "run"
    result = finetune(cfg, run)
    train = _rows(run, "train")
    assert np.mean([r["loss"] for r in train[-3:]]) < np.mean([r["loss"] for r in train[:3]])
    assert result.best_accuracy > 0.75  # chance is 0.5
    assert set(result.best.per_class) == {"tone", "noise"}
    assert len(_rows(run, "eval")) == 4
    assert all({"step", "epoch", "loss", "lr", "throughput", "time"} <= set(r) for r in train)
    conv = json.loads((run / "convexity.json").read_text())
    for stage in ("pretrained", "finetuned"):
        assert set(conv[stage]) == {"word", "speaker"}
        assert len(conv[stage]["word"]["scores"]) == 3  # hidden states 0..2
    assert conv["relevant"] == "word"


def test_checkpoint_reloads_pruned_with_label_map(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    from core.training.task_data import load_split

    cfg = tiny_config(
        tiny_assets, epochs=2, prune_point=1, eval_split="validation", test_split="test"
    )
    run = tmp_path / "run"
    result = finetune(cfg, run)
    assert result.test_split == "test" and 0 <= result.test_accuracy <= 1
    clf, enc = load_classifier(run / "best", device="cpu")
    assert enc.n_layers == 1 and clf.config.num_hidden_layers == 1
    assert clf.config.id2label == {0: "noise", 1: "tone"}
    ev = load_split(cfg, "test")
    y = np.array([clf.config.label2id[lab] for lab in ev.labels])
    again = evaluate(clf, enc, ev.waves, y)
    assert again.accuracy == pytest.approx(result.test_accuracy)
    state = torch.load(run / "state.pt", weights_only=True)
    assert state["epoch"] == 2 and "optimizer" in state and "scheduler" in state


def test_whisper_classifier_prunes_trains_and_reloads(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    cfg = tiny_config(
        tiny_assets,
        model=str(tiny_assets["whisper"]),
        epochs=1,
        prune_point=1,
        max_steps_per_epoch=2,
    )
    run = tmp_path / "run"
    result = finetune(cfg, run)
    assert result.n_layers == 1
    clf, enc = load_classifier(run / "last", device="cpu")
    assert type(clf).__name__ == "WhisperForAudioClassification"
    assert enc.n_layers == 1 and enc.clip_samples == SR  # trimmed 1 s window survives reload
    x = np.zeros((2, SR), dtype=np.float32)
    inputs = {k: v for k, v in enc.preprocess(x).items() if k != "lengths"}
    assert clf(**inputs).logits.shape == (2, 2)


def test_defaults_select_on_validation_score_on_test_and_compare_convexity_on_test_clips(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """Default splits: best epoch by validation accuracy, figures on test, both curves on the test clips."""
    from core.models.loading import load_encoder
    from core.models.pruning import prune
    from core.training.model_convexity import convexity_curves, pooled_features
    from core.training.task_data import load_split

    defaults = FinetuneConfig(model="m")
    assert (defaults.data.eval_split, defaults.data.test_split) == ("validation", "test")
    cfg = tiny_config(
        tiny_assets,
        eval_split=defaults.data.eval_split,
        test_split=defaults.data.test_split,
        epochs=2,
        prune_point=1,
        convexity=True,
        convexity_max_pairs=None,
    )
    run = tmp_path / "run"
    result = finetune(cfg, run)

    evals = _rows(run, "eval")
    assert {r["split"] for r in evals} == {"validation"}
    accs = [r["accuracy"] for r in evals]
    assert result.best_epoch == 1 + accs.index(max(accs))
    val, test = load_split(cfg, "validation"), load_split(cfg, "test")
    assert result.eval_split == "validation" and result.best.n == len(val.labels)
    assert result.test_split == "test" and result.test.n == len(test.labels)
    assert result.scored is result.test and result.scored_split == "test"
    assert "words" in result.split_rule

    clf, enc = load_classifier(run / "best", device="cpu")
    y = np.array([clf.config.label2id[lab] for lab in test.labels])
    assert evaluate(clf, enc, test.waves, y).accuracy == pytest.approx(result.test_accuracy)

    conv = json.loads((run / "convexity.json").read_text())
    assert (conv["split"], conv["n_clips"]) == ("test", len(test.labels))
    assert (result.convexity.split, result.convexity.n_clips) == ("test", len(test.labels))
    tuned = convexity_curves(
        pooled_features(enc, test.waves), test.words, test.speakers, max_pairs=None
    )
    pre = load_encoder(cfg.model, device="cpu")
    prune(pre.model, 1)
    pretrained = convexity_curves(
        pooled_features(pre, test.waves), test.words, test.speakers, max_pairs=None
    )
    for name in ("word", "speaker"):
        assert conv["finetuned"][name]["scores"] == pytest.approx(list(tuned[name].scores))
        assert conv["pretrained"][name]["scores"] == pytest.approx(list(pretrained[name].scores))

    saved = json.loads((run / "result.json").read_text())
    assert FinetuneResult.from_dict(saved) == result  # the typed result round-trips through JSON
    assert saved["params"]["total"] == result.params.total > 0


def test_typed_results_round_trip_and_read_old_run_folders() -> None:
    from core.training.model_convexity import ConvexityComparison, LayerCurve
    from core.training.sweep import SweepPoint, SweepResult

    ev = EvalResult(accuracy=0.5, loss=0.7, n=4, per_class={"a": 1.0, "b": 0.0})
    assert EvalResult.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev
    curve = LayerCurve(scores=(0.2, 0.4), sems=(0.01, 0.02), layers=(0, 1))
    comp = ConvexityComparison("test", 8, "word", {"word": curve}, {"word": curve})
    assert ConvexityComparison.from_dict(json.loads(json.dumps(comp.to_dict()))) == comp

    old = {  # a result.json as written before the typed results (no n_test, split_rule, ...)
        "model": "m",
        "task": "words",
        "prune_point": 2,
        "n_layers": 2,
        "labels": ["a", "b"],
        "n_train": 10,
        "n_eval": 4,
        "eval_split": "test",
        "best_epoch": 1,
        "best_accuracy": 0.75,
        "best_loss": 0.5,
        "per_class_accuracy": {"a": 1.0, "b": 0.5},
        "params": {"total": 100, "front_end": 10, "transformer": 80, "head": 10, "trainable": 90},
        "train_seconds": 3.0,
        "epoch_seconds_median": 1.5,
        "steps_per_epoch": 2,
        "device": "cpu",
        "checkpoints": {"best": "b", "last": "l"},
        "convexity": {"pretrained": {"word": [0.1, 0.2]}, "finetuned": {"word": [0.3, 0.4]}},
        "total_seconds": 5.0,
    }
    res = FinetuneResult.from_dict(old)
    assert (res.best_accuracy, res.params.total, res.test, res.scored_split) == (
        0.75,
        100,
        None,
        "test",
    )
    assert res.convexity.finetuned["word"] == (0.3, 0.4) and res.convexity.split is None
    again = res.to_dict()
    assert {k: again[k] for k in old} == old  # every key an old reader uses is written the same
    assert FinetuneResult.from_dict(again) == res

    point = SweepPoint(
        prune_point=1,
        suggested=True,
        accuracy=0.9,
        test_accuracy=0.8,
        best_epoch=2,
        params_total=100,
        params_trainable=90,
        train_seconds=2.0,
        epoch_seconds_median=1.0,
        convexity_split="test",
        finetuned_word_convexity_last=0.5,
    )
    sweep = SweepResult(
        model="m",
        task="words",
        suggested=1,
        fraction=0.95,
        points=(2, 1),
        rows=(point,),
        pretrained_convexity={"word": curve},
        eval_split="validation",
        test_split="test",
        convexity_split="train",
    )
    text = json.dumps(sweep.to_dict())
    back = SweepResult.from_dict(json.loads(text))
    assert back.rows[0].test_accuracy == 0.8 and back.points == (2, 1)
    assert back.rows[0].finetuned_word_convexity_last == 0.5
    assert back.pretrained_convexity == sweep.pretrained_convexity
    old_sweep = {
        "suggested": 1,
        "rows": [
            {
                "prune_point": 1,
                "suggested": True,
                "accuracy": 0.9,
                "test_accuracy": None,
                "best_epoch": 1,
                "params_total": 1,
                "params_trainable": 1,
                "train_seconds": 1.0,
                "epoch_seconds_median": 1.0,
            }
        ],
    }
    assert SweepResult.from_dict(old_sweep).rows[0].prune_point == 1


def test_user_errors_are_lab_errors(tiny_assets: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    from core.training.sweep import resolve_points

    one_class = tmp_path / "one"
    shutil.copytree(Path(tiny_assets["data"]) / "tone", one_class / "tone")
    cfg = tiny_config(tiny_assets, root=str(one_class))
    with pytest.raises(TrainingError, match="class") as err:
        finetune(cfg, tmp_path / "run")
    assert isinstance(err.value, LabError)
    assert not (tmp_path / "run" / "state.pt").exists()
    with pytest.raises(LabError, match="epochs must be at least 1"):
        finetune(tiny_config(tiny_assets, epochs=0), tmp_path / "run0")
    with pytest.raises(LabError, match="outside 1..4"):
        resolve_points([9], suggested=2, n_layers=4)
    with pytest.raises(LabError, match="neither"):
        resolve_points(["half"], suggested=2, n_layers=4)


def test_speaker_regex_and_the_speakers_split_rule(tiny_assets: dict[str, Path]) -> None:
    """Speaker ids come from the configured regex; speakers-task test clips are unseen clips of seen speakers."""
    from core.data.datasets import select
    from core.training.task_data import clip_table, split_rule

    cfg = tiny_config(tiny_assets, task="speakers", speaker_regex=r"^(spk[01])")
    table = clip_table(cfg)
    assert set(table.speakers) == {"spk0", "spk1", ""}
    train = set(select(table, "speakers", "train").speakers)
    test = select(table, "speakers", "test")
    assert len(test) and set(test.speakers) <= train == {"spk0", "spk1"}
    assert not set(test.paths) & set(select(table, "speakers", "train").paths)
    assert "unseen clips of speakers seen in training" in split_rule(table, "speakers")


def test_sweep_returns_typed_rows_scored_on_test(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """One-point sweep: the row carries validation and test accuracy; a rerun reads the finished point."""
    from core.training.sweep import SweepConfig, SweepResult, run_sweep

    base = tiny_config(
        tiny_assets,
        eval_split="validation",
        test_split="test",
        epochs=1,
        max_steps_per_epoch=2,
        convexity=True,
        convexity_max_pairs=20,
    )
    cfg = SweepConfig.from_dict({**base.to_dict(), "points": [1, "keep 2"], "benchmark": False})
    run = tmp_path / "sweep"
    result = run_sweep(cfg, run)
    assert isinstance(result, SweepResult) and result.points == (1, "keep 2")
    row, planned = result.rows
    # a plan point: its own folder, named by the plan's key; its config and result name the plan
    sub = run / "pL2-k2"
    assert json.loads((sub / "config.json").read_text())["config"]["plan"] == "keep 2"
    assert json.loads((sub / "result.json").read_text())["plan"] == "keep 2"
    assert (planned.plan, planned.prune_point, planned.label) == ("keep 2", 1, "keep 2")
    assert planned.pretrained_relevant_convexity is None and not planned.suggested
    assert row.plan is None and row.label == "p = 1"
    point = json.loads((run / "p1" / "result.json").read_text())
    assert row.accuracy == point["best_accuracy"] and row.test_accuracy == point["test_accuracy"]
    assert row.convexity_split == "test" and row.params_total == point["params"]["total"]
    assert row.pretrained_word_convexity_last == point["convexity"]["pretrained"]["word"][-1]
    assert (result.eval_split, result.test_split) == ("validation", "test")
    assert SweepResult.from_dict(json.loads((run / "results.json").read_text())) == result
    assert (run / "results.csv").read_text().startswith("prune_point,suggested,accuracy")
    assert run_sweep(cfg, run) == result  # finished points are read back, not trained again


def test_check_run_refuses_in_one_line_before_a_run_folder(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """What a run would fail on is refused before launch, each in one line (a one-class folder says so once)."""
    import shutil

    from core.training.finetune import check_run

    plan = check_run(tiny_config(tiny_assets, eval_split="validation"))
    assert plan.classes == ("noise", "tone") and plan.n_train and plan.n_selection and plan.n_test
    one_class = tmp_path / "one"
    shutil.copytree(Path(tiny_assets["data"]) / "tone", one_class / "tone")
    bad = {
        "every clip is in one word sub-folder": tiny_config(tiny_assets, root=str(one_class)),
        "needs a folder": tiny_config(tiny_assets, root=None),
        "out of range": tiny_config(tiny_assets, prune_point=7),
        "epochs must be at least 1": tiny_config(tiny_assets, epochs=0),
        "has no group": tiny_config(tiny_assets, task="speakers", speaker_regex="^spk"),
    }
    for message, cfg in bad.items():
        with pytest.raises(LabError, match=message) as err:
            check_run(cfg)
        assert "\n" not in str(err.value)


def test_shown_parameter_counts_are_the_runs_counts(tiny_assets: dict[str, Path]) -> None:
    """The page's per-p figures (encoder + head for the task's classes) equal what a run counts."""
    from core.models.classifier import build_classifier, classifier_params_by_prune_point
    from core.models.pruning import count_parameters

    for key in ("wav2vec2", "whisper"):
        model = str(tiny_assets[key])
        shown = classifier_params_by_prune_point(model, 3)
        assert set(shown) == {1, 2}
        for p in (1, 2):
            clf, _ = build_classifier(model, ["a", "b", "c"], p, device="cpu")
            counted = count_parameters(clf)
            assert shown[p]["total"] == counted["total"], (key, p)
            assert shown[p]["head"] == counted["head"] > 0
        assert shown[2]["total"] > shown[1]["total"]
        assert classifier_params_by_prune_point(model, 5)[2]["total"] > shown[2]["total"]


def test_a_few_test_clips_of_many_speakers_do_not_fail_a_finished_run(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """Convexity at the end leaves out what the test clips cannot measure (a label set without two
    classes of two clips; no more clips than the graph's k) instead of failing the trained run."""
    for name, caps, measured in (("unique", None, {"word"}), ("few", 4, set())):
        cfg = tiny_config(
            tiny_assets,
            eval_split="validation",
            max_test_clips=caps,
            epochs=1,
            max_steps_per_epoch=1,
            convexity=True,
            speaker_regex=r"^(spk\d_nohash_\d+)",
        )  # every clip its own speaker
        result = finetune(cfg, tmp_path / name)
        conv = json.loads((tmp_path / name / "convexity.json").read_text())
        assert result.test is not None and (caps is None or result.test.n == caps)
        assert set(conv["pretrained"]) == set(conv["finetuned"]) == measured, name
