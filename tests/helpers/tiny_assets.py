"""Tiny real test assets: random models saved like checkpoints and small audio folders written to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import transformers as tf

SR = 16_000
WORDS = ("go", "stop", "yes")
SPEAKERS = ("aa11", "bb22", "cc33")
TAKES = 2
N = len(WORDS) * len(SPEAKERS) * TAKES
L, D = 3, 32

# a tiny wav2vec2 (L layers of width D, 320 samples per frame) without dropout: the base of every tiny encoder
TINY_WAV2VEC2 = dict(
    hidden_size=D,
    num_hidden_layers=L,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16, 16, 16),
    conv_kernel=(10, 4, 4),
    conv_stride=(5, 4, 4),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,
)
# a tiny Whisper (L encoder layers of width D, one decoder layer): the base of every tiny Whisper config
TINY_WHISPER = dict(
    d_model=D,
    encoder_layers=L,
    decoder_layers=1,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_ffn_dim=64,
    num_mel_bins=80,
    vocab_size=64,
    max_target_positions=16,
)


def write_tree(root: Path) -> Path:
    """A small labelled audio folder: <word>/<speaker>_nohash_<take>.wav, tones per word, timbre per speaker."""
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    for wi, word in enumerate(WORDS):
        (root / word).mkdir(parents=True, exist_ok=True)
        for si, spk in enumerate(SPEAKERS):
            for take in range(TAKES):
                f0 = 200 + 150 * wi
                wave = np.sin(2 * np.pi * f0 * t) + 0.3 * (si + 1) * np.sin(2 * np.pi * 3 * f0 * t)
                wave = 0.2 * wave * np.hanning(SR) + 0.01 * rng.standard_normal(SR)
                n = SR if take == 0 else SR // 2  # a short clip: zero-padded to 1 s by the loader
                sf.write(root / word / f"{spk}_nohash_{take}.wav", wave[:n].astype(np.float32), SR)
    return root


def make_tiny_wav2vec2(path: Path) -> Path:
    """A tiny random wav2vec2 saved like a real checkpoint (config.json + weights)."""
    config = tf.Wav2Vec2Config(**TINY_WAV2VEC2)
    torch.manual_seed(0)
    tf.Wav2Vec2Model(config).eval().save_pretrained(path)
    return path


def make_trainable_wav2vec2(path: Path, layers: int = 2, hidden: int = 32) -> Path:
    """Save a tiny random wav2vec2 encoder (layer-norm front-end, 200 frames per second) to ``path``."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        conv_dim=(16, 16),
        conv_kernel=(10, 8),
        conv_stride=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=False,
        mask_time_prob=0.0,
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        classifier_proj_size=16,
        vocab_size=8,
    )
    torch.manual_seed(0)
    Wav2Vec2Model(cfg).save_pretrained(path)
    return path


def make_tiny_whisper(path: Path) -> Path:
    """Save a tiny random Whisper encoder (as WhisperForAudioClassification) and its feature extractor."""
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForAudioClassification

    cfg = WhisperConfig(
        **{
            **TINY_WHISPER,
            "encoder_layers": 2,
            "vocab_size": 100,
            "max_target_positions": 448,
            "max_source_positions": 1500,
            "classifier_proj_size": 16,
        }
    )
    torch.manual_seed(0)
    WhisperForAudioClassification(cfg).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    return path


def make_tone_noise_dataset(root: Path, speakers: int = 4, per_speaker: int = 15) -> Path:
    """Two easy classes as real .wav files: ``tone`` (sine 300-700 Hz) and ``noise`` (white noise)."""
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    for word in ("tone", "noise"):
        (root / word).mkdir(parents=True, exist_ok=True)
        for s in range(speakers):
            for i in range(per_speaker):
                if word == "tone":
                    x = 0.5 * np.sin(2 * np.pi * rng.uniform(300, 700) * t)
                    x += 0.01 * rng.standard_normal(SR)
                else:
                    x = 0.3 * rng.standard_normal(SR)
                sf.write(root / word / f"spk{s}_nohash_{i}.wav", x.astype(np.float32), SR)
    return root


def tiny_config_dict(assets: dict[str, Path], **kw: object) -> dict[str, object]:
    """A fast fine-tune (or sweep) config on the tone/noise set, as a run's config.json holds it."""
    base: dict[str, object] = dict(
        model=str(assets["wav2vec2"]),
        dataset="folder",
        root=str(assets["data"]),
        task="words",
        eval_split="test",
        epochs=3,
        batch_size=8,
        lr=3e-3,
        warmup_ratio=0.1,
        log_every=1,
        convexity=False,
        device="cpu",
        seed=0,
    )
    base.update(kw)
    return base


def tiny_config(assets: dict[str, Path], **kw: object):
    """A fast fine-tune config (``FinetuneConfig``) on the tone/noise set of the ``tiny_assets`` fixture."""
    from core.training.configs import FinetuneConfig

    return FinetuneConfig.from_dict(tiny_config_dict(assets, **kw))
