"""Retraining-free plan scores: which features a plan reads (cached columns vs a pruned run, keyed by plan),
the probes and their bootstrap intervals, on tiny random models and the tone/noise folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf

from core.data.features import Selection, extract_features
from core.errors import TrainingError
from core.models.loading import resolve
from core.models.plans import PruningPlan
from core.models.pruning import apply_plan
from core.models.request import ModelRequest
from core.training.probe_score import (
    INTERVAL,
    PROBES,
    ProbeOptions,
    SplitRows,
    plan_features,
    probe_scores,
    pruned_encoder,
    score_plan,
    selection_entry,
)
from tests.helpers.tiny_assets import TINY_WAV2VEC2, TINY_WHISPER, make_tone_noise_dataset

pytestmark = pytest.mark.usefixtures("one_thread", "private_cache")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 4-layer tiny wav2vec2, a 3-layer tiny Whisper (1 s window) and the tone/noise folder."""
    base = tmp_path_factory.mktemp("plan-assets")
    torch.manual_seed(0)
    tf.Wav2Vec2Model(
        tf.Wav2Vec2Config(**{**TINY_WAV2VEC2, "num_hidden_layers": 4})
    ).save_pretrained(base / "w2v")
    config = tf.WhisperConfig(**{**TINY_WHISPER, "encoder_layers": 3, "max_source_positions": 50})
    torch.manual_seed(0)
    tf.WhisperForAudioClassification(config).save_pretrained(base / "whisper")
    tf.WhisperFeatureExtractor(feature_size=80).save_pretrained(base / "whisper")
    return {
        "wav2vec2": base / "w2v",
        "whisper": base / "whisper",
        "data": make_tone_noise_dataset(base / "data", speakers=2, per_speaker=10),
    }


def _setup(assets: dict[str, Path], family: str):
    full = resolve(ModelRequest(str(assets[family]))).load(device="cpu")
    selection = Selection.of("folder", root=str(assets["data"]))
    return full, extract_features(full, selection), selection_entry(full, selection)


@pytest.mark.slow
def test_top_plan_output_is_the_full_models_column_without_a_final_layer_norm(assets) -> None:
    """wav2vec2: the top-p model's output equals hidden state p of the full model's cached features."""
    full, features, entry = _setup(assets, "wav2vec2")
    for p in (1, 2, 3):
        got = plan_features(full, PruningPlan.top(p, 4), entry).features
        assert got.shape[1] == p + 1
        np.testing.assert_allclose(got[:, p], features.features[:, p], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_whisper_top_plan_differs_from_the_column_by_the_final_layer_norm(assets) -> None:
    """Whisper: states before p match, the pruned model's state p is LayerNorm'd frames pooled (not the
    raw column); the full plan (p = L) is the column exactly."""
    full, features, entry = _setup(assets, "whisper")
    got = plan_features(full, PruningPlan.top(2, 3), entry).features
    np.testing.assert_allclose(got[:, :2], features.features[:, :2], rtol=1e-4, atol=1e-5)
    assert not np.allclose(got[:, 2], features.features[:, 2], atol=1e-3)
    whole = plan_features(full, PruningPlan.top(3, 3), entry).features
    np.testing.assert_allclose(whole[:, 3], features.features[:, 3], rtol=1e-4, atol=1e-5)
    # and the score reads the pruned run, never the raw column
    score = score_plan(full, features, entry, PruningPlan.top(2, 3), ProbeOptions())
    assert score.features.startswith("pruned encoder run")
    assert score_plan(full, features, entry, PruningPlan.top(3, 3), ProbeOptions()).features == (
        "cached full-model features, hidden state 3"
    )


@pytest.mark.slow
def test_plan_features_are_cached_under_a_key_of_their_own(assets) -> None:
    """A drop plan and the top plan of the same size key apart; a second request reads the cache; the
    top plan's key is the one extracting that pruned encoder would use."""
    full, features, entry = _setup(assets, "wav2vec2")
    drop = plan_features(full, PruningPlan.drop([2], 4), entry)
    top = plan_features(full, PruningPlan.top(3, 4), entry)
    assert drop.key != top.key != features.key
    assert not drop.from_cache and plan_features(full, PruningPlan.drop([2], 4), entry).from_cache
    pruned = pruned_encoder(full, PruningPlan.top(3, 4))
    selection = Selection.of("folder", root=str(assets["data"]))
    assert extract_features(pruned, selection).key == top.key
    # the drop plan's features are really those of a model without layer 2
    model = apply_plan(pruned_encoder(full, PruningPlan.top(4, 4)).model, PruningPlan.drop([2], 4))
    assert len(model.encoder.layers) == 3
    assert not np.allclose(drop.features[:, 3], features.features[:, 3], atol=1e-3)
    assert len(full.model.encoder.layers) == 4  # the full encoder stays whole


@pytest.mark.slow
def test_score_plan_record(assets) -> None:
    full, features, entry = _setup(assets, "wav2vec2")
    options = ProbeOptions(resamples=200)
    top = score_plan(full, features, entry, PruningPlan.top(2, 4), options)
    drop = score_plan(full, features, entry, PruningPlan.drop([2, 3], 4), options)
    assert top.features == "cached full-model features, hidden state 2"
    assert drop.features == "pruned encoder run over the clips"
    assert top.parameters == drop.parameters  # equal size, equal parameters
    for score in (top, drop):
        assert [s.probe for s in score.scores] == list(PROBES)
        assert score.interval == INTERVAL and score.n_train > 0 and score.n_test > 0
        for s in score.scores:
            assert 0 <= s.low <= s.accuracy <= s.high <= 1
    again = score_plan(full, features, entry, PruningPlan.drop([2, 3], 4), options)
    assert again.scores == drop.scores and again.features.endswith("(cached)")
    assert type(top).from_dict(top.to_dict()) == top


def test_probes_on_separable_and_on_random_labels() -> None:
    rng = np.random.default_rng(0)
    n = 200
    labels = np.repeat(np.array(["a", "b"]), n // 2)
    x = rng.standard_normal((n, 8)) + np.where(labels == "a", 6.0, -6.0)[:, None]
    rows = SplitRows(np.arange(0, n, 2), np.arange(1, n, 2), labels)
    for s in probe_scores(x, rows, ProbeOptions(resamples=100)):
        assert (s.accuracy, s.low, s.high) == (1.0, 1.0, 1.0)
    shuffled = SplitRows(rows.train, rows.test, rng.permutation(labels))
    for s in probe_scores(rng.standard_normal((n, 8)), shuffled, ProbeOptions(resamples=500)):
        assert s.low < 0.5 < s.high + 0.1 and s.high - s.low > 0.05


@pytest.mark.parametrize(
    "kw", [{"labels": "words"}, {"confidence": 1.0}, {"resamples": 0}, {"k": 0}]
)
def test_bad_options_are_one_line(kw) -> None:
    with pytest.raises(TrainingError):
        ProbeOptions(**kw)


@pytest.mark.slow
def test_too_few_clips_for_the_probes_is_one_line(assets) -> None:
    """k above the train clips, or a selection without test clips: TrainingError, not a sklearn traceback."""
    full, features, entry = _setup(assets, "wav2vec2")
    with pytest.raises(TrainingError, match="exceeds"):
        score_plan(full, features, entry, PruningPlan.top(2, 4), ProbeOptions(k=10_000))
    train_only = Selection.of("folder", root=str(assets["data"]), split="train")
    subset = extract_features(full, train_only)
    with pytest.raises(TrainingError, match="0 test clips"):
        score_plan(
            full, subset, selection_entry(full, train_only), PruningPlan.top(2, 4), ProbeOptions()
        )
