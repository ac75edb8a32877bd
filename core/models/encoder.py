"""``SpeechEncoder``: one runtime interface over wav2vec2, HuBERT, WavLM, data2vec-audio and Whisper encoders.

Hidden-state convention (``SpeechEncoder.hidden_states``): for L transformer layers there are L+1
states; index 0 is the input to layer 1 (after the feature encoder / convs, projection and positional
embedding), index i < L is the raw output of layer i, and index L is the encoder's output. For families
whose encoder ends in a final LayerNorm (Whisper; wav2vec2-style models with ``do_stable_layer_norm``,
e.g. HuBERT/WavLM large) state L *includes* that LayerNorm, like transformers' Whisper output, the
transformers 4.x wav2vec2 output and the input of every classification head. (transformers 5.x itself
returns the pre-LayerNorm state for the wav2vec2 family; we apply the encoder's own LayerNorm to it.)
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core.errors import ModelInputError
from core.models.pruning import encoder_of, has_final_layer_norm, speech_base_of
from core.models.registry import SAMPLING_RATE, ModelSpec, family_of_config, input_mode_of
from core.models.whisper_offline import trim_whisper_encoder

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from core.models.loading import ResolvedModel

__all__ = ["SpeechEncoder", "base_class", "default_feature_extractor"]

_WHISPER_FULL_POSITIONS = 1500  # 30 s at 50 encoder frames per second


def base_class(family: str) -> type[PreTrainedModel]:
    """The transformers class of the bare encoder for a family."""
    import transformers as tf

    return {
        "wav2vec2": tf.Wav2Vec2Model,
        "hubert": tf.HubertModel,
        "wavlm": tf.WavLMModel,
        "unispeech-sat": tf.UniSpeechSatModel,
        "data2vec-audio": tf.Data2VecAudioModel,
        "whisper": tf.models.whisper.modeling_whisper.WhisperEncoder,
    }[family]


def default_feature_extractor(config: Any) -> Any:
    """The family's standard feature extractor, for checkpoints that ship no preprocessor_config.json."""
    from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    if family_of_config(config) == "whisper":
        return WhisperFeatureExtractor(
            feature_size=int(config.num_mel_bins), sampling_rate=SAMPLING_RATE
        )
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLING_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=getattr(config, "feat_extract_norm", "layer") == "layer",
    )


def _trim_whisper(encoder: Any, n_positions: int) -> None:
    """Cut a Whisper encoder's position table (and ``max_source_positions``) to ``n_positions``, in place."""
    if n_positions == encoder.embed_positions.num_embeddings:
        return
    trim_whisper_encoder(encoder, n_positions * encoder.conv1.stride[0] * encoder.conv2.stride[0])


class SpeechEncoder:
    """One interface over every supported speech encoder: preprocessing, L+1 hidden states, valid-frame mean pooling.

    Conventions (all families): ``hidden_states`` returns L+1 tensors (B, T, D); index 0 is the input of
    transformer layer 1, index i the output of layer i. Where the encoder ends in a final LayerNorm
    (``final_layer_norm``: Whisper, and "stable layer norm" wav2vec2-style models such as HuBERT/WavLM
    large) index L is the output *after* that LayerNorm while 0..L-1 are raw layer outputs, so a curve
    over layers has a normalisation step at its last point. After ``prune(model, p)`` the LayerNorm moves
    onto layer p: the pruned model's state p equals LayerNorm(full model's state p).

    Padding: ``frame_mask`` marks the frames that cover real audio. wav2vec2-family models also receive
    the sample-level attention mask. Where padding still leaks into real frames (a GroupNorm-over-time
    conv front-end, as in the base models; data2vec-audio's stacked positional convolutions;
    ``padding_exact`` is False) ``pooled`` runs clips of different lengths in separate, unpadded groups. Whisper has no attention mask: its input is always the fixed window
    (``input_mode``: "trimmed" to ``clip_samples``, default 1 s, or "padded" to 30 s), and pooling
    covers the frames of the clip.

    The wrapped model is used, not copied: "trimmed" mode cuts the position table of the Whisper encoder
    you pass (and its config, shared with any wrapper) in place; ``prune(encoder, p)`` prunes it in place.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        feature_extractor: Any | None = None,
        whisper_input: str = "trimmed",
        clip_seconds: float | None = None,
        resolved: ResolvedModel | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        base = speech_base_of(model)
        self.family: str = family_of_config(base.config)
        self.resolved = resolved
        self.name = (
            resolved.spec.key
            if resolved is not None
            else getattr(base.config, "_name_or_path", "") or self.family
        )
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = base.to(device).eval()
        self.device = torch.device(device)
        self.feature_extractor = feature_extractor or default_feature_extractor(base.config)
        self.clip_samples: int | None = None
        self.padding_exact = True
        self.input_mode: str = input_mode_of(self.family, whisper_input)
        if self.family == "whisper":
            self._setup_whisper(self.input_mode, clip_seconds)
        else:
            norm = getattr(base.config, "feat_extract_norm", "layer")
            # data2vec-audio's stacked positional convs (with LayerNorm) leak padding into valid frames
            self.padding_exact = self.family != "data2vec-audio" and norm == "layer"

    # -- description -------------------------------------------------------------------------------

    @property
    def spec(self) -> ModelSpec | None:
        """The catalogue entry the encoder was loaded from (None: built in memory)."""
        return self.resolved.spec if self.resolved is not None else None

    def _setup_whisper(self, mode: str, clip_seconds: float | None) -> None:
        """Set up the Whisper input window; trims the position table in "trimmed" mode."""
        enc = self.model
        self.samples_per_frame = (
            int(self.feature_extractor.hop_length) * enc.conv1.stride[0] * enc.conv2.stride[0]
        )
        n_table = int(enc.config.max_source_positions)
        if mode == "padded":
            if n_table < _WHISPER_FULL_POSITIONS:
                raise ModelInputError(
                    f"this Whisper encoder was trimmed to {n_table} positions "
                    f"({n_table * self.samples_per_frame / SAMPLING_RATE:.2f} s); 'padded' needs the "
                    f"30 s table: load the untrimmed checkpoint or use whisper_input='trimmed'"
                )
            n_pos = n_table
        else:
            if clip_seconds is None and n_table < _WHISPER_FULL_POSITIONS:
                n_pos = n_table  # already trimmed (e.g. a saved pruned model): keep its window
            else:
                seconds = 1.0 if clip_seconds is None else float(clip_seconds)
                n_pos = math.ceil(round(seconds * SAMPLING_RATE) / self.samples_per_frame)
            if not 1 <= n_pos <= n_table:
                raise ModelInputError(
                    f"clip_seconds gives {n_pos} frames; this encoder supports 1..{n_table}"
                )
            _trim_whisper(enc, n_pos)
        self.clip_samples = n_pos * self.samples_per_frame

    def _whisper_window(self) -> int:
        """Samples in the fixed Whisper input window (set up for Whisper encoders only)."""
        if self.clip_samples is None:
            raise ModelInputError(f"{self.family} encoders have no fixed input window")
        return self.clip_samples

    @property
    def n_layers(self) -> int:
        """Number of transformer layers L (hidden states are L+1)."""
        return len(encoder_of(self.model).layers)

    @property
    def hidden_size(self) -> int:
        """Width D of every hidden state."""
        return int(self.model.config.hidden_size)

    @property
    def final_layer_norm(self) -> bool:
        """Whether hidden state L includes a final LayerNorm that states 0..L-1 lack."""
        return has_final_layer_norm(self.model)

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype of the encoder."""
        return next(self.model.parameters()).dtype

    def describe(self) -> str:
        """One line for UIs: model, depth, width, input handling and the final-LayerNorm caveat."""
        parts = [f"{self.name} ({self.family}, {self.n_layers} layers, {self.hidden_size}-d)"]
        if self.family == "whisper":
            secs = self._whisper_window() / SAMPLING_RATE
            frames = self._whisper_window() // self.samples_per_frame
            how = "trimmed to" if self.input_mode == "trimmed" else "padded to"
            parts.append(f"input {how} {secs:g} s ({frames} encoder frames)")
        else:
            parts.append("raw 16 kHz waveform input")
        if self.final_layer_norm:
            parts.append(f"hidden state {self.n_layers} includes the encoder's final LayerNorm")
        return "; ".join(parts)

    def __repr__(self) -> str:
        """Short description."""
        return f"SpeechEncoder({self.describe()})"

    # -- preprocessing -----------------------------------------------------------------------------

    @staticmethod
    def _as_batch(waveforms: Any, lengths: Any | None) -> tuple[np.ndarray, np.ndarray]:
        """Validate (B, S) float32 waveforms and per-clip lengths (default: S)."""
        waves = np.asarray(waveforms.detach().cpu() if torch.is_tensor(waveforms) else waveforms)
        if waves.ndim == 1:
            waves = waves[None]
        if waves.ndim != 2:
            raise ModelInputError(f"waveforms must be (B, S) at 16 kHz, got shape {waves.shape}")
        waves = waves.astype(np.float32, copy=False)
        if lengths is None:
            lens = np.full(len(waves), waves.shape[1], dtype=np.int64)
        else:
            lens = np.asarray(
                lengths.cpu() if torch.is_tensor(lengths) else lengths, dtype=np.int64
            ).reshape(-1)
            if lens.shape[0] != waves.shape[0]:
                raise ModelInputError(f"{lens.shape[0]} lengths for {waves.shape[0]} waveforms")
            if (lens < 1).any() or (lens > waves.shape[1]).any():
                raise ModelInputError(f"lengths must lie in 1..{waves.shape[1]}")
        return waves, lens

    def preprocess(
        self, waveforms: np.ndarray, lengths: Sequence[int] | np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        """Turn (B, S) float32 16 kHz waveforms into model inputs (+ ``lengths`` in samples) as the family expects."""
        waves, lens = self._as_batch(waveforms, lengths)
        if self.family == "whisper":
            window = self._whisper_window()
            if (lens > window).any():
                warnings.warn(
                    f"clips longer than the {window / SAMPLING_RATE:g} s Whisper window are cut",
                    stacklevel=2,
                )
            lens = np.minimum(lens, window)
            clips = [w[:n] for w, n in zip(waves, lens, strict=True)]
            feats = self.feature_extractor(
                clips,
                sampling_rate=SAMPLING_RATE,
                padding="max_length",
                max_length=window,
                truncation=True,
                return_tensors="pt",
                return_attention_mask=False,
            )
            return {"input_features": feats["input_features"], "lengths": torch.from_numpy(lens)}
        frames = self.model._get_feat_extract_output_lengths(torch.from_numpy(lens))
        if (frames < 1).any():
            raise ModelInputError(
                "a clip is shorter than the convolutional front-end's receptive field"
            )
        clips = [w[:n] for w, n in zip(waves, lens, strict=True)]
        feats = self.feature_extractor(
            clips,
            sampling_rate=SAMPLING_RATE,
            padding="longest",
            return_attention_mask=True,
            return_tensors="pt",
        )
        out = {"input_values": feats["input_values"], "lengths": torch.from_numpy(lens)}
        if (lens < feats["input_values"].shape[1]).any():
            out["attention_mask"] = feats["attention_mask"].long()
        return out

    def frame_mask(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T) bool mask of the frames that cover real audio, aligned with ``hidden_states``."""
        lens = inputs.get("lengths")
        if lens is None:  # inputs built without preprocess(): every sample is real audio
            key = "input_values" if "input_values" in inputs else None
            full = inputs[key].shape[1] if key else self._whisper_window()
            lens = torch.full((next(iter(inputs.values())).shape[0],), full)
        lens = lens.to(torch.long)
        if self.family == "whisper":
            n_frames = self._whisper_window() // self.samples_per_frame
            valid = torch.div(
                lens + self.samples_per_frame - 1, self.samples_per_frame, rounding_mode="floor"
            )
        else:
            n_frames = int(
                self.model._get_feat_extract_output_lengths(
                    torch.tensor(inputs["input_values"].shape[1])
                )
            )
            valid = self.model._get_feat_extract_output_lengths(lens).to(torch.long)
        return torch.arange(n_frames)[None, :] < valid.clamp(max=n_frames)[:, None]

    # -- forward -----------------------------------------------------------------------------------

    def hidden_states(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The L+1 hidden states (B, T, D) for preprocessed ``inputs`` (see the class docstring for index L)."""
        model_inputs = {}
        for key in ("input_values", "input_features", "attention_mask"):
            if key in inputs:
                value = inputs[key].to(self.device)
                model_inputs[key] = value.to(self.dtype) if value.is_floating_point() else value
        with torch.no_grad():
            out = self.model(**model_inputs, output_hidden_states=True, return_dict=True)
            states = list(out.hidden_states)
            if self.final_layer_norm and states[-1] is not out.last_hidden_state:
                states[-1] = encoder_of(self.model).layer_norm(states[-1])
        if len(states) != self.n_layers + 1:
            raise RuntimeError(f"expected {self.n_layers + 1} hidden states, got {len(states)}")
        return tuple(states)

    def encode(
        self, inputs: dict[str, torch.Tensor]
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Hidden states and the (B, T) valid-frame mask in one call, for custom pooling."""
        return self.hidden_states(inputs), self.frame_mask(inputs).to(self.device)

    def _groups(self, lens: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """Index groups to run together: chunks in order, or equal-length chunks where padding is not exact."""
        if self.family == "whisper" or self.padding_exact or len(set(lens.tolist())) == 1:
            order = [np.arange(len(lens))]
        else:
            order = [np.flatnonzero(lens == n) for n in np.unique(lens)]
        return [idx[i : i + batch_size] for idx in order for i in range(0, len(idx), batch_size)]

    def pooled(
        self,
        waveforms: np.ndarray,
        lengths: Sequence[int] | np.ndarray | None = None,
        *,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Mean over valid frames of every hidden state: float32 CPU tensor (B, L+1, D)."""
        waves, lens = self._as_batch(waveforms, lengths)
        out = torch.empty(len(waves), self.n_layers + 1, self.hidden_size, dtype=torch.float32)
        for idx in self._groups(lens, max(1, int(batch_size))):
            sub_lens = lens[idx]
            inputs = self.preprocess(waves[idx, : int(sub_lens.max())], sub_lens)
            states, mask = self.encode(inputs)
            weights = (mask / mask.sum(1, keepdim=True)).to(torch.float32)
            for i, h in enumerate(states):
                out[torch.from_numpy(idx), i] = torch.einsum("bt,btd->bd", weights, h.float()).cpu()
        return out

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Save the encoder (e.g. after pruning/trimming) and its feature extractor, loadable as a model directory."""
        path = Path(path)
        self.model.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)
        return path
