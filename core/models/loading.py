"""From a name to a loaded encoder in one resolution: ``ModelRequest`` -> ``ResolvedModel`` -> ``SpeechEncoder``.

``ModelRequest`` is what a config stores (the name, Whisper's input window, whether hub code may run).
``resolve(request)`` looks the name up once (preset, hub id or model directory), prepares an offline
preset's directory once, and computes the weights identity once; the ``ResolvedModel`` it returns is
picklable and its ``load()`` builds the encoder from that answer without resolving again. Work sent
to other machines carries the request instead (their copy of a model may differ), and its results
are checked against the resolved identity. ``resolve_model`` answers only "which catalogue entry" (depth, family) without
touching weights.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from core.errors import ModelError, ModelUnavailableError, UnknownModelError
from core.models.encoder import SpeechEncoder, base_class, default_feature_extractor
from core.models.hf_quiet import quiet_transformers
from core.models.hub import hub_config, hub_revision, is_cached, map_hub_error, require_hub
from core.models.identity import (
    ModelIdentity,
    directory_weights_hash,
    offline_weights,
    parameters_hash,
)
from core.models.registry import (
    MODELS,
    SAMPLING_RATE,
    ModelSpec,
    family_of_config,
    input_mode_of,
    unknown_model,
)
from core.models.request import ModelRequest
from core.models.whisper_offline import (
    MANIFEST_NAME,
    ensure_offline_whisper,
    offline_whisper_available,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "ResolvedModel",
    "as_resolved",
    "encoder_identity",
    "load_encoder",
    "resolve",
    "resolve_model",
]


@dataclass(frozen=True)
class ResolvedModel:
    """A request resolved: its catalogue entry, the weights' location and identity; ``load()`` builds it.

    ``identity.weights`` is None only for a hub model not in the local cache: the encoder that
    ``load()`` returns carries the identity learnt while loading.
    """

    request: ModelRequest
    spec: ModelSpec
    location: str
    local_only: bool
    identity: ModelIdentity

    @property
    def input_mode(self) -> str:
        """The input mode the model runs in: Whisper's window, else "waveform"."""
        return input_mode_of(self.spec.family, self.request.whisper_input)

    @property
    def n_layers(self) -> int:
        """Transformer layers L of the unpruned model."""
        return self.spec.n_layers

    def load(
        self,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        clip_seconds: float | None = None,
        attn_implementation: str | None = None,
    ) -> SpeechEncoder:
        """The encoder in eval mode, loaded from ``location`` (no second resolution)."""
        spec, trust = self.spec, self.request.trust_remote_code
        options = (trust, dtype, attn_implementation)
        if spec.source == "hub" and not self.local_only:
            require_hub(spec.hf_id)
        try:
            model, fe = _load_model_and_features(
                spec.family, self.location, self.local_only, *options
            )
        except ModelError:
            raise
        except Exception as exc:
            if spec.source == "hub" and self.local_only:  # partially cached: try the hub once
                require_hub(spec.hf_id)
                try:
                    model, fe = _load_model_and_features(
                        spec.family, self.location, False, *options
                    )
                except Exception as exc2:
                    raise map_hub_error(spec.hf_id, exc2) from None
            else:
                raise map_hub_error(self.request.name, exc) from None
        encoder = SpeechEncoder(
            model,
            feature_extractor=fe,
            whisper_input=self.request.whisper_input,
            clip_seconds=clip_seconds,
            resolved=self,
            device=device,
        )
        if not self.identity.known:  # a hub model met for the first time: its commit is known now
            encoder.resolved = replace(self, identity=_loaded_identity(self, encoder))
        return encoder


def resolve(request: ModelRequest) -> ResolvedModel:
    """Resolve ``request`` once: its catalogue entry, where its weights are and which weights they are."""
    spec = resolve_model(request.name, trust_remote_code=request.trust_remote_code)
    input_mode_of(spec.family, request.whisper_input)  # a bad window fails here, in one line
    revision = None
    if spec.source == "offline":
        location, local_only = _offline_location(spec), True
        manifest = json.loads((Path(location) / MANIFEST_NAME).read_text())
        weights: str | None = offline_weights(manifest)
    elif spec.source == "local":
        location, local_only = spec.hf_id, True
        weights = "files-sha256:" + directory_weights_hash(Path(spec.hf_id))
    else:
        location, local_only = spec.hf_id, is_cached(spec.hf_id)
        revision = hub_revision(spec.hf_id)
        weights = f"hub:{spec.hf_id}@{revision}" if revision is not None else None
    identity = ModelIdentity(spec.key, spec.hf_id, spec.source, spec.family, weights, revision)
    return ResolvedModel(request, spec, location, local_only, identity)


def _loaded_identity(resolved: ResolvedModel, encoder: SpeechEncoder) -> ModelIdentity:
    """A hub model's identity once loaded: its commit, else a hash of its parameters."""
    spec = resolved.spec
    revision = hub_revision(spec.hf_id, encoder.model.config)
    if revision is not None:
        weights = f"hub:{spec.hf_id}@{revision}"
    else:
        weights = "params-sha256:" + parameters_hash(encoder.model)
    return ModelIdentity(spec.key, spec.hf_id, spec.source, spec.family, weights, revision)


def as_resolved(model: ResolvedModel | ModelRequest | str | os.PathLike) -> ResolvedModel:
    """A resolved model from one, a request, or a name (a name asks for the default input window)."""
    if isinstance(model, ResolvedModel):
        return model
    request = model if isinstance(model, ModelRequest) else ModelRequest(str(model).strip())
    return resolve(request)


def encoder_identity(encoder: SpeechEncoder) -> ModelIdentity:
    """Identity of a loaded encoder: its resolved model's, or (built in memory) a hash of its parameters."""
    if encoder.resolved is not None:
        return encoder.resolved.identity
    weights = "params-sha256:" + parameters_hash(encoder.model)
    return ModelIdentity(encoder.name, encoder.name, "in-memory", encoder.family, weights)


def load_encoder(
    name_or_path: str | os.PathLike,
    *,
    whisper_input: str = "trimmed",
    trust_remote_code: bool = False,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    clip_seconds: float | None = None,
    attn_implementation: str | None = None,
) -> SpeechEncoder:
    """Load any supported model (preset key, hub id or directory) as a ``SpeechEncoder`` in eval mode."""
    request = ModelRequest(str(name_or_path).strip(), whisper_input, trust_remote_code)
    return resolve(request).load(
        device=device,
        dtype=dtype,
        clip_seconds=clip_seconds,
        attn_implementation=attn_implementation,
    )


# --------------------------------------------------------------------------------------------------
# Which catalogue entry a name is


def _looks_like_path(name: str) -> bool:
    """True for strings that are clearly filesystem paths rather than hub ids."""
    return name.startswith(("/", "./", "../", "~", "\\")) or name.count("/") > 1


def _read_local_config(path: Path, trust_remote_code: bool) -> Any:
    """Load ``config.json`` from a local directory, with one-line errors."""
    from transformers import AutoConfig

    if not (path / "config.json").is_file():
        raise unknown_model(str(path), "the directory has no config.json")
    try:
        return AutoConfig.from_pretrained(
            path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnknownModelError(f"Cannot read the model config in '{path}': {first}") from None


def _meta_param_count(config: Any) -> int | None:
    """Parameter count of the bare encoder for ``config``, computed on the meta device (no memory used)."""
    try:
        with torch.device("meta"):
            model = base_class(family_of_config(config))(config)
        return sum(p.numel() for p in model.parameters())
    except Exception:
        return None


def _spec_from_config(
    key: str, hf_id: str, config: Any, source: Literal["hub", "local"]
) -> ModelSpec:
    """A ModelSpec describing a model that is not in the catalogue."""
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
    """The ModelSpec of a preset key, hub id or local directory (hub ids outside the catalogue need their config).

    Only the catalogue entry: the weights are neither prepared nor identified (``resolve``).
    """
    name = str(name_or_path).strip()
    if not name:
        raise unknown_model(name, "empty name")
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
        raise unknown_model(name, "no such model directory")
    if "/" not in name:
        raise unknown_model(name, "not a preset key, hub id (owner/name) or directory")
    config = hub_config(name, trust_remote_code)
    return _spec_from_config(name, name, config, "hub")


# --------------------------------------------------------------------------------------------------
# Loading


def _offline_location(spec: ModelSpec) -> str:
    """Materialise an offline preset (once per resolution) and return its local directory."""
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


def _whisper_class(config: Any) -> type[PreTrainedModel]:
    """The Whisper class to load a checkpoint with, allocating no decoder."""
    # WhisperForAudioClassification (encoder + a small head we discard) reads the encoder.* weights of
    # classifier, WhisperModel and (prefix "model." stripped) WhisperForConditionalGeneration checkpoints;
    # a bare WhisperEncoder checkpoint has unprefixed names and loads as itself.
    import transformers as tf

    if "WhisperEncoder" in set(getattr(config, "architectures", None) or []):
        return tf.models.whisper.modeling_whisper.WhisperEncoder
    return tf.WhisperForAudioClassification


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
    cls: type[PreTrainedModel] | type[AutoModel]
    if trust_remote_code and getattr(config, "auto_map", None):
        cls, kwargs["trust_remote_code"] = AutoModel, True
    elif family == "whisper":
        cls = _whisper_class(config)
    else:
        cls = base_class(family)
    # Quiet: the parts we discard (a Whisper classifier head, wav2vec2 CTC/classifier heads) are
    # reported as missing/unexpected; _check_encoder_weights warns if encoder weights are missing.
    with quiet_transformers():
        # with output_loading_info=True this returns (model, info), which its annotation does not say
        loaded: Any = cls.from_pretrained(location, output_loading_info=True, **kwargs)
    model, info = loaded
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
