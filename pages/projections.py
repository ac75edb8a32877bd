"""Projections: a 2-D UMAP of one hidden state at a time; click a clip to hear it, its neighbours and
the shortest path to a class-mate; per-clip diagnostics (convexity, bridges) as colours and tables."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.errors import LabError
from core.geometry.clip_paths import class_paths, clip_path, leaving_partner, path_rows
from core.geometry.diagnostics import breakdown, clip_rows
from core.results import export
from pages import cached, figures
from pages.feature_choice import current_features, features_caption
from pages.messages import one_line

COLOURS = ["word", "speaker", "clip convexity", "bridge"]
DEFAULTS = {"pj_layer": None, "pj_colour": "word", "pj_labels": "word", "pj_clip": None}
PAGE_ROWS = 25  # rows per page of the clip tables
K = 10  # the kNN graph of the diagnostics and paths (the Convexity page's default)
PATH_COLOUR = "#e11d48"

st.title("Projections")
fs = current_features(DEFAULTS)
if fs is None:
    st.stop()
features_caption(fs)
for name, value in DEFAULTS.items():
    st.session_state.setdefault(name, value)

# every layer at once, stored: moving the slider is instant, and a layout from `python -m core umap` opens
emb, prov = cached.umap_with_provenance(fs.key)
n_layers = fs.n_layers
n_clips = len(fs.paths)
if st.session_state.get("pj_layer") is None or st.session_state.pj_layer > n_layers:
    st.session_state.pj_layer = n_layers
clip = st.session_state.get("pj_clip")
if clip is not None and not 0 <= int(clip) < n_clips:
    st.session_state.pj_clip = clip = None

c1, c2, c3 = st.columns([3, 2, 1])
with c1:
    layer = st.slider(figures.LAYER_AXIS, 0, n_layers, key="pj_layer")
with c2:
    colour = st.segmented_control("Colour by", COLOURS, key="pj_colour") or "word"
with c3:
    judged = st.radio(
        "Classes",
        ["word", "speaker"],
        key="pj_labels",
        horizontal=True,
        help="Whose classes the clip convexity, bridges and paths are judged by.",
    )
if fs.meta.get("final_layer_norm") and layer == n_layers:
    st.caption(f"Hidden state {layer} includes Whisper's final LayerNorm.")

show_tables = st.toggle(
    "Clip diagnostics tables",
    key="pj_tables",
    help="Lowest-convexity and highest-bridge clips, per word and per speaker; computed once per "
    "layer (every clip's shortest-path tree) and stored.",
)
diag: dict[str, Any] | None = None
diag_prov = None
if colour in ("clip convexity", "bridge") or show_tables or clip is not None:
    try:
        diag, diag_prov = cached.diagnostics_with_provenance(fs.key, layer, K)
    except LabError as exc:
        st.error(f"Cannot compute the clip diagnostics: {one_line(exc)}")
table = None if diag is None else diag.get(judged)


def audio_file(i: int) -> Path:
    """Where clip ``i``'s audio lives."""
    return Path(str(fs.meta.get("root", "."))) / fs.paths[i]


def play(i: int, caption: str | None = None) -> None:
    """An audio player for clip ``i`` (or a note that its file is missing)."""
    if caption:
        st.caption(caption)
    path = audio_file(i)
    if path.is_file():
        st.audio(str(path))
    else:
        st.caption(f"audio file not found: {path}")


def select_clip() -> None:
    """Plot click -> the chosen clip (runs before the page, so every widget sees it)."""
    event = st.session_state.get("pj_plot")
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return
    for p in points:
        data = p.get("customdata")
        if isinstance(data, list | tuple) and data:
            st.session_state.pj_clip = int(data[0])
            return


labels = np.asarray(fs.labels(judged))
graph = cached.layer_knn_graph(fs.key, layer, K) if clip is not None else None
path = None
if clip is not None and graph is not None:
    partner_key = f"pj_partner_{clip}_{judged}_{layer}"
    mates = class_paths(graph, labels, int(clip))
    if mates:
        default = leaving_partner(graph, labels, int(clip))
        options = [p.target for p in mates]
        score_of = {p.target: p.score for p in mates}
        if st.session_state.get(partner_key) not in options:
            st.session_state[partner_key] = default
        partner = st.session_state[partner_key]
        path = clip_path(graph, labels, int(clip), int(partner))

meta = np.stack([np.arange(n_clips), fs.paths, fs.words, fs.speakers], axis=1)
xy = emb[layer]
hover = (
    "<b>%{customdata[2]}</b> · %{customdata[3]}<br>%{customdata[1]}<br>clip %{customdata[0]}"
    "<extra></extra>"
)
fig = go.Figure()
if colour in ("word", "speaker"):
    figures.class_traces(
        fig, xy, np.asarray(fs.labels(colour)), customdata=meta, hovertemplate=hover
    )
elif table is not None:
    values = table.convexity if colour == "clip convexity" else table.bridge
    fig.add_trace(
        go.Scatter(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="markers",
            name=colour,
            marker={
                "size": 7,
                "color": np.nan_to_num(values, nan=0.0),
                "colorscale": "Viridis" if colour == "clip convexity" else "Inferno",
                "reversescale": colour == "bridge",
                "colorbar": {"title": {"text": colour}},
                "showscale": True,
            },
            customdata=meta,
            text=[f"{v:.3f}" for v in values],
            hovertemplate=hover.replace("<extra>", f"<br>{colour} %{{text}}<extra>"),
            showlegend=False,
        )
    )
if clip is not None and graph is not None:
    idx, _ = graph.neighbours(int(clip))
    fig.add_trace(
        go.Scatter(
            x=xy[idx, 0],
            y=xy[idx, 1],
            mode="markers",
            name=f"{K} nearest neighbours",
            marker={"size": 13, "symbol": "circle-open", "color": "#0ea5e9", "line": {"width": 2}},
            customdata=meta[idx],
            hovertemplate=hover,
        )
    )
if path is not None and path.reachable:
    v = list(path.vertices)
    fig.add_trace(
        go.Scatter(
            x=xy[v, 0],
            y=xy[v, 1],
            mode="lines+markers+text",
            name="shortest path",
            line={"width": 3, "color": PATH_COLOUR},
            marker={
                "size": 11,
                "color": ["#16a34a" if inside else "#dc2626" for inside in path.in_class],
                "symbol": ["circle" if inside else "x" for inside in path.in_class],
            },
            text=[f"{step} {fs.words[u]}" for step, u in enumerate(v)],
            textposition="top center",
            customdata=meta[v],
            hovertemplate=hover,
        )
    )
if clip is not None:
    fig.add_trace(
        go.Scatter(
            x=[xy[int(clip), 0]],
            y=[xy[int(clip), 1]],
            mode="markers",
            name="chosen clip",
            marker={"size": 18, "symbol": "star", "color": PATH_COLOUR},
            customdata=meta[[int(clip)]],
            hovertemplate=hover,
        )
    )
lim = float(np.abs(emb).max()) * 1.05  # one range for all layers: positions are comparable
x_range = y_range = [-lim, lim]
if clip is not None and graph is not None and st.session_state.get("pj_zoom", True):
    near = [int(clip), *graph.neighbours(int(clip))[0].tolist()]
    near += list(path.vertices) if path is not None else []
    lo, hi = xy[near].min(axis=0), xy[near].max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) * 0.75, lim * 0.08)
    x_range = [centre[0] - half, centre[0] + half]
    y_range = [centre[1] - half, centre[1] + half]
figures.layout_axes(fig, x_range, y_range)
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
figures.show(
    fig,
    key="pj_plot",
    on_select=select_clip,
    selection_mode="points",
    config=figures.figure_config(f"umap-layer{layer}", fig),
)
st.caption(
    f"UMAP on the exact Euclidean kNN graph ({umap.get('n_neighbors')} neighbours) of each hidden state; "
    "each layer starts from the "
    "previous one's layout and is Procrustes-aligned to it, so clips move only where the geometry changes. "
    f"Neighbours and paths are those of the exact {K}-NN graph convexity uses, drawn on the UMAP."
)

if clip is not None:
    st.toggle(
        "Zoom to the clip and its path",
        value=True,
        key="pj_zoom",
        help="Off: the whole layer at the range shared by all layers.",
    )
st.number_input(
    "Clip (or click a point)",
    min_value=0,
    max_value=n_clips - 1,
    step=1,
    key="pj_clip",
    placeholder="click a point on the plot",
)
if clip is None:
    st.caption(
        "Click a point to play its clip, its neighbours and its shortest path to a class-mate."
    )
else:
    i = int(clip)
    st.markdown(f"**{fs.words[i]}** spoken by **{fs.speakers[i]}** — `{fs.paths[i]}` (clip {i})")
    if table is not None:
        st.caption(
            f"clip convexity ({judged}) {table.convexity[i]:.3f} · bridge {table.bridge[i]:.4f} "
            f"({table.bridge_paths[i]} other classes' paths) · kNN purity {table.purity[i]:.1f}"
        )
    play(i)
    left, right = st.columns(2)
    with left:
        st.subheader(f"Its {K} nearest neighbours")
        assert graph is not None
        idx, dist = graph.neighbours(i)
        st.dataframe(
            [
                {
                    "clip": int(j),
                    "word": fs.words[j],
                    "speaker": fs.speakers[j],
                    "distance": round(float(d), 4),
                    "same class": bool(labels[j] == labels[i]),
                }
                for j, d in zip(idx, dist, strict=True)
            ],
            hide_index=True,
            key="pj_neighbours",
        )
        with st.expander("Hear the neighbours"):
            for j, d in zip(idx, dist, strict=True):
                play(int(j), f"clip {j}: {fs.words[j]} · {fs.speakers[j]} · distance {d:.3f}")
    with right:
        st.subheader("Shortest path to a class-mate")
        if path is None:
            st.info(f"Clip {i} has no class-mate in its {judged} class.")
        else:
            st.selectbox(
                f"Class-mate ({judged} {labels[i]}); default: the one whose path leaves the class most",
                options,
                key=partner_key,
                format_func=lambda t: (
                    f"clip {t} · {fs.words[t]} · {fs.speakers[t]} · path score {score_of[t]:.2f}"
                ),
            )
            if not path.reachable:
                st.warning("Unreachable in the kNN graph: the pair scores 0.")
            else:
                st.markdown(
                    f"{len(path.vertices) - 1} edges, {len(path.interior)} interior clips, "
                    f"pair score **{path.score:.2f}** (share of interior clips in the class)"
                )
                rows = path_rows(path, {"word": fs.words, "speaker": fs.speakers, "file": fs.paths})
                st.dataframe(rows, hide_index=True, key="pj_path_table")
                with st.expander("Hear the path, step by step"):
                    for r in rows:
                        where = "in class" if r["in_class"] else "OUTSIDE the class"
                        play(
                            int(r["clip"]),
                            f"step {r['step']} ({r['role']}, {where}): clip {r['clip']} · "
                            f"{r['word']} · {r['speaker']}",
                        )


def clip_table(order: np.ndarray, key: str) -> None:
    """One page of clips in ``order`` with their diagnostics; a selected row plays its clip."""
    assert table is not None
    pages = max(1, -(-len(order) // PAGE_ROWS))
    page = st.number_input("Page", 1, pages, 1, key=f"{key}_page") - 1
    shown = order[page * PAGE_ROWS : (page + 1) * PAGE_ROWS]
    columns = {"word": fs.words, "speaker": fs.speakers, "file": fs.paths}
    rows = [
        {c: r[c] for c in ("clip", "word", "speaker", "convexity", "bridge", "purity", "file")}
        for r in clip_rows(table, columns, order=shown)
    ]
    event = st.dataframe(
        rows, hide_index=True, key=key, on_select="rerun", selection_mode="single-row"
    )
    chosen = event.selection.rows if event is not None else []
    if chosen:
        play(int(rows[chosen[0]]["clip"]), f"clip {rows[chosen[0]]['clip']}")
    else:
        st.caption("Select a row to hear its clip; type its number above to see its path.")


if show_tables and table is not None and diag_prov is not None:
    st.subheader(f"Clip diagnostics at hidden state {layer} ({judged} classes)")
    how = (
        "Exact: every clip's shortest-path tree"
        if table.settings.get("exact", True)
        else f"Sampled: {table.settings.get('max_sources_per_class')} clips' trees per class (the "
        "others have no clip convexity and sort last; class scores and bridges are estimates)"
    )
    st.caption(
        f"{how} on the {K}-NN graph. Clip convexity = mean score of "
        "the clip's within-class paths as source; bridge = share of other classes' paths that pass "
        f"through it; purity = share of its {K} nearest neighbours in its class. · "
        + diag_prov.caption()
    )
    tabs = st.tabs(["Lowest convexity", "Highest bridge", "Per word", "Per speaker", "Classes"])
    with tabs[0]:
        clip_table(table.ranked("convexity"), "pj_low")
    with tabs[1]:
        clip_table(table.ranked("bridge", lowest=False), "pj_bridge")
    for tab, groups in ((tabs[2], fs.words), (tabs[3], fs.speakers)):
        with tab:
            st.dataframe([g.to_dict() for g in breakdown(table, groups)], hide_index=True)
            st.caption(
                "Mean clip convexity, bridge and purity of each group's clips, lowest convexity first; "
                "lowest_share: share of the group's clips among the 5% lowest-convexity clips."
            )
    with tabs[4]:
        st.dataframe([c.to_dict() for c in table.per_class], hide_index=True)
        st.caption(
            "n_components: connected pieces the class forms in the kNN graph (its clips and the edges "
            "among them); bridge_paths: other classes' paths through the class's clips."
        )
    buf = io.StringIO()
    columns = {"file": fs.paths, "word": fs.words, "speaker": fs.speakers}
    first = next(clip_rows(table, columns, order=np.arange(1)))
    writer = csv.DictWriter(buf, fieldnames=list(first), lineterminator="\n")
    writer.writeheader()
    writer.writerows(clip_rows(table, columns))
    st.download_button(
        "Download the clip table (CSV)",
        export.csv_with_provenance(buf.getvalue(), [diag_prov]),
        file_name=f"clips-layer{layer}-{judged}.csv",
        mime="text/csv",
        key="pj_download",
    )
