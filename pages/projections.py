"""Projections: a 2-D UMAP of one hidden state at a time; click a point to hear the clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.results import export
from pages import cached, figures
from pages.feature_choice import current_features, features_caption

DEFAULTS = {"pj_layer": None, "pj_colour": "word"}  # None = the last hidden state

st.title("Projections")
fs = current_features(DEFAULTS)
if fs is None:
    st.stop()
features_caption(fs)

# every layer at once, stored: moving the slider is instant, and a layout from `python -m core umap` opens
emb, prov = cached.umap_with_provenance(fs.key)
n_layers = fs.n_layers
if st.session_state.get("pj_layer") is None or st.session_state.pj_layer > n_layers:
    st.session_state.pj_layer = n_layers

c1, c2 = st.columns([3, 1])
with c1:
    layer = st.slider(figures.LAYER_AXIS, 0, n_layers, key="pj_layer")
with c2:
    colour = st.segmented_control("Colour by", ["word", "speaker"], key="pj_colour")
    colour = colour or "word"
if fs.meta.get("final_layer_norm") and layer == n_layers:
    st.caption(f"Hidden state {n_layers} includes Whisper's final LayerNorm.")

labels = np.asarray(fs.labels(colour))
meta = np.stack([np.arange(len(labels)), fs.paths, fs.words, fs.speakers], axis=1)
xy = emb[layer]
fig = go.Figure()
names = sorted(set(labels.tolist()))
for cls, col in zip(names, figures.palette(len(names)), strict=True):
    mask = labels == cls
    fig.add_trace(
        go.Scatter(
            x=xy[mask, 0],
            y=xy[mask, 1],
            mode="markers",
            name=str(cls),
            marker={"size": 7, "opacity": 0.85, "color": col},
            customdata=meta[mask],
            hovertemplate="<b>%{customdata[2]}</b> · %{customdata[3]}<br>%{customdata[1]}"
            "<br>clip %{customdata[0]}<extra></extra>",
        )
    )
lim = float(np.abs(emb).max()) * 1.05  # one range for all layers: positions are comparable
fig.update_xaxes(range=[-lim, lim], showticklabels=False, zeroline=False, title_text="UMAP 1")
fig.update_yaxes(
    range=[-lim, lim], showticklabels=False, zeroline=False, title_text="UMAP 2", scaleanchor="x"
)
figures.style(fig, height=620)
fig.update_layout(
    legend={"orientation": "v", "y": 1, "x": 1.02, "yanchor": "top"}, clickmode="event+select"
)
umap = prov.settings
umap_text = (
    f"UMAP {umap.get('n_neighbors')} neighbours, min_dist {umap.get('min_dist')}, "
    f"{umap.get('n_epochs')} epochs"
)
export.add_caption(
    fig, [f"hidden state {layer}, coloured by {colour} · {umap_text} · " + prov.caption()]
)
event = figures.show(
    fig,
    key="pj_plot",
    on_select="rerun",
    selection_mode="points",
    config=figures.figure_config(f"umap-layer{layer}", fig),
)
st.caption(
    f"UMAP on the exact Euclidean kNN graph ({umap.get('n_neighbors')} neighbours) of each hidden state; "
    "each layer starts from the "
    "previous one's layout and is Procrustes-aligned to it, so clips move only where the geometry changes."
)

points = event.selection.points if event is not None else []
if points:
    data = points[0].get("customdata")
    if data is None:  # fall back on the trace and point index
        trace = fig.data[points[0]["curve_number"]]
        data = trace.customdata[points[0]["point_index"]]
    idx = int(data[0])
    root = Path(str(fs.meta.get("root", ".")))
    path = root / fs.paths[idx]
    st.markdown(f"**{fs.words[idx]}** spoken by **{fs.speakers[idx]}** — `{fs.paths[idx]}`")
    if path.is_file():
        st.audio(str(path))
    else:
        st.warning(f"Audio file not found: {path}")
else:
    st.caption("Click a point to play its clip.")
