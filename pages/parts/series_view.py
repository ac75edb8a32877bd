"""Compare page section: a stored checkpoint series as layer x checkpoint heatmaps, per-layer lines over
checkpoints, and an aligned UMAP of one hidden state with a slider across checkpoints."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.data import load_cached_features
from core.errors import LabError
from core.results import (
    CheckpointSeries,
    load_series,
    series_label,
    stored_aligned_umap,
    stored_series,
)
from pages.parts import cached, figures
from pages.parts.messages import one_line


def heatmap_figure(series: CheckpointSeries) -> go.Figure:
    """Convexity per hidden state (rows) and checkpoint (columns, in order), one panel per label set."""
    panels = {f"{n} labels": series.matrix(n) for n in series.label_sets}
    names = [c.name for c in series.checkpoints]
    return figures.layer_heatmaps(
        panels, names, series.layers, x_title="checkpoint (in order)", categorical_x=True
    )


def lines_figure(series: CheckpointSeries, label_set: str) -> go.Figure:
    """One line per hidden state: its convexity from checkpoint to checkpoint."""
    names = [c.name for c in series.checkpoints]
    matrix = series.matrix(label_set)
    colours = figures.palette(len(series.layers))
    fig = go.Figure()
    for layer, colour in zip(series.layers, colours, strict=True):
        fig.add_trace(
            go.Scatter(
                x=names,
                y=matrix[:, layer],
                mode="lines+markers",
                name=f"hidden state {layer}",
                line={"color": colour, "width": 2},
            )
        )
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1.05])
    return figures.style(
        fig, height=360, x_title="checkpoint (in order)", y_title=f"{label_set} convexity"
    )


def layout_figure(xy: np.ndarray, labels: np.ndarray, lim: float) -> go.Figure:
    """One checkpoint's aligned layout, coloured by label, on the axis range shared by all checkpoints."""
    fig = figures.class_traces(go.Figure(), xy, labels)
    figures.layout_axes(fig, [-lim, lim], [-lim, lim])
    return figures.style(fig, height=520)


def _aligned_view(key: str, series: CheckpointSeries) -> None:
    """The aligned UMAP of a chosen hidden state, when stored; else the command that makes it."""
    deepest_common = min(c.n_layers for c in series.checkpoints)
    c1, c2 = st.columns([3, 1])
    layer = c1.slider("Hidden state (aligned UMAP)", 0, deepest_common, key=f"cs_layer_{key}")
    colour = (
        c2.segmented_control(
            "Colour by", ["word", "speaker"], default="word", key=f"cs_colour_{key}"
        )
        or "word"
    )
    if stored_aligned_umap(key, layer) is None and not st.button(
        f"Lay out hidden state {layer} under every checkpoint",
        icon=":material/scatter_plot:",
        key=f"cs_go_{key}_{layer}",
        help="One UMAP per checkpoint, each started from and fitted onto the previous one; stored. "
        "The first UMAP in a dashboard process also compiles its kernels (about a minute here).",
    ):
        return
    try:
        layouts = cached.checkpoint_layouts(key, layer)
    except LabError as exc:
        st.error(one_line(exc))
        return
    try:
        labels = np.asarray(load_cached_features(series.checkpoints[0].feature_key).labels(colour))
    except LabError as exc:
        st.warning(f"The clips' labels are not in the feature cache: {one_line(exc)}")
        return
    names = [c.name for c in series.checkpoints]
    chosen = st.select_slider("Checkpoint", options=names, key=f"cs_cp_{key}")
    lim = float(np.abs(layouts).max()) * 1.05  # one range for every checkpoint: positions compare
    figures.show(layout_figure(layouts[names.index(chosen)], labels, lim), key=f"cs_umap_{key}")
    st.caption(
        "Each checkpoint's UMAP starts from the previous checkpoint's layout and is fitted onto it "
        "(rotation, reflection, shift), so a clip moves only as far as the geometry changes."
    )


def series_section() -> None:
    """The checkpoint-series section of the Compare page (nothing when none is stored)."""
    entries = stored_series()
    if not entries:
        return
    st.subheader("Checkpoint series")
    labels = {e.key: series_label(e) for e in entries}
    key = st.selectbox("Series", list(labels), format_func=labels.get, key="cs_series")
    found = load_series(key)
    if found is None:
        st.warning("That series is no longer stored.")
        return
    series, entry = found
    figures.show(heatmap_figure(series), key="cs_heat")
    label_set = (
        st.segmented_control(
            "Lines of", list(series.label_sets), default=series.label_sets[0], key="cs_lines"
        )
        or series.label_sets[0]
    )
    figures.show(lines_figure(series, label_set), key="cs_lines_fig")
    st.caption(
        f"Each checkpoint measured on the same {entry.provenance.n_clips} clips at {series.precision}; "
        "a pruned checkpoint has no hidden states past its prune point (blank)."
    )
    _aligned_view(key, series)
