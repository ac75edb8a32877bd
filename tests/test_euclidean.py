"""Euclidean convexity through the classifier's own forward pass, on tiny real models and real audio."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import LabError
from core.models.classifier import build_classifier, model_inputs
from core.models.pruning import transformer_layers
from core.training.euclidean import (
    LAMBDAS,
    _hidden_inputs,
    _swap_input,
    entry_module,
    euclidean_convexity,
)
from tests.helpers.tiny_assets import make_tiny_whisper, make_trainable_wav2vec2

pytestmark = pytest.mark.usefixtures("one_thread")
LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module", params=["wav2vec2", "whisper"])
def classifier(request, tmp_path_factory: pytest.TempPathFactory):
    """A tiny classifier of each family over three labels, and its input builder."""
    root = tmp_path_factory.mktemp(request.param)
    make = make_trainable_wav2vec2 if request.param == "wav2vec2" else make_tiny_whisper
    clf, enc = build_classifier(make(root / "m"), LABELS, device="cpu")
    clf.eval()
    return clf, partial(model_inputs, enc)


def _clips(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    return np.stack(
        [
            0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(16000)
            for i in range(n)
        ]
    ).astype(np.float32)


def test_swapping_in_the_recorded_input_reproduces_the_logits(classifier):
    clf, inputs = classifier
    waves = _clips(3)
    with torch.no_grad():
        expected = clf(**inputs(waves)).logits
        for layer in range(len(transformer_layers(clf)) + 1):
            module = entry_module(clf, layer)
            hidden = _hidden_inputs(clf, inputs, module, waves)
            with _swap_input(module, None, hidden):
                got = clf(**inputs(waves)).logits
            torch.testing.assert_close(got, expected)


def test_identical_clips_score_their_own_accuracy(classifier):
    """Pairs of identical clips: every segment point is the clip itself, so the score is 0 or 1."""
    clf, inputs = classifier
    base = _clips(3, seed=1)
    waves = np.repeat(base, 2, axis=0)  # clips 2i and 2i+1 are identical
    labels = ["a", "a", "b", "b", "c", "c"]
    with torch.no_grad():
        predicted = clf(**inputs(base)).logits.argmax(-1).tolist()
    results = euclidean_convexity(clf, inputs, waves, labels, pairs_per_class=5)
    for res in results:
        for i, c in enumerate(LABELS):
            assert res.per_class[c]["score"] == float(predicted[i] == LABELS.index(c))
            assert res.per_class[c]["n_pairs"] == 1


def test_scores_sems_and_constant_head(classifier):
    clf, inputs = classifier
    waves = _clips(9, seed=2)
    labels = ["a", "b", "c"] * 3
    results = euclidean_convexity(clf, inputs, waves, labels, pairs_per_class=2, layers=[0, 1])
    assert [r.layer for r in results] == [0, 1]
    for r in results:
        assert 0.0 <= r.score <= 1.0 and r.sem >= 0.0
        assert all(v["n_pairs"] == 2 for v in r.per_class.values())
    head = clf.classifier
    with torch.no_grad():
        saved = head.weight.clone(), head.bias.clone()
        head.weight.zero_()
        head.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))  # everything is predicted as "a"
        try:
            res = euclidean_convexity(clf, inputs, waves, labels, pairs_per_class=3, layers=[1])[0]
        finally:
            head.weight.copy_(saved[0])
            head.bias.copy_(saved[1])
    assert res.per_class["a"]["score"] == 1.0
    assert res.per_class["b"]["score"] == res.per_class["c"]["score"] == 0.0
    assert res.score == pytest.approx(1 / 3)
    assert len(LAMBDAS) == 10 and LAMBDAS[0] == pytest.approx(1 / 11)


def test_bad_layer_and_labels(classifier):
    clf, inputs = classifier
    with pytest.raises(ValueError, match="layer must lie") as err:
        entry_module(clf, 99)
    assert isinstance(err.value, LabError)  # a user's request, shown as one line
    with pytest.raises(ValueError, match="no class") as err:
        euclidean_convexity(clf, inputs, _clips(2), ["x", "y"])
    assert isinstance(err.value, LabError)


def test_cli_on_a_finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`python -m core euclidean RUN` reads the run's config and best checkpoint, prints and saves."""
    import json

    from core.cli.main import main
    from core.runs import folders, lifecycle
    from tests.helpers.tiny_assets import make_tone_noise_dataset

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    config = {
        "model": str(make_trainable_wav2vec2(tmp_path / "m")),
        "dataset": "folder",
        "task": "words",
        "root": str(make_tone_noise_dataset(tmp_path / "data", speakers=3, per_speaker=6)),
        "eval_split": "test",
        "epochs": 1,
        "batch_size": 8,
        "lr": 3e-3,
        "convexity": False,
        "device": "cpu",
        "prune_point": 1,
    }
    run = lifecycle.create_run("finetune", config)
    assert lifecycle.run_job(run) == 0 and folders.read_status(run)["state"] == "done"
    out = tmp_path / "e.json"
    assert main(["euclidean", str(run), "--pairs", "3", "--no-progress", "--out", str(out)]) == 0
    assert "layer" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert [r["layer"] for r in doc["results"]] == [0, 1]  # pruned at 1: hidden states 0..1
    assert all(0.0 <= r["score"] <= 1.0 for r in doc["results"])
    assert main(["euclidean", str(tmp_path)]) == 2  # not a run folder: one clear line
    assert "not a run folder" in capsys.readouterr().err
