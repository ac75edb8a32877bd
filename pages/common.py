"""Shared dashboard plumbing: session-state choices, the only st.cache_* wrappers, and plot styling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.data.features import (
    FeatureSet,
    feature_cache_root,
    list_cached_features,
    load_cached_features,
)
from core.errors import LabError
from core.geometry.convexity import (
    ConvexityCurve,
    ConvexityResult,
    graph_convexity,
)
from core.geometry.sampling import DEFAULT_TARGET_SE
from core.models.registry import MODELS, models_available_offline
from core.results.export import image_config
from core.results.kinds import convexity_entry, decode_curves, stored_criteria, stored_umap
from core.results.memory import LRUCache
from core.results.provenance import Provenance
from core.results.store import load_result, result_key

DEFAULT_MODEL = "whisper-tiny.en-offline"
LAYER_AXIS = "hidden state (0 = input to layer 1)"

# Shared choices: they live in st.session_state so they survive page changes.
DEFAULTS: dict[str, Any] = {
    "model": DEFAULT_MODEL,
    "custom_model": "",  # a hub id or local folder typed by the user (overrides "model")
    "trust_remote_code": False,
    "dataset": "sample",
    "root": "",
    "split": "all",
    "max_clips": 0,  # 0 = all clips
    "whisper_input": "trimmed",
    "feature_key": None,
    # page controls (kept too, so returning to a page restores them)
    "cx_k": 10,
    "cx_precision": "± 0.005",
    "cx_fraction": 0.95,
    "cx_heat": "word",
    "cx_bars": "standard error",
    "img_format": "png",
    "cx_sort": "score at prune point",
    "cr_labels": "word",
    "cr_on": False,
    "pj_layer": None,  # None = the last hidden state
    "pj_colour": "word",
    "ln_shape": "blobs",
    "ln_classes": 3,
    "ln_per_class": 40,
    "ln_noise": 0.25,
    "ln_k": 10,
    "ln_seed": 0,
    "ln_class": 0,
    "ft_task": "words",
    "ft_epochs": 3,
    "ft_lr": 2e-4,
    "ft_batch": 16,
    "ft_train_clips": 0,  # 0 = the whole train split
    "ft_eval_clips": 0,
    "ft_prune": None,  # None = the convexity suggestion
}


def _leave_pages_directory_mode() -> None:
    """Rerun through app.py's st.navigation if Streamlit ran a page directly (its legacy pages/ mode).

    Streamlit runs a script found in ``pages/`` by itself (no wide layout, a file-name sidebar) until
    ``st.navigation`` has been called once in the process, e.g. when the first visitor opens /convexity.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # internal module moved: nothing to fix
        return
    if "_navigation_checked" in st.session_state:
        return  # only a session's first run: a rerun there loses no widget event
    st.session_state["_navigation_checked"] = True
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


SETUP_KEYS = ("model", "custom_model", "dataset", "root", "split", "max_clips", "whisper_input")


def _stored_choice() -> dict[str, Any]:
    """Session-state values of the last explicit Setup choice on disk ({} if none)."""
    from core.io.choice import load_choice

    choice = load_choice()
    if choice is None or choice.model not in MODELS:
        return {}
    return {k: getattr(choice, k) for k in SETUP_KEYS} | {"feature_key": choice.feature_key}


def remember_choice(feature_key: str, **overrides: Any) -> None:
    """Use ``feature_key`` and store the Setup choice behind it (an explicit user choice) for new sessions."""
    from core.io.choice import SetupChoice, save_choice

    state = st.session_state
    values = {k: state[k] for k in SETUP_KEYS} | overrides
    values["max_clips"] = int(values["max_clips"] or 0)
    state.feature_key = feature_key
    save_choice(SetupChoice(feature_key=feature_key, **values))


def init_state() -> None:
    """Fill in choices once per session (pages call this first): the last stored Setup choice, else defaults."""
    _leave_pages_directory_mode()
    if "_choice_loaded" not in st.session_state:
        st.session_state["_choice_loaded"] = True
        for name, value in _stored_choice().items():
            st.session_state.setdefault(name, value)
    for name, value in DEFAULTS.items():
        if name in st.session_state:
            # re-assign so Streamlit keeps a widget's value after its page is left
            st.session_state[name] = st.session_state[name]
        else:
            st.session_state[name] = value


def palette(n: int) -> list[str]:
    """Distinct class colours of mid lightness, readable on light and dark backgrounds."""
    import plotly.colors as pc

    if n <= 10:
        return list(pc.qualitative.Plotly[:n])
    # evenly spaced hues, alternating lightness so neighbours in hue still differ
    return [f"hsl({round(360 * i / n)},70%,{50 if i % 2 == 0 else 62}%)" for i in range(n)]


def one_line(exc: BaseException) -> str:
    """A short, single-line message for an expected error (no traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


# ------------------------------------------------------------------------------------------------
# Cached loaders (the only st.cache_* in the dashboard)


@st.cache_data(ttl=600, show_spinner="Checking which models work offline...")
def offline_models() -> list[str]:
    """Preset keys usable without the hub (cached: the check can probe installed packages)."""
    return models_available_offline()


@st.cache_data(ttl=30, show_spinner=False)
def _cached_feature_list(root: str) -> list[dict[str, Any]]:
    """Summaries of the complete feature sets under ``root`` (the argument keys the cache)."""
    return [m for m in list_cached_features() if m.get("complete")]


def cached_feature_list() -> list[dict[str, Any]]:
    """Summaries of the feature sets on disk, newest first (briefly cached; cleared after an extraction)."""
    return _cached_feature_list(str(feature_cache_root()))


def clear_feature_list() -> None:
    """Forget the cached listing (after an extraction added a set)."""
    _cached_feature_list.clear()


@st.cache_resource(max_entries=8, show_spinner=False)
def feature_set(key: str) -> FeatureSet:
    """A cached feature set by key, loaded once per process (memory-mapped)."""
    return load_cached_features(key)


RESULTS_IN_MEMORY = 16  # results held per process (LRU); the results store on disk keeps them all


@st.cache_resource(show_spinner=False)
def _results() -> LRUCache:
    """Process-wide, bounded (LRU) map of results in use, keyed by their inputs; the disk store backs it."""
    return LRUCache(RESULTS_IN_MEMORY)


_MISSING = object()


def _memo(
    key: tuple, label: str, work: Callable[[Callable[[int, int], None]], Any], refresh: bool = False
) -> Any:
    """The in-memory result for ``key``, else ``work(tick)`` (store read or computation) with a progress bar."""
    memory = _results()
    found = _MISSING if refresh else memory.get(key, _MISSING)
    if found is not _MISSING:
        return found
    bar = st.progress(0.0, text=label)

    def tick(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label} ({done}/{total})")

    try:
        value = work(tick)
    finally:
        bar.empty()
    memory.put(key, value)
    return value


# Precision presets of the Convexity page: a target standard error (the engine adds sources until it is
# met, or computes every pair when that is cheaper), the authors' pair budget, or every pair.
PRECISIONS: dict[str, dict[str, Any]] = {
    "± 0.01": {"target_se": 0.01},
    "± 0.005": {"target_se": DEFAULT_TARGET_SE},  # the CLI's default too: its curves open here
    "± 0.002": {"target_se": 0.002},
    "authors' 5,000 pairs": {"max_pairs_per_class": 5000},
    "exact": {"max_pairs_per_class": None},
}


def convexity_result(
    key: str, k: int, precision: str, seed: int = 0, refresh: bool = False
) -> tuple[dict[str, ConvexityCurve], Provenance, bool]:
    """(word and speaker curves, provenance, from_store): stored results show at once, else computed and stored."""
    fs = feature_set(key)
    settings = PRECISIONS[precision]

    def work(
        tick: Callable[[int, int], None],
    ) -> tuple[dict[str, ConvexityCurve], Provenance, bool]:
        entry, hit = convexity_entry(
            fs, {"word": fs.words, "speaker": fs.speakers}, k=k, seed=seed, progress=tick,
            refresh=refresh, **settings,
        )  # fmt: skip
        return decode_curves(entry.data), entry.provenance, hit

    memo_key = ("convexity", key, k, precision, seed)
    return _memo(memo_key, "Graph convexity per layer", work, refresh)


def current_convexity(key: str) -> dict[str, ConvexityCurve]:
    """Word and speaker curves of one feature set at the Convexity page's k and precision."""
    state = st.session_state
    return convexity_result(key, int(state.cx_k), str(state.cx_precision))[0]


def _criteria_request(
    key: str, labels: str, k: int
) -> tuple[FeatureSet, list[str], dict[str, Any]]:
    """Feature set, labels and the stored-criteria request of the dashboard's criteria."""
    from collections import Counter

    fs = feature_set(key)
    names = fs.labels(labels)
    # the probe's stratified folds need every class in every fold
    options = {"linear_probe": {"n_splits": max(2, min(5, min(Counter(names).values())))}}
    return fs, names, {"names": None, "k": k, "options": options}


def criteria_results(key: str, labels: str, k: int) -> dict[str, Any]:
    """Every other layer-selection criterion for one feature set and label set (stored; computed once)."""
    from core.geometry.criteria import CRITERIA, run_criteria

    fs, names, request = _criteria_request(key, labels, k)

    def compute(tick: Callable[[int, int], None]) -> dict[str, Any]:
        done: dict[str, Any] = {}
        for i, name in enumerate(CRITERIA):
            try:
                done |= run_criteria(
                    fs.features, names, names=[name], k=k, options=request["options"]
                )
            except LabError as exc:  # anything else is a bug: it propagates to a traceback
                st.warning(f"{name} skipped: {one_line(exc)}")
            tick(i + 1, len(CRITERIA))
        return done

    def work(tick: Callable[[int, int], None]) -> dict[str, Any]:
        return stored_criteria(fs, labels, request, lambda: compute(tick))[0]

    return _memo(("criteria", key, labels, k), "Layer-selection criteria", work)


def has_criteria(key: str, labels: str, k: int) -> bool:
    """Whether ``criteria_results`` for these inputs is in memory or stored (no work started)."""
    if ("criteria", key, labels, k) in _results():
        return True
    fs, _, request = _criteria_request(key, labels, k)
    return load_result(result_key(fs.key, "criteria", {"label_set": labels, **request})) is not None


def umap_layers(key: str, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """Aligned UMAP embeddings (L+1, N, 2) of every hidden state (stored; computed once per feature set)."""
    from core.geometry.projections import layer_embeddings

    fs = feature_set(key)
    request = {"n_neighbors": n_neighbors, "seed": seed, "min_dist": 0.1, "n_epochs": 200}

    def work(tick: Callable[[int, int], None]) -> np.ndarray:
        return stored_umap(
            fs,
            request,
            lambda: layer_embeddings(
                fs.features, n_neighbors=n_neighbors, seed=seed, progress=tick
            ),
        )[0]

    return _memo(("umap", key, n_neighbors, seed), "UMAP of every hidden state", work)


@st.cache_data(show_spinner="Counting parameters...", max_entries=8)
def params_by_prune_point(model: str) -> dict[int, dict[str, int]]:
    """Encoder parameter counts at every prune point 1..L of a model (loaded once on the CPU, then freed)."""
    from core.models.pruning import params_by_prune_point as counts
    from core.models.registry import load_encoder

    enc = load_encoder(model, device="cpu")
    try:
        return counts(enc)
    finally:
        del enc


@st.cache_resource(show_spinner=False)
def background_tasks() -> dict[str, Any]:
    """Process-wide registry of background tasks (benchmarks) by name, so any session can watch them."""
    return {}


@st.cache_data(show_spinner=False, max_entries=64)
def toy_graph(
    shape: str, classes: int, per_class: int, spread: float, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, ConvexityResult, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Teaching toy: points, labels, the exhaustive convexity result and the kNN graph (CSR)."""
    from core.geometry.synthetic import toy_clusters
    from core.geometry.teaching import knn_csr

    points, labels = toy_clusters(per_class, classes, spread, shape, seed)
    result = graph_convexity(points, labels, k=k, max_pairs_per_class=None, device="cpu")
    return points, labels, result, knn_csr(points, k)


# ------------------------------------------------------------------------------------------------
# The current feature set


def describe_entry(meta: dict[str, Any]) -> str:
    """One-line label of a cached feature set for pickers."""
    sel = meta.get("selection", {})
    cap = sel.get("max_clips") or "all"
    return (
        f"{meta.get('model_key', '?')} · {meta.get('dataset', '?')} · split {sel.get('split', '?')} · "
        f"{meta.get('n_clips', '?')} clips (cap {cap}) · {meta.get('input_mode') or '-'} · "
        f"{str(meta.get('key', ''))[:8]}"
    )


def current_features() -> FeatureSet | None:
    """The feature set chosen on Setup (this session's, else the last stored choice); None with a hint."""
    init_state()
    key = st.session_state.feature_key
    if key is None:
        if cached_feature_list():
            st.info("No feature set chosen yet: pick or extract one on the Setup page.")
        else:
            st.info("No features yet: extract some on the Setup page first.")
        st.page_link("pages/setup.py", label="Go to Setup", icon=":material/tune:")
        return None
    try:
        return feature_set(key)
    except LabError as exc:
        st.error(
            f"Cannot load cached features {key[:8]}: {one_line(exc)} Re-extract them on Setup."
        )
        st.session_state.feature_key = None
        return None


def features_caption(fs: FeatureSet) -> None:
    """A caption naming the feature set the page shows."""
    st.caption(f"Features: {describe_entry(fs.meta)}. Change them on the Setup page.")


def model_size(key: str) -> str:
    """Human-readable size of a registry model (parameters, layers, width)."""
    spec = MODELS[key]
    params = f"{spec.params / 1e6:.0f}M params" if spec.params else "size unknown"
    return f"{params}, {spec.n_layers} layers, {spec.hidden_size}-d"


# ------------------------------------------------------------------------------------------------
# Plot styling


def style(
    fig: go.Figure,
    *,
    height: int = 460,
    x_title: str | None = None,
    y_title: str | None = None,
    legend: bool = True,
) -> go.Figure:
    """One look for every figure: readable fonts, tight margins, theme-neutral (works light and dark)."""
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font={"size": 14},
        hoverlabel={"font_size": 13},
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
    )
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    return fig


def figure_config(filename: str) -> dict[str, Any]:
    """Plotly config: the modebar camera downloads ``filename`` as PNG or SVG (browser-side, offline)."""
    return image_config(filename, st.session_state.get("img_format") or "png")


def image_format_picker() -> None:
    """Choose what the figures' camera button (top right of each plot) downloads: PNG or SVG."""
    st.segmented_control(
        "Figure image (camera button)",
        ["png", "svg"],
        key="img_format",
        help="The camera icon at the top right of every figure downloads it, caption included.",
    )


def show(fig: go.Figure, **kwargs: Any) -> Any:
    """st.plotly_chart with the dashboard's defaults (Streamlit theme, full width)."""
    return st.plotly_chart(fig, theme="streamlit", width="stretch", **kwargs)
