"""Tests for the model registry, the SpeechEncoder interface and pruning, on tiny random models of every family."""

from __future__ import annotations

import copy
import gc
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf
from torch import nn

from core.errors import HubUnavailableError, UnknownModelError
from core.models.encoder import SpeechEncoder, base_class
from core.models.loading import load_encoder, resolve, resolve_model
from core.models.pruning import count_parameters, encoder_of, prune
from core.models.registry import FAMILIES as REGISTERED
from core.models.registry import MODELS
from core.models.request import ModelRequest
from tests.helpers.tiny_assets import TINY_WAV2VEC2, TINY_WHISPER, D, L

P = 2  # prune point used throughout
SR = 16_000

# family name -> (config factory, bare model class, sequence-classification class)
FAMILIES = {
    "wav2vec2": (
        lambda **k: tf.Wav2Vec2Config(**TINY_WAV2VEC2, **k),
        tf.Wav2Vec2Model,
        tf.Wav2Vec2ForSequenceClassification,
    ),
    "wav2vec2-stable": (  # large-style: LayerNorm conv front-end, pre-LN layers, final LayerNorm
        lambda **k: tf.Wav2Vec2Config(
            **TINY_WAV2VEC2, do_stable_layer_norm=True, feat_extract_norm="layer", **k
        ),
        tf.Wav2Vec2Model,
        tf.Wav2Vec2ForSequenceClassification,
    ),
    "hubert": (
        lambda **k: tf.HubertConfig(**TINY_WAV2VEC2, **k),
        tf.HubertModel,
        tf.HubertForSequenceClassification,
    ),
    "wavlm-stable": (
        lambda **k: tf.WavLMConfig(
            **TINY_WAV2VEC2,
            do_stable_layer_norm=True,
            feat_extract_norm="layer",
            num_buckets=16,
            **k,
        ),
        tf.WavLMModel,
        tf.WavLMForSequenceClassification,
    ),
    "unispeech-sat": (
        lambda **k: tf.UniSpeechSatConfig(**TINY_WAV2VEC2, **k),
        tf.UniSpeechSatModel,
        tf.UniSpeechSatForSequenceClassification,
    ),
    "data2vec-audio": (
        lambda **k: tf.Data2VecAudioConfig(
            **{kk: v for kk, v in TINY_WAV2VEC2.items() if kk != "num_conv_pos_embeddings"},
            num_conv_pos_embeddings=3,
            conv_pos_kernel_size=5,
            **k,
        ),
        tf.Data2VecAudioModel,
        tf.Data2VecAudioForSequenceClassification,
    ),
    "whisper": (
        lambda **k: tf.WhisperConfig(
            **TINY_WHISPER,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
            **k,
        ),
        tf.models.whisper.modeling_whisper.WhisperEncoder,
        tf.WhisperForAudioClassification,
    ),
}
FINAL_LN = {"wav2vec2-stable", "wavlm-stable", "whisper"}


def _bare(family: str) -> nn.Module:
    """A tiny random bare encoder of ``family`` (seeded)."""
    make_config, cls, _ = FAMILIES[family]
    torch.manual_seed(0)
    return cls(make_config()).eval()


def _waves(b: int = 2, n: int = 8000, seed: int = 0) -> np.ndarray:
    """Random speech-like waveforms (B, n) float32."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((b, n))).astype(np.float32)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(params=list(FAMILIES))
def family(request: pytest.FixtureRequest) -> str:
    """Every family, one test each."""
    return request.param


def test_every_registered_family_loads_and_has_a_tiny_config_here() -> None:
    """A family added to the registry without its encoder class or a tiny config in this file's
    ``FAMILIES`` (the model-family recipe in docs/architecture.md) fails here."""
    assert set(REGISTERED) <= {name.removesuffix("-stable") for name in FAMILIES}
    for family in REGISTERED:
        _, cls, _ = FAMILIES[family if family in FAMILIES else f"{family}-stable"]
        assert base_class(family) is cls


def test_registry_covers_paper_models() -> None:
    """All paper models plus Whisper and the offline keys are registered with sane shapes."""
    ids = {s.hf_id for s in MODELS.values()}
    for hf_id in (
        "facebook/wav2vec2-base",
        "facebook/wav2vec2-large",
        "facebook/hubert-base-ls960",
        "facebook/hubert-large-ll60k",
        "microsoft/wavlm-base",
        "microsoft/wavlm-large",
        "vasista22/ccc-wav2vec2-base",
        "microsoft/unispeech-sat-base-plus",
        "facebook/data2vec-audio-base",
        "openai/whisper-tiny",
        "openai/whisper-base",
        "openai/whisper-small",
    ):
        assert hf_id in ids
    assert MODELS["whisper-tiny.en-offline"].source == "offline"
    assert MODELS["whisper-base-offline"].source == "offline"
    for spec in MODELS.values():
        assert spec.n_layers in (4, 6, 12, 24) and spec.hidden_size in (384, 512, 768, 1024)
    assert resolve_model("facebook/hubert-base-ls960").key == "hubert-base"
    assert resolve_model("openai/whisper-base").source == "hub"


def test_hidden_states_shapes(family: str) -> None:
    """L+1 hidden states of shape (B, T, D), a (B, T) mask, and pooled (B, L+1, D)."""
    enc = SpeechEncoder(_bare(family), device="cpu")
    assert enc.n_layers == L and enc.hidden_size == D
    assert enc.final_layer_norm == (family in FINAL_LN)
    inputs = enc.preprocess(_waves(2, 8000))
    states = enc.hidden_states(inputs)
    mask = enc.frame_mask(inputs)
    assert len(states) == L + 1
    b, t = mask.shape
    assert b == 2 and all(h.shape == (2, t, D) for h in states)
    if family == "whisper":  # trimmed to 1 s: 100 mel frames, 50 encoder frames, 25 cover 0.5 s
        assert enc.input_mode == "trimmed" and inputs["input_features"].shape[-1] == 100
        assert t == 50 and mask.sum(1).tolist() == [25, 25]
    else:
        assert enc.input_mode == "waveform" and bool(mask.all())
    pooled = enc.pooled(_waves(3, 8000))
    assert pooled.shape == (3, L + 1, D) and pooled.dtype == torch.float32
    assert torch.isfinite(pooled).all()
    assert str(L) in enc.describe()


def test_pruned_states_match_full(family: str) -> None:
    """States 0..p of the pruned model equal the full model's; with a final LayerNorm, state p = LN(full state p)."""
    full = SpeechEncoder(_bare(family), device="cpu")
    pruned = SpeechEncoder(prune(copy.deepcopy(full.model), P), device="cpu")
    assert pruned.n_layers == P
    inputs = full.preprocess(_waves(2, 8000))
    hs_full, hs_pruned = full.hidden_states(inputs), pruned.hidden_states(inputs)
    assert len(hs_pruned) == P + 1
    for i in range(P):
        torch.testing.assert_close(hs_pruned[i], hs_full[i], rtol=1e-4, atol=1e-5)
    if family in FINAL_LN:
        # The pruned encoder's final LayerNorm now follows layer p; the full model's state p is raw.
        expected = encoder_of(full.model).layer_norm(hs_full[P])
        assert not torch.allclose(hs_pruned[P], hs_full[P], atol=1e-3)
    else:
        expected = hs_full[P]
    torch.testing.assert_close(hs_pruned[P], expected, rtol=1e-4, atol=1e-5)


def test_prune_classifier_reads_state_p_and_survives_save_load(family: str, tmp_path) -> None:
    """A pruned ...ForSequenceClassification reloads with p layers and its logits come from hidden state p."""
    make_config, _, clf_cls = FAMILIES[family]
    torch.manual_seed(0)
    model = clf_cls(make_config(num_labels=5, classifier_proj_size=8, use_weighted_layer_sum=False))
    model.eval()
    prune(model, P)
    assert model.config.num_hidden_layers == P
    model.save_pretrained(tmp_path)
    reloaded = clf_cls.from_pretrained(tmp_path).eval()
    assert len(encoder_of(reloaded).layers) == P and reloaded.config.num_hidden_layers == P

    enc = SpeechEncoder(reloaded, device="cpu")  # shares the reloaded weights
    inputs = enc.preprocess(_waves(2, 8000))
    state_p = enc.hidden_states(inputs)[P]
    key = "input_features" if family == "whisper" else "input_values"
    with torch.no_grad():
        logits = reloaded(inputs[key]).logits
        manual = reloaded.classifier(reloaded.projector(state_p).mean(1))
    torch.testing.assert_close(logits, manual, rtol=1e-4, atol=1e-5)

    # The bare encoder also loads from the pruned classifier checkpoint through load_encoder.
    loaded = load_encoder(tmp_path, device="cpu")
    assert loaded.n_layers == P and loaded.spec.source == "local" and loaded.spec.n_layers == P
    torch.testing.assert_close(loaded.pooled(_waves(2, 8000)), enc.pooled(_waves(2, 8000)))


def test_prune_weighted_layer_sum_keeps_p_plus_one_weights() -> None:
    """Heads with a learned weighted layer sum keep weights for hidden states 0..p."""
    make_config, _, clf_cls = FAMILIES["wav2vec2"]
    model = clf_cls(make_config(num_labels=3, use_weighted_layer_sum=True)).eval()
    prune(model, P)
    assert model.layer_weights.shape == (P + 1,)
    with torch.no_grad():
        assert model(torch.from_numpy(_waves(1, 4000))).logits.shape == (1, 3)


def test_parameter_counts_drop_by_dropped_layers(family: str) -> None:
    """Pruning removes exactly the dropped layers' parameters, and the modules are really freed."""
    make_config, _, clf_cls = FAMILIES[family]
    for model in (_bare(family), clf_cls(make_config(num_labels=4))):
        before = count_parameters(model)
        assert before["total"] == sum(p.numel() for p in model.parameters())
        assert before["total"] == before["front_end"] + before["transformer"] + before["head"]
        assert before["front_end"] > 0 and before["transformer"] > 0
        layers = encoder_of(model).layers
        dropped = sum(p.numel() for layer in list(layers)[P:] for p in layer.parameters())
        ref = weakref.ref(layers[L - 1])
        del layers
        prune(model, P)
        if (
            ref() is not None
        ):  # reference counting frees it at once today; a cycle would need the GC
            gc.collect()
        assert ref() is None, "dropped layer still referenced"
        after = count_parameters(model)
        assert before["total"] - after["total"] == dropped
        assert before["transformer"] - after["transformer"] == dropped
        assert after["front_end"] == before["front_end"] and after["head"] == before["head"]


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
def test_pooled_ignores_padding(family: str) -> None:
    """pooled() of a padded clip equals pooled() of the same clip alone, unpadded."""
    enc = SpeechEncoder(_bare(family), device="cpu")
    waves = _waves(2, 8000, seed=1)
    short = 5000
    waves[1, short:] = 0.0
    batch = enc.pooled(waves, lengths=[8000, short])
    alone = enc.pooled(waves[1:2, :short])
    first = enc.pooled(waves[0:1])
    torch.testing.assert_close(batch[1], alone[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batch[0], first[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["trimmed", "padded"])
def test_whisper_padded_masks_to_clip(mode: str) -> None:
    """In both Whisper modes, the valid-frame mask covers the clip (25 frames of 0.5 s)."""
    enc = SpeechEncoder(_bare("whisper"), whisper_input=mode, device="cpu")
    inputs = enc.preprocess(_waves(1, 8000))
    mask = enc.frame_mask(inputs)
    assert mask.shape == (1, 50 if mode == "trimmed" else 1500) and int(mask.sum()) == 25
    assert enc.input_mode == mode


def test_whisper_trimmed_vs_padded() -> None:
    """Whisper runs trimmed (1 s, 50 positions) and padded (30 s, 1500); the representations differ."""
    model = _bare("whisper")
    padded = SpeechEncoder(copy.deepcopy(model), whisper_input="padded", device="cpu")
    trimmed = SpeechEncoder(model, device="cpu")
    assert trimmed.input_mode == "trimmed" and padded.input_mode == "padded"
    assert trimmed.model.config.max_source_positions == 50
    assert trimmed.model.embed_positions.weight.shape[0] == 50
    assert padded.model.config.max_source_positions == 1500
    assert padded.preprocess(_waves(1, SR))["input_features"].shape[-1] == 3000
    waves = _waves(2, SR)
    a, b = trimmed.pooled(waves), padded.pooled(waves)
    assert a.shape == b.shape == (2, L + 1, D)
    # State 0 (convs + positions, no attention) matches; attention over 30 s of padding changes the rest.
    torch.testing.assert_close(a[:, 0], b[:, 0], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a[:, 1:], b[:, 1:], atol=1e-3)
    assert "trimmed to 1 s" in trimmed.describe() and "final LayerNorm" in trimmed.describe()


def test_whisper_trimmed_pruned_roundtrip(tmp_path) -> None:
    """A trimmed, pruned Whisper encoder saved by SpeechEncoder reloads trimmed and pruned."""
    enc = SpeechEncoder(_bare("whisper"), device="cpu")
    prune(enc, P)
    assert enc.n_layers == P
    enc.save_pretrained(tmp_path)
    again = load_encoder(tmp_path, device="cpu")
    assert again.n_layers == P and again.clip_samples == SR and again.input_mode == "trimmed"
    torch.testing.assert_close(again.pooled(_waves(2, SR)), enc.pooled(_waves(2, SR)))
    with pytest.raises(ValueError, match="trimmed"):
        load_encoder(tmp_path, whisper_input="padded", device="cpu")


def test_load_encoder_local_directory_dispatches_on_model_type(tmp_path) -> None:
    """A local directory of any family loads through resolve_model / load_encoder."""
    for family in ("wav2vec2", "data2vec-audio", "whisper"):
        path = tmp_path / family
        _bare(family).save_pretrained(path)
        spec = resolve_model(path)
        assert spec.source == "local" and spec.family == family.split("-stable")[0]
        assert spec.n_layers == L and spec.params and spec.params > 0
        enc = load_encoder(path, device="cpu")
        assert enc.family == spec.family and enc.n_layers == L


def test_unknown_model_is_one_line() -> None:
    """An unknown name raises UnknownModelError with one line that lists what exists."""
    with pytest.raises(UnknownModelError) as info:
        load_encoder("wav2vec3-gigantic")
    message = str(info.value)
    assert "\n" not in message and "wav2vec2-base" in message
    with pytest.raises(UnknownModelError):
        resolve_model("/no/such/model/dir")


def test_offline_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """With HF_HUB_OFFLINE=1 an uncached hub model fails at once with HubUnavailableError."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("facebook/wav2vec2-base", "config.json"), str):
        pytest.skip("facebook/wav2vec2-base is cached here, so it loads offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(HubUnavailableError) as info:
        load_encoder("facebook/wav2vec2-base")
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "\n" not in message and "HF_HUB_OFFLINE" in message and "offline" in message.lower()


def test_prune_out_of_range() -> None:
    """p outside 1..L is a ValueError (a PruneError, so a one-line LabError) that names the valid range."""
    model = _bare("wav2vec2")
    for p in (0, L + 1, -1):
        with pytest.raises(ValueError, match=rf"1 <= p <= {L}"):
            prune(model, p)
    assert len(encoder_of(model).layers) == L


def test_offline_whisper_preset_if_installed() -> None:
    """The offline Whisper preset loads real weights through core.models.whisper_offline (skipped if not installed)."""
    whisper_offline = pytest.importorskip("core.models.whisper_offline")
    if not whisper_offline.offline_whisper_available("whisper-tiny.en-offline"):
        pytest.skip("the whisper-tiny.en weight package is not installed")
    enc = load_encoder("whisper-tiny.en-offline", device="cpu")
    assert (enc.n_layers, enc.hidden_size, enc.input_mode) == (4, 384, "trimmed")
    assert enc.spec.source == "offline" and enc.model.config.max_source_positions == 50
    assert enc.pooled(_waves(2, SR)).shape == (2, 5, 384)


# ------------------------------------------------------------------------------------------------
# Errors a user can cause are LabErrors; model identity comes from the registry


def test_user_errors_are_lab_errors_that_keep_their_builtin_base(tmp_path) -> None:
    """Bad prune points, bad input options and unknown offline keys: one-line LabErrors (and still ValueError/KeyError)."""
    from core.errors import LabError, ModelInputError, PruneError, UnknownOfflineModelError
    from core.models.whisper_offline import offline_whisper_dir

    model = _bare("wav2vec2")
    for p in (0, 1.5, True):
        with pytest.raises(PruneError) as info:
            prune(model, p)
        assert isinstance(info.value, LabError | ValueError) and "\n" not in str(info.value)
    enc = SpeechEncoder(_bare("whisper"), device="cpu")
    with pytest.raises(ModelInputError, match="waveforms must be"):
        enc.preprocess(np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(ModelInputError, match="whisper_input must be"):
        SpeechEncoder(_bare("whisper"), whisper_input="cropped", device="cpu")
    with pytest.raises(UnknownOfflineModelError) as info:
        offline_whisper_dir("whisper-huge-offline", tmp_path)
    assert isinstance(info.value, KeyError) and isinstance(info.value, LabError)
    assert str(info.value).startswith("unknown offline Whisper 'whisper-huge-offline'; known: [")


def test_model_identity_of_a_directory_follows_its_files(tmp_path) -> None:
    """A local directory is identified by its weight/config files: same files, same id; new weights, new id."""
    import hashlib

    from core.io.atomic import sha256_file
    from core.models import ModelIdentity, encoder_identity

    def model_identity(path: Path) -> ModelIdentity:
        return resolve(ModelRequest(str(path))).identity

    path = tmp_path / "w2v"
    _bare("wav2vec2").save_pretrained(path)
    ident = model_identity(path)
    assert (ident.source, ident.family, ident.id, ident.revision) == (
        "local",
        "wav2vec2",
        str(path),
        None,
    )
    expected = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".json")):
        expected.update(f"{f.name}\0{sha256_file(f)}\n".encode())
    assert ident.weights == "files-sha256:" + expected.hexdigest()
    assert ModelIdentity.from_dict(ident.to_dict()) == ident
    loaded = load_encoder(path, device="cpu")
    assert encoder_identity(loaded) == ident  # loading does not change who it is
    prune(loaded, P)
    loaded.save_pretrained(path)  # other weights in the same folder
    assert model_identity(path).weights != ident.weights


def test_in_memory_and_hub_identity() -> None:
    """An encoder without a spec is identified by its parameters; a hub model by the config's commit."""
    from core.models.hub import hub_revision
    from core.models.loading import encoder_identity

    a = SpeechEncoder(_bare("wav2vec2"), device="cpu")
    b = SpeechEncoder(_bare("wav2vec2"), device="cpu")
    ia, ib = encoder_identity(a), encoder_identity(b)
    assert ia == ib and ia.source == "in-memory" and ia.weights.startswith("params-sha256:")
    prune(b, P)
    assert encoder_identity(b).weights != ia.weights
    config = tf.Wav2Vec2Config(**TINY_WAV2VEC2)
    config._commit_hash = "0123abcd"
    assert hub_revision("facebook/wav2vec2-base", config) == "0123abcd"
    ident = resolve(ModelRequest("wav2vec2-base")).identity
    if ident.revision is None:  # not in the local hub cache: unknown until loaded
        assert not ident.known and ident.weights is None
    else:
        assert ident.weights == f"hub:facebook/wav2vec2-base@{ident.revision}"


@pytest.mark.parametrize("family", ["whisper", "wav2vec2"])
def test_prefetched_inputs_equal_inline_ones(family: str) -> None:
    """Preprocessing in a background thread yields the same batches, in order, as doing it inline."""
    from core.models.classifier import batched_inputs

    enc = SpeechEncoder(_bare(family), device="cpu")
    waves = _waves(7, 8000, seed=3)
    batches = [np.array([4, 0]), np.array([6, 1, 2]), np.array([5]), np.array([3])]
    inline = list(batched_inputs(enc, waves, batches, prefetch=False))
    ahead = list(batched_inputs(enc, waves, batches, prefetch=True))
    assert len(inline) == len(ahead) == 4
    for a, b, idx in zip(inline, ahead, batches, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].shape[0] == len(idx)
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert list(batched_inputs(enc, waves, [], prefetch=True)) == []
