"""Fine-tuning on real (tiny, random) models and real audio files: it learns, checkpoints reload."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.training.finetune import FinetuneConfig, evaluate, finetune, load_classifier
from tests.tiny_assets import (
    SR,
    make_tiny_whisper,
    make_tone_noise_dataset,
    make_trainable_wav2vec2,
)


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny wav2vec2, a tiny Whisper and the tone/noise folder dataset, built once."""
    base = tmp_path_factory.mktemp("assets")
    return {
        "wav2vec2": make_trainable_wav2vec2(base / "w2v"),
        "whisper": make_tiny_whisper(base / "whisper"),
        "data": make_tone_noise_dataset(base / "data"),
    }


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Own cache folder per test, one torch thread (2 shared cores)."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def tiny_config(assets: dict[str, Path], **kw: object) -> FinetuneConfig:
    """A fast fine-tune config on the tone/noise set."""
    base = dict(
        model=str(assets["wav2vec2"]), dataset="folder", root=str(assets["data"]), task="words",
        eval_split="test", epochs=3, batch_size=8, lr=3e-3, warmup_ratio=0.1, log_every=1,
        convexity=False, device="cpu", seed=0,
    )  # fmt: skip
    base.update(kw)
    return FinetuneConfig(**base)  # type: ignore[arg-type]


def _rows(run: Path, kind: str) -> list[dict]:
    return [
        r
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if r.get("kind") == kind
    ]


def test_tiny_finetune_learns_and_reports_convexity(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    cfg = tiny_config(tiny_assets, epochs=4, convexity=True, convexity_max_pairs=None)
    run = tmp_path / "run"
    result = finetune(cfg, run)
    train = _rows(run, "train")
    assert np.mean([r["loss"] for r in train[-3:]]) < np.mean([r["loss"] for r in train[:3]])
    assert result["best_accuracy"] > 0.75  # chance is 0.5
    assert set(result["per_class_accuracy"]) == {"tone", "noise"}
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
    from core.training.finetune import load_split

    cfg = tiny_config(
        tiny_assets, epochs=2, prune_point=1, eval_split="validation", test_split="test"
    )
    run = tmp_path / "run"
    result = finetune(cfg, run)
    assert result["test_split"] == "test" and 0 <= result["test_accuracy"] <= 1
    clf, enc = load_classifier(run / "best", device="cpu")
    assert enc.n_layers == 1 and clf.config.num_hidden_layers == 1
    assert clf.config.id2label == {0: "noise", 1: "tone"}
    ev = load_split(cfg, "test")
    y = np.array([clf.config.label2id[lab] for lab in ev.labels])
    again = evaluate(clf, enc, ev.waves, y)
    assert again["accuracy"] == pytest.approx(result["test_accuracy"])
    state = torch.load(run / "state.pt", weights_only=True)
    assert state["epoch"] == 2 and "optimizer" in state and "scheduler" in state


def test_whisper_classifier_prunes_trains_and_reloads(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    cfg = tiny_config(
        tiny_assets, model=str(tiny_assets["whisper"]), epochs=1, prune_point=1,
        max_steps_per_epoch=2,
    )  # fmt: skip
    run = tmp_path / "run"
    result = finetune(cfg, run)
    assert result["n_layers"] == 1
    clf, enc = load_classifier(run / "last", device="cpu")
    assert type(clf).__name__ == "WhisperForAudioClassification"
    assert enc.n_layers == 1 and enc.clip_samples == SR  # trimmed 1 s window survives reload
    x = np.zeros((2, SR), dtype=np.float32)
    inputs = {k: v for k, v in enc.preprocess(x).items() if k != "lengths"}
    assert clf(**inputs).logits.shape == (2, 2)
