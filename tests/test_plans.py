"""Pruning plans: validation, descriptions, and pruned models of every family equal a hand-written forward
over exactly the kept layers of the original model, before and after save/load."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import transformers as tf
from torch import nn

from core.errors import PruneError
from core.models.encoder import SpeechEncoder
from core.models.plans import PruningPlan, parse_layers
from core.models.pruning import (
    apply_plan,
    count_parameters,
    encoder_of,
    params_by_plan,
    params_by_prune_point,
    prune,
)
from tests.helpers.tiny_assets import TINY_WAV2VEC2, TINY_WHISPER

L4 = 4
BASE = {**TINY_WAV2VEC2, "num_hidden_layers": L4}
FAMILIES = {
    "wav2vec2": lambda: tf.Wav2Vec2Model(tf.Wav2Vec2Config(**BASE)),
    "wav2vec2-stable": lambda: tf.Wav2Vec2Model(
        tf.Wav2Vec2Config(**BASE, do_stable_layer_norm=True, feat_extract_norm="layer")
    ),
    "hubert": lambda: tf.HubertModel(tf.HubertConfig(**BASE)),
    "wavlm": lambda: tf.WavLMModel(tf.WavLMConfig(**BASE, num_buckets=16)),
    "wavlm-stable": lambda: tf.WavLMModel(
        tf.WavLMConfig(**BASE, do_stable_layer_norm=True, feat_extract_norm="layer", num_buckets=16)
    ),
    "unispeech-sat": lambda: tf.UniSpeechSatModel(tf.UniSpeechSatConfig(**BASE)),
    "data2vec-audio": lambda: tf.Data2VecAudioModel(
        tf.Data2VecAudioConfig(
            **{k: v for k, v in BASE.items() if k != "num_conv_pos_embeddings"},
            num_conv_pos_embeddings=3,
            conv_pos_kernel_size=5,
        )
    ),
    "whisper": lambda: tf.models.whisper.modeling_whisper.WhisperEncoder(
        tf.WhisperConfig(
            **{**TINY_WHISPER, "encoder_layers": L4, "max_source_positions": 50},
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
    ),
}
PLANS = (
    PruningPlan.drop([1], L4),
    PruningPlan.drop([2, 3], L4),
    PruningPlan.keep([1, 4], L4),
    PruningPlan.keep([3], L4),
    PruningPlan.top(2, L4),
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(family: str) -> nn.Module:
    torch.manual_seed(0)
    return FAMILIES[family]().eval()


def _inputs(encoder: SpeechEncoder) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    return encoder.preprocess((0.1 * rng.standard_normal((2, 16_000))).astype(np.float32))


def _first(out: object) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out  # type: ignore[index,return-value]


def reference_states(model: nn.Module, x: torch.Tensor, plan: PruningPlan) -> list[torch.Tensor]:
    """Hidden states 0..size of the original (unpruned) ``model`` running only ``plan.kept``, written out
    from the architecture: front-end, the kept layers in order, a final LayerNorm where the family has one."""
    encoder = encoder_of(model)
    layers = [encoder.layers[i - 1] for i in plan.kept]
    with torch.no_grad():
        if type(model).__name__ == "WhisperEncoder":
            h = nn.functional.gelu(model.conv1(x))
            h = nn.functional.gelu(model.conv2(h)).permute(0, 2, 1)
            h = h + model.embed_positions.weight[: h.shape[1]]
            states = [h]
            for layer in layers:
                h = _first(layer(h, None))
                states.append(h)
            states[-1] = model.layer_norm(states[-1])
            return states
        stable = bool(getattr(model.config, "do_stable_layer_norm", False))
        h = _first(model.feature_projection(model.feature_extractor(x).transpose(1, 2)))
        h = h + encoder.pos_conv_embed(h)
        if not stable:
            h = encoder.layer_norm(h)
        states = [h]
        bias = None
        if hasattr(
            encoder.layers[0].attention, "rel_attn_embed"
        ):  # WavLM: the bias of the original layer 1
            b, t = h.shape[:2]
            attention = encoder.layers[0].attention
            bias = attention.compute_bias(t, t).unsqueeze(0).repeat(b, 1, 1, 1)
            bias = bias.view(b * attention.num_heads, t, t)
        for layer in layers:
            if bias is not None:
                h, bias = layer(h, position_bias=bias)
            else:
                h = _first(layer(h))
            states.append(h)
        if stable:
            states[-1] = encoder.layer_norm(states[-1])
        return states


def test_every_registered_family_has_its_plan_checks() -> None:
    """A family added to the registry without a tiny model here skips the plan equivalence checks."""
    from core.models.registry import FAMILIES as REGISTERED

    assert set(REGISTERED) <= {name.removesuffix("-stable") for name in FAMILIES}


@pytest.fixture(params=list(FAMILIES))
def family(request: pytest.FixtureRequest) -> str:
    return request.param


def test_pruned_model_equals_forward_over_kept_layers(family: str, tmp_path) -> None:
    """Every plan: the pruned model's hidden states equal the reference forward of the original's kept
    layers; the other layers are gone; save/load rebuilds the same model."""
    original = _model(family)
    inputs = _inputs(SpeechEncoder(original, device="cpu"))
    key = "input_features" if family == "whisper" else "input_values"
    for plan in PLANS:
        expected = reference_states(original, inputs[key], plan)
        model = apply_plan(copy.deepcopy(original), plan)
        assert len(encoder_of(model).layers) == plan.size
        assert model.config.num_hidden_layers == plan.size
        states = SpeechEncoder(model, device="cpu").hidden_states(inputs)
        assert len(states) == plan.size + 1
        for got, want in zip(states, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        # parameters: exactly what params_by_plan predicted without pruning
        assert count_parameters(model) == params_by_plan(original, plan), plan.describe()

        model.save_pretrained(tmp_path / plan.key())
        reloaded = type(model).from_pretrained(tmp_path / plan.key()).eval()
        assert len(encoder_of(reloaded).layers) == plan.size
        again = SpeechEncoder(reloaded, device="cpu").hidden_states(inputs)
        for got, want in zip(again, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_wavlm_bias_moves_into_the_new_first_layer() -> None:
    """Dropping WavLM's layer 1 keeps its relative position bias, now in the new first layer."""
    original = _model("wavlm")
    bias = encoder_of(original).layers[0].attention.rel_attn_embed.weight.detach().clone()
    model = apply_plan(copy.deepcopy(original), PruningPlan.drop([1, 2], L4))
    first = encoder_of(model).layers[0].attention
    torch.testing.assert_close(first.rel_attn_embed.weight, bias)
    assert not hasattr(encoder_of(model).layers[1].attention, "rel_attn_embed")


def test_top_plan_is_prune() -> None:
    """``prune(enc, p)`` and ``apply_plan(enc, top(p, L))`` build the same model."""
    original = _model("wav2vec2-stable")
    a = prune(copy.deepcopy(original), 2)
    b = apply_plan(copy.deepcopy(original), PruningPlan.top(2, L4))
    assert a.state_dict().keys() == b.state_dict().keys()
    for name, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[name])
    assert params_by_prune_point(original)[2] == params_by_plan(original, PruningPlan.top(2, L4))


def test_plan_for_another_depth_is_refused() -> None:
    with pytest.raises(PruneError, match="this model has 4"):
        apply_plan(_model("hubert"), PruningPlan.top(2, 12))


def test_weighted_layer_sum_keeps_the_kept_states() -> None:
    """A head's weighted layer sum keeps the weights of hidden state 0 and the kept layers."""
    torch.manual_seed(0)
    config = tf.Wav2Vec2Config(**BASE, num_labels=3, use_weighted_layer_sum=True)
    model = tf.Wav2Vec2ForSequenceClassification(config).eval()
    with torch.no_grad():
        model.layer_weights.copy_(torch.arange(L4 + 1, dtype=torch.float32))
    apply_plan(model, PruningPlan.drop([2, 3], L4))
    assert model.layer_weights.tolist() == [0.0, 1.0, 4.0]


def test_describe_and_key() -> None:
    assert PruningPlan.drop([3, 4], 12).describe() == "drop 3-4"
    assert PruningPlan.keep([1, 2, 5, 6, 7, 8, 9, 10, 11, 12], 12).describe() == "drop 3-4"
    assert PruningPlan.keep([1, 2, 5, 9], 12).describe() == "keep 1-2, 5, 9"
    assert PruningPlan.top(12, 12).describe() == "keep all 12"
    assert PruningPlan.top(8, 12).kept == tuple(range(1, 9)) and PruningPlan.top(8, 12).is_top
    assert not PruningPlan.drop([3], 12).is_top
    assert PruningPlan.drop([3, 4], 12).key() == "L12-k1-2.5-12"
    assert PruningPlan.drop([3, 4], 12).hidden_state_index() == {
        0: 0,
        **{i + 1: layer for i, layer in enumerate((1, 2, *range(5, 13)))},
    }
    assert parse_layers("3-4") == (3, 4) and parse_layers("1-2, 5 ,7-8") == (1, 2, 5, 7, 8)
    plan = PruningPlan.drop([3, 4], 12)
    assert PruningPlan.from_dict(plan.to_dict()) == plan


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PruningPlan.keep([], 4), "no layers to keep"),
        (lambda: PruningPlan.drop([], 4), "no layers to drop"),
        (lambda: PruningPlan.drop([5], 4), "layer 5 is out of range"),
        (lambda: PruningPlan.keep([0, 1], 4), "layer 0 is out of range"),
        (lambda: PruningPlan.drop([2, 2], 4), "twice"),
        (lambda: PruningPlan.keep([3, 1], 4), "increasing order"),
        (lambda: PruningPlan.drop([1, 2, 3, 4], 4), "leaves no model"),
        (lambda: PruningPlan.top(0, 4), "out of range"),
        (lambda: PruningPlan.top(2.0, 4), "integer"),
        (lambda: PruningPlan.keep([True], 4), "integers"),
        (lambda: parse_layers("3-x"), "must read like"),
        (lambda: parse_layers("4-3"), "backwards"),
        (lambda: parse_layers("٣"), "must read like"),
    ],
)
def test_bad_plans_are_one_line(build, message: str) -> None:
    with pytest.raises(PruneError, match=message) as info:
        build()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("family", "cls"),
    [
        ("wavlm", tf.WavLMForSequenceClassification),
        ("whisper", tf.WhisperForAudioClassification),
    ],
)
def test_classifier_with_a_plan_reloads_the_same_logits(family: str, cls, tmp_path) -> None:
    """A ...ForSequenceClassification pruned by a drop plan (layer 1 gone) saves and reloads the same logits."""
    config = _model(family).config
    config.num_labels = 3
    torch.manual_seed(0)
    model = cls(config).eval()
    apply_plan(model, PruningPlan.drop([1, 3], L4))
    assert len(encoder_of(model).layers) == 2
    model.save_pretrained(tmp_path)
    reloaded = cls.from_pretrained(tmp_path).eval()
    inputs = _inputs(SpeechEncoder(reloaded, device="cpu"))
    key = "input_features" if family == "whisper" else "input_values"
    with torch.no_grad():
        torch.testing.assert_close(reloaded(inputs[key]).logits, model(inputs[key]).logits)
