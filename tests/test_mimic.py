"""Mimicking layers on tiny random models: the plan they make, training lowers the block-output error
below keeping the block's first layer alone, and the trained model saves and loads as a normal model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf

from core.errors import PruneError, TrainingError
from core.models.loading import load_encoder
from core.models.mimic import MimicPlan, mimic_layers, mimic_model, mimic_parameters
from core.models.plans import PruningPlan
from core.training.mimic_training import MimicConfig, block_mse, train_mimic
from core.training.probe_score import pruned_encoder
from tests.helpers.tiny_assets import TINY_WAV2VEC2

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def wav2vec2(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("mimic") / "w2v"
    torch.manual_seed(0)
    config = tf.Wav2Vec2Config(**{**TINY_WAV2VEC2, "num_hidden_layers": 4})
    tf.Wav2Vec2Model(config).eval().save_pretrained(path)
    return load_encoder(path, device="cpu")


def _waves(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(4000) / 16000
    f0 = rng.uniform(150, 600, size=(n, 1))
    return (0.2 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal((n, 4000))).astype(
        np.float32
    )


def test_the_mimic_plan_keeps_each_blocks_first_layer() -> None:
    mimic = MimicPlan.of([(2, 4), (6, 7)], 8)
    assert mimic.plan == PruningPlan.drop([3, 4, 7], 8)
    assert mimic.positions() == (2, 4)
    assert mimic.describe() == "mimic 2-4, 6-7 (drop 3-4, 7)"
    for blocks in ([], [(3, 3)], [(2, 9)], [(4, 5), (2, 3)], [(2, 4), (4, 6)]):
        with pytest.raises(PruneError):
            MimicPlan.of(blocks, 8)


@pytest.mark.slow
def test_training_beats_the_first_layer_alone_and_the_model_round_trips(
    wav2vec2, tmp_path: Path
) -> None:
    mimic = MimicPlan.of([(2, 4)], 4)
    train, test = _waves(48, 0), _waves(16, 1)
    config = MimicConfig(epochs=6, lr=3e-3, batch_size=8)
    steps: list[tuple[int, int]] = []
    trained = train_mimic(
        wav2vec2, mimic, train, test, config, progress=lambda d, t: steps.append((d, t))
    )
    result = trained.result
    # before training the model is exactly the block plan without retraining (first layer alone)
    alone = pruned_encoder(wav2vec2, mimic.plan)
    assert result.mse_before == pytest.approx(block_mse(alone, wav2vec2, mimic, test), rel=1e-5)
    assert result.mse_after[0] < 0.8 * result.mse_before[0]
    assert result.losses[-1] < result.losses[0]
    assert steps[-1] == (6 * 6, 6 * 6)
    # only the mimicking layer changed; the full model is untouched
    assert len(wav2vec2.model.encoder.layers) == 4
    layer_1 = trained.encoder.model.encoder.layers[0].state_dict()
    for name, value in wav2vec2.model.encoder.layers[0].state_dict().items():
        torch.testing.assert_close(layer_1[name], value)
    assert result.mimic_parameters == sum(
        p.numel() for p in wav2vec2.model.encoder.layers[1].parameters()
    )
    # save -> load rebuilds the same 2-layer model of the family's own class
    out = trained.encoder.save_pretrained(tmp_path / "mimic")
    loaded = load_encoder(out, device="cpu")
    assert loaded.n_layers == 2 and type(loaded.model) is type(wav2vec2.model)
    torch.testing.assert_close(loaded.pooled(test[:4]), trained.encoder.pooled(test[:4]))
    assert block_mse(loaded, wav2vec2, mimic, test) == pytest.approx(result.mse_after, rel=1e-4)


def test_mimic_layers_and_their_size_on_a_pruned_model(wav2vec2) -> None:
    import copy

    mimic = MimicPlan.of([(1, 3)], 4)
    model = mimic_model(copy.deepcopy(wav2vec2.model), mimic)
    (layer,) = mimic_layers(model, mimic)
    assert layer is model.encoder.layers[0]
    assert mimic_parameters(model, mimic) == sum(p.numel() for p in layer.parameters())
    with pytest.raises(PruneError):
        mimic_layers(wav2vec2.model, mimic)  # not pruned yet


def test_bad_training_requests_are_one_line(wav2vec2) -> None:
    with pytest.raises(TrainingError):
        MimicConfig(epochs=0)
    with pytest.raises(TrainingError):
        train_mimic(wav2vec2, MimicPlan.of([(2, 3)], 6), _waves(4, 0), _waves(2, 1))
