"""Audio, the dataset/task registry and cached per-layer features of (model, selection)."""

from core._exports import lazy_exports

_EXPORTS = {
    "SkippedClip": "audio",
    "ClipInfo": "audio",
    "LoadResult": "audio",
    "read_clip": "audio",
    "load_clip": "audio",
    "default_workers": "audio",
    "load_clips_report": "audio",
    "load_clips": "audio",
    "DATASETS": "datasets",
    "TASKS": "datasets",
    "SPLITS": "datasets",
    "ClipTable": "datasets",
    "DatasetError": "datasets",
    "DatasetSpec": "datasets",
    "class_counts": "datasets",
    "default_min_clips": "datasets",
    "describe": "datasets",
    "download_file": "datasets",
    "download_speech_commands": "datasets",
    "extract_tar_atomic": "datasets",
    "get_dataset": "datasets",
    "load_table": "datasets",
    "scan_folder": "datasets",
    "select": "datasets",
    "split_counts": "datasets",
    "POOLING": "features",
    "FeatureError": "features",
    "FeatureSet": "features",
    "Selection": "features",
    "extract_features": "features",
    "feature_cache_root": "features",
    "feature_key": "features",
    "list_cached_features": "features",
    "load_cached_features": "features",
    "remove_cached_features": "features",
    "resolve_cache_key": "features",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
