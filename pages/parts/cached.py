"""The dashboard's caches (the only st.cache_* wrappers): feature sets, and results in memory over the store.

Results (convexity curves, criteria, UMAP layouts) are held per process in a bounded LRU keyed by their
inputs; on a miss they come from the results store (core.results.kinds), which computes and stores them
only when no valid entry exists, so a result computed by the CLI opens here without recomputation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from core.data import (
    FeatureInfo,
    FeatureSet,
    SampleCurves,
    feature_cache_root,
    list_feature_infos,
    load_cached_features,
    read_sample_curves,
)
from core.errors import ConvexityInputError, LabError
from core.geometry import (
    DEFAULT_K,
    DEFAULT_UMAP,
    ConvexityCurve,
    ConvexityOptions,
    ConvexityResult,
    CriterionResult,
    Csr,
    CurveStatistics,
    StatisticsOptions,
    UmapOptions,
    graph_convexity,
)
from core.models import models_available_offline
from core.results import (
    JobStatus,
    LRUCache,
    Provenance,
    StatisticsChoice,
    StatisticsJob,
    aligned_umap,
    cancel_job,
    convexity_entry,
    criteria_entry,
    criteria_key,
    decode_criteria,
    decode_curves,
    load_result,
    preset,
    read_job,
    start_job,
    statistics_key,
    umap_entry,
)
from core.results import statistics_choice as choose_statistics
from core.training import DataPlan, FinetuneConfig, check_run
from pages.parts.messages import model_error_line, one_line
from pages.parts.state import session_id

EXHAUSTIVE_DIAGNOSTICS = 20_000  # clips up to which the page runs every clip's tree
SAMPLED_SOURCES = 100  # trees per class beyond that (python -m core diagnose runs any design)
RESULTS_IN_MEMORY = 16  # results held per process (LRU); the results store on disk keeps them all


@st.cache_data(ttl=600, show_spinner="Checking which models work offline...")
def offline_models() -> list[str]:
    """Preset keys usable without the hub (cached: the check can probe installed packages)."""
    return models_available_offline()


@st.cache_data(ttl=30, show_spinner=False)
def _cached_feature_list(root: str) -> list[FeatureInfo]:
    """Summaries of the complete feature sets under ``root`` (the argument keys the cache)."""
    return list_feature_infos()


def cached_feature_list() -> list[FeatureInfo]:
    """Summaries of the feature sets on disk, newest first (briefly cached; cleared after an extraction)."""
    return _cached_feature_list(str(feature_cache_root()))


def clear_feature_list() -> None:
    """Forget the cached listing (after an extraction added a set)."""
    _cached_feature_list.clear()


@st.cache_resource(max_entries=8, show_spinner=False)
def feature_set(key: str) -> FeatureSet:
    """A cached feature set by key, loaded once per process (memory-mapped)."""
    return load_cached_features(key)


@st.cache_resource(show_spinner=False)
def results_memory() -> LRUCache:
    """Process-wide, bounded (LRU) map of results in use, keyed by their inputs; the disk store backs it."""
    return LRUCache(RESULTS_IN_MEMORY)


_MISSING = object()


def _memo(
    key: tuple, label: str, work: Callable[[Callable[[int, int], None]], Any], refresh: bool = False
) -> Any:
    """The in-memory result for ``key``, else ``work(tick)`` (store read or computation) with a progress bar."""
    memory = results_memory()
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


LABEL_SETS = ("word", "speaker")


def missing_label_sets(fs: FeatureSet) -> dict[str, str]:
    """Label set -> why it has no convexity curve: it needs 2 classes with 2 or more clips each."""
    out = {}
    for name in LABEL_SETS:
        counts = Counter(fs.labels(name))
        usable = sum(1 for n in counts.values() if n >= 2)
        if usable < 2:
            kinds = "speaker id" if name == "speaker" else "word"
            out[name] = (
                f"no {name} curve: every clip has the same {kinds}"
                if len(counts) == 1
                else f"no {name} curve: only {usable} {name} class(es) have 2 or more clips"
            ) + " (convexity needs at least 2 classes)"
    return out


@dataclass(frozen=True)
class ShownCurves:
    """A feature set's word and speaker curves with their provenance; ``from_store`` is False only on
    the call that computed them."""

    curves: dict[str, ConvexityCurve]
    provenance: Provenance
    from_store: bool


def convexity_result(
    key: str, k: int, precision: str, seed: int = 0, refresh: bool = False
) -> ShownCurves:
    """Word and speaker curves: stored results show at once, else computed and stored.

    A label set without two usable classes has no curve and is left out (``missing_label_sets`` says why).
    """
    fs = feature_set(key)
    options = preset(precision).options(k=k, seed=seed)
    missing = missing_label_sets(fs)
    labels = {name: fs.labels(name) for name in LABEL_SETS if name not in missing}
    if not labels:
        raise ConvexityInputError("; ".join(missing.values()))

    computed: list[bool] = []

    def work(tick: Callable[[int, int], None]) -> tuple[dict[str, ConvexityCurve], Provenance]:
        entry, hit = convexity_entry(fs, labels, options, progress=tick, refresh=refresh)
        computed.append(not hit)
        return decode_curves(entry.data), entry.provenance

    memo_key = ("convexity", key, k, precision, seed)
    curves, prov = _memo(memo_key, "Graph convexity per layer", work, refresh)
    return ShownCurves(curves, prov, not any(computed))  # computed in this very call, or read


def current_convexity(key: str) -> dict[str, ConvexityCurve]:
    """Word and speaker curves of one feature set at the Convexity page's k and precision (both, or a
    ConvexityInputError saying why one cannot be computed)."""
    state = st.session_state
    missing = missing_label_sets(feature_set(key))
    if missing:
        raise ConvexityInputError("; ".join(missing.values()))
    return convexity_result(key, int(state.cx_k), str(state.cx_precision)).curves


def criteria_with_provenance(
    key: str, labels: str, k: int
) -> tuple[dict[str, CriterionResult], Provenance]:
    """(every other layer-selection criterion, its provenance) for one feature set and label set."""
    fs = feature_set(key)

    def skipped(name: str, exc: LabError) -> None:
        st.warning(f"{name} skipped: {one_line(exc)}")

    def work(tick: Callable[[int, int], None]) -> tuple[dict[str, CriterionResult], Provenance]:
        entry, _ = criteria_entry(fs, labels, k=k, on_error=skipped, progress=tick)
        return decode_criteria(entry), entry.provenance

    return _memo(("criteria", key, labels, k), "Layer-selection criteria", work)


def criteria_results(key: str, labels: str, k: int) -> dict[str, CriterionResult]:
    """Every other layer-selection criterion for one feature set and label set (stored; computed once)."""
    return criteria_with_provenance(key, labels, k)[0]


def has_criteria(key: str, labels: str, k: int) -> bool:
    """Whether ``criteria_results`` for these inputs is in memory or stored (no work started)."""
    if ("criteria", key, labels, k) in results_memory():
        return True
    return load_result(criteria_key(feature_set(key), labels, k=k)) is not None


def umap_with_provenance(
    key: str, n_neighbors: int = DEFAULT_UMAP.n_neighbors, seed: int = 0
) -> tuple[np.ndarray, Provenance]:
    """(aligned UMAP embeddings (L+1, N, 2) of every hidden state, provenance); stored, computed once."""
    fs = feature_set(key)

    def work(tick: Callable[[int, int], None]) -> tuple[np.ndarray, Provenance]:
        entry, _ = umap_entry(fs, UmapOptions(n_neighbors=n_neighbors, seed=seed), progress=tick)
        return entry.arrays["layout"], entry.provenance

    return _memo(("umap", key, n_neighbors, seed), "UMAP of every hidden state", work)


def checkpoint_layouts(series_key: str, layer: int) -> np.ndarray:
    """Aligned UMAP layouts (checkpoints, N, 2) of one hidden state across a stored series (stored)."""

    def work(tick: Callable[[int, int], None]) -> np.ndarray:
        return aligned_umap(series_key, layer, progress=tick)

    return _memo(
        ("aligned", series_key, layer), f"UMAP of hidden state {layer} per checkpoint", work
    )


@st.cache_data(show_spinner="Counting parameters...", max_entries=8)
def params_by_prune_point(model: str) -> dict[int, dict[str, int]]:
    """Encoder parameter counts at every prune point 1..L of a model (loaded once on the CPU, then freed)."""
    from core.models import load_encoder
    from core.models import params_by_prune_point as counts

    enc = load_encoder(model, device="cpu")
    try:
        return counts(enc)
    finally:
        del enc


@st.cache_resource(show_spinner=False)
def background_tasks() -> dict[str, Any]:
    """Process-wide registry of background work by name, so any session can watch it."""
    return {}


@dataclass(frozen=True)
class LearnGraph:
    """Learn's points (2-D positions), their labels, the exhaustive convexity result and the kNN graph
    (CSR); ``clips`` are the real clips' indices (None for the toy)."""

    points: np.ndarray
    labels: np.ndarray
    result: ConvexityResult
    graph: Csr
    clips: np.ndarray | None = None


@st.cache_data(show_spinner=False, max_entries=64)
def toy_graph(
    shape: str, classes: int, per_class: int, spread: float, k: int, seed: int
) -> LearnGraph:
    """Teaching toy: points, labels, the exhaustive convexity result and the kNN graph."""
    from core.geometry import knn_csr, toy_clusters

    points, labels = toy_clusters(per_class, classes, spread, shape, seed)
    result = graph_convexity(
        points, labels, ConvexityOptions(k=k, max_pairs_per_class=None, device="cpu")
    )
    return LearnGraph(points, labels, result, knn_csr(points, k))


@st.cache_data(show_spinner=False, max_entries=64)
def default_pair(
    shape: str, classes: int, per_class: int, spread: float, k: int, seed: int
) -> tuple[int, int] | None:
    """The toy's pair whose shortest path leaves its class the most (None if none leaves)."""
    from core.geometry import leaving_pair

    toy = toy_graph(shape, classes, per_class, spread, k, seed)
    return leaving_pair(toy.graph.indptr, toy.graph.indices, toy.graph.weights, toy.labels)


@st.cache_data(show_spinner=False)
def sample_curves(path: str) -> SampleCurves | str:
    """The convexity curves measured on the bundled sample, or why they cannot be shown."""
    try:
        return read_sample_curves(path)
    except LabError as exc:
        return str(exc)


@st.cache_data(ttl=60, show_spinner=False, max_entries=32)
def finetune_data_plan(config: dict[str, Any]) -> tuple[DataPlan | None, str | None]:
    """A fine-tune's classes and clip counts, or the one line it would be refused with (briefly cached)."""
    try:
        return check_run(FinetuneConfig.from_dict(config)), None
    except LabError as exc:
        return None, model_error_line(exc)


@st.cache_resource(max_entries=4, show_spinner="Building the layer's kNN graph...")
def layer_knn_graph(key: str, layer: int, k: int = DEFAULT_K) -> Any:
    """The exact kNN graph of one hidden state (``core.geometry.clip_paths.LayerGraph``), per process."""
    from core.geometry import layer_graph

    return layer_graph(np.asarray(feature_set(key).features[:, layer, :]), k)


@st.cache_data(show_spinner=False, max_entries=16)
def real_layer_graph(
    key: str, layer: int, words: tuple[str, ...], per_word: int, k: int
) -> LearnGraph:
    """Learn's real mode: up to ``per_word`` clips of each chosen word at one hidden state, placed by
    2-D PCA (paths use all D dimensions)."""
    from sklearn.decomposition import PCA

    from core.geometry import knn_csr

    fs = feature_set(key)
    all_words = np.asarray(fs.words)
    idx = np.concatenate([np.flatnonzero(all_words == w)[:per_word] for w in words])
    x = np.asarray(fs.features[idx, layer, :], dtype=np.float64)
    labels = all_words[idx]
    result = graph_convexity(
        x, labels, ConvexityOptions(k=k, max_pairs_per_class=None, device="cpu")
    )
    xy = PCA(n_components=2, random_state=0).fit_transform(x)
    return LearnGraph(xy, labels, result, knn_csr(x, k), clips=idx)


# Curve statistics (chance level, population intervals, prune-point stability): minutes of compiled
# work, so they run in a detached worker process (core.results.statistics_job) into the results store.
STATS_PERMUTATIONS = 10
STATS_RESAMPLES = 20
STATS_SEEDS = 3


def statistics_options() -> StatisticsOptions:
    """The dashboard's curve-statistics request (the CLI's ``--chance 10 --resamples 20``; with the
    curve's own options from k and precision: the same store entry)."""
    return StatisticsOptions(
        n_permutations=STATS_PERMUTATIONS, n_resamples=STATS_RESAMPLES, n_seeds=STATS_SEEDS
    )


def statistics_choice(key: str, names: tuple[str, ...], k: int, precision: str) -> StatisticsChoice:
    """What can be computed for this feature set (the options) and, per part that cannot, why."""
    return _statistics_choice(key, tuple(names), statistics_options())


@st.cache_resource(show_spinner=False, max_entries=32)
def _statistics_choice(
    key: str, names: tuple[str, ...], options: StatisticsOptions
) -> StatisticsChoice:
    """``statistics_choice`` once per process and request (it checks every class's units; the
    progress fragment asks every second)."""
    return choose_statistics(feature_set(key), names, options)


def statistics_job(key: str, names: tuple[str, ...], k: int, precision: str) -> StatisticsJob:
    """The detached job that computes these curve statistics."""
    options = statistics_choice(key, names, k, precision).options
    return StatisticsJob(key, tuple(names), options, preset(precision).options(k=int(k)))


def stored_curve_statistics(
    key: str, names: tuple[str, ...], k: int, precision: str
) -> tuple[CurveStatistics, Provenance] | None:
    """The stored curve statistics for these inputs, or None (nothing is computed here)."""
    fs = feature_set(key)
    options = statistics_choice(key, names, k, precision).options
    convexity = preset(precision).options(k=int(k))
    entry = load_result(statistics_key(fs, list(names), convexity, options))
    if entry is None:
        return None
    return CurveStatistics.from_dict(entry.data), entry.provenance


def statistics_status(key: str, names: tuple[str, ...], k: int, precision: str) -> JobStatus | None:
    """The state of the statistics job for these inputs (None if none was started)."""
    return read_job(statistics_job(key, names, k, precision))


def start_statistics(key: str, names: tuple[str, ...], k: int, precision: str) -> JobStatus:
    """Start (once) the worker process computing these curve statistics, owned by this session."""
    return start_job(statistics_job(key, names, k, precision), owner=session_id())


def cancel_statistics(key: str, names: tuple[str, ...], k: int, precision: str) -> None:
    """Stop the worker computing these curve statistics."""
    cancel_job(statistics_job(key, names, k, precision))
