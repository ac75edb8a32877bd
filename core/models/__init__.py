"""Speech encoders: the model registry and identity, hub and offline Whisper loading, pruning."""

from core._exports import lazy_exports

_EXPORTS = {
    "quiet_transformers": "hf_quiet",
    "count_parameters": "pruning",
    "encoder_of": "pruning",
    "params_by_prune_point": "pruning",
    "prune": "pruning",
    "transformer_layers": "pruning",
    "FAMILIES": "registry",
    "MODELS": "registry",
    "HubUnavailableError": "registry",
    "ModelError": "registry",
    "ModelSpec": "registry",
    "ModelUnavailableError": "registry",
    "SpeechEncoder": "registry",
    "UnknownModelError": "registry",
    "default_feature_extractor": "registry",
    "family_of_config": "registry",
    "load_encoder": "registry",
    "models_available_offline": "registry",
    "resolve_model": "registry",
    "CT2FormatError": "whisper_offline",
    "OfflineWhisper": "whisper_offline",
    "offline_source_paths": "whisper_offline",
    "offline_whisper_available": "whisper_offline",
    "CT2Model": "whisper_offline",
    "parse_ct2_model": "whisper_offline",
    "whisper_config_from_ct2": "whisper_offline",
    "whisper_encoder_state_dict": "whisper_offline",
    "offline_whisper_dir": "whisper_offline",
    "ensure_offline_whisper": "whisper_offline",
    "load_offline_whisper_encoder": "whisper_offline",
    "trim_whisper_encoder": "whisper_offline",
    "whisper_input_features": "whisper_offline",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
