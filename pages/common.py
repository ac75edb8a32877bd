"""The names the pages used from one shared module, re-exported from the modules that now hold them.

Prune & fine-tune, Setup, Benchmarks and Prune sweep still call ``common.<name>``; new code imports
pages.state, pages.cached, pages.feature_choice, pages.figures or pages.messages.
"""

from __future__ import annotations

from pages.cached import (
    RESULTS_IN_MEMORY,
    _results,
    background_tasks,
    cached_feature_list,
    clear_feature_list,
    convexity_result,
    criteria_results,
    current_convexity,
    feature_set,
    has_criteria,
    offline_models,
    params_by_prune_point,
    toy_graph,
    umap_layers,
)
from pages.feature_choice import current_features, describe_entry, features_caption, model_size
from pages.figures import (
    LAYER_AXIS,
    figure_config,
    image_format_picker,
    integer_axis,
    palette,
    show,
    style,
)
from pages.messages import one_line
from pages.state import DEFAULT_MODEL, DEFAULTS, SETUP_KEYS, init_state, remember_choice

__all__ = [
    "DEFAULTS", "DEFAULT_MODEL", "LAYER_AXIS", "RESULTS_IN_MEMORY", "SETUP_KEYS",
    "_results", "background_tasks", "cached_feature_list", "clear_feature_list", "convexity_result",
    "criteria_results", "current_convexity", "current_features", "describe_entry", "feature_set",
    "features_caption", "figure_config", "has_criteria", "image_format_picker", "init_state",
    "integer_axis", "model_size", "offline_models", "one_line", "palette", "params_by_prune_point",
    "remember_choice", "show", "style", "toy_graph", "umap_layers",
]  # fmt: skip
