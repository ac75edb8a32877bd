"""Projections: a 2-D UMAP of one hidden state at a time; click a clip to hear it, its neighbours and
the shortest path to a class-mate; select a region (box or lasso) to list its clips; per-clip
diagnostics (convexity, bridges) as colours and tables, computed in the background."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.data import FeatureInfo, FeatureSet, clip_audio
from core.errors import ConvexityInputError, LabError
from core.geometry import (
    ClipPath,
    breakdown,
    class_paths,
    clip_rows,
    clip_summary,
    path_rows,
    selection_csv,
    selection_table,
)
from core.results import Provenance, decode_diagnostics, diagnostics_entry, export
from pages.parts import cached, figures
from pages.parts.background import BackgroundWork, start
from pages.parts.feature_choice import current_features, features_caption
from pages.parts.messages import one_line

COLOURS = ["word", "speaker", "clip convexity", "bridge"]
DEFAULTS = {
    "pj_layer": None,
    "pj_colour": "word",
    "pj_labels": "word",
    "pj_clip": None,
    "pj_selected": (),
}
PAGE_ROWS = 25  # rows per page of the clip tables
K = 10  # the kNN graph of the diagnostics and paths (the Convexity page's default)
PATH_COLOUR = "#e11d48"
HOVER = (
    "<b>%{customdata[2]}</b> · %{customdata[3]}<br>%{customdata[1]}<br>clip %{customdata[0]}"
    "<extra></extra>"
)


@dataclass(frozen=True)
class View:
    """What the controls chose: the hidden state, the colouring and whose classes judge the clips."""

    layer: int
    colour: str
    judged: str
    tables: bool


@dataclass(frozen=True)
class Diagnostics:
    """One layer's per-clip diagnostics (word and speaker tables) and their provenance."""

    tables: dict[str, Any]
    provenance: Provenance


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 edge', '3 edges'."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def play(fs: FeatureSet, info: FeatureInfo, i: int, caption: str | None = None) -> None:
    """An audio player for clip ``i``, or one line on why there is no audio."""
    if caption:
        st.caption(caption)
    audio = clip_audio(info.dataset, info.root, fs.paths[i])
    if audio.file is not None:
        st.audio(str(audio.file))
    else:
        st.caption(audio.note)


def clip_from_link(n_clips: int) -> None:
    """On a session's first run here, the clip named in the URL (``?clip=``) becomes the chosen one."""
    state = st.session_state
    if "_pj_link_read" in state:
        return
    state["_pj_link_read"] = True
    try:
        clip = int(st.query_params.get("clip", ""))
    except ValueError:
        return
    if 0 <= clip < n_clips:
        state.pj_clip = clip


def link_clip(clip: int | None) -> None:
    """Keep the chosen clip in the URL, so a reload or a shared link opens it."""
    if clip is None:
        st.query_params.pop("clip", None)
    elif st.query_params.get("clip") != str(clip):
        st.query_params["clip"] = str(clip)


def controls(fs: FeatureSet, info: FeatureInfo) -> View:
    """The layer slider, the colouring, the judging classes and the tables toggle."""
    state = st.session_state
    if state.get("pj_layer") is None or state.pj_layer > fs.n_layers:
        state.pj_layer = fs.n_layers
    c1, c2, c3 = st.columns([3, 2, 1])
    with c1:
        layer = st.slider(figures.LAYER_AXIS, 0, fs.n_layers, key="pj_layer")
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
    if info.final_layer_norm and layer == fs.n_layers:
        st.caption(f"Hidden state {layer} includes Whisper's final LayerNorm.")
    tables = st.toggle(
        "Clip diagnostics tables",
        key="pj_tables",
        help="Lowest-convexity and highest-bridge clips, per word and per speaker; computed once per "
        "layer (every clip's shortest-path tree) and stored.",
    )
    return View(int(layer), str(colour), str(judged), bool(tables))


def diagnostics_work(fs: FeatureSet, layer: int) -> Any:
    """The layer's diagnostics as a background job's work: read from the store or computed there."""
    names = [n for n in cached.LABEL_SETS if n not in cached.missing_label_sets(fs)]
    if not names:
        raise ConvexityInputError("; ".join(cached.missing_label_sets(fs).values()))
    n = int(fs.features.shape[0])
    sources = None if n <= cached.EXHAUSTIVE_DIAGNOSTICS else cached.SAMPLED_SOURCES

    def work(progress: Any) -> Diagnostics:
        entry, _ = diagnostics_entry(
            fs, layer, names, k=K, max_sources_per_class=sources, progress=progress
        )
        return Diagnostics(decode_diagnostics(entry), entry.provenance)

    return work


def layer_diagnostics(fs: FeatureSet, layer: int, wanted: bool) -> Diagnostics | None:
    """The layer's diagnostics when ready; else (when ``wanted``) started in the background, with a
    progress bar that reruns the page when they land. The page never waits for them."""
    memory, key = cached.results_memory(), ("diagnostics", fs.key, layer, K)
    found = memory.get(key)
    if isinstance(found, Diagnostics):
        return found
    tasks = cached.background_tasks()
    work = tasks.get(key)
    if work is not None and work.finished:
        if work.result is not None:
            memory.put(key, work.result)
            return work.result
        if wanted:
            st.error(
                "Cannot compute the clip diagnostics: "
                + (work.error or "the work stopped (see the server log)")
            )
        return None
    if work is None:
        if not wanted:
            return None
        label = f"Clip diagnostics of hidden state {layer} (every clip's shortest-path tree)"
        work = tasks[key] = start(BackgroundWork(label), diagnostics_work(fs, layer))
    diagnostics_progress(work)
    return None


@st.fragment(run_every=1.0)
def diagnostics_progress(work: BackgroundWork) -> None:
    """Progress of the layer's diagnostics; reruns the page when they are ready."""
    if work.finished:
        st.rerun(scope="app")
    st.progress(work.fraction(), text=work.text() + " · the plot stays usable meanwhile")


def on_plot_event() -> None:
    """Plot event -> a box or lasso selects its clips; a click on one point chooses that clip."""
    state = st.session_state
    event = state.get("pj_plot")
    try:
        selection = event["selection"]
        points = selection["points"]
    except (KeyError, TypeError):
        return
    clips = [
        int(p["customdata"][0])
        for p in points
        if isinstance(p.get("customdata"), list | tuple) and p["customdata"]
    ]
    region = repr(selection.get("box") or selection.get("lasso") or "")
    if region != "''" and region != state.get("_pj_region"):  # a new box or lasso
        state["_pj_region"] = region
        state.pj_selected = tuple(sorted(set(clips)))
    elif len(clips) == 1:  # a click on one point
        state.pj_clip = clips[0]


def clip_labels(fs: FeatureSet) -> dict[str, list[str]]:
    """Per-clip word, speaker and file, for selection tables."""
    return {"word": fs.words, "speaker": fs.speakers, "file": fs.paths}


def chosen_path(fs: FeatureSet, graph: Any, labels: np.ndarray, clip: int, judged: str, layer: int):
    """(every path from ``clip`` to a class-mate, the one shown): by default the path that leaves the
    class most; one shortest-path tree serves both."""
    mates = class_paths(graph, labels, clip)
    if not mates:
        return [], None
    default = min(
        mates, key=lambda p: (p.score, -(len(p.interior) - sum(p.in_class[1:-1])), p.target)
    )
    partner_key = f"pj_partner_{clip}_{judged}_{layer}"
    options = [p.target for p in mates]
    if st.session_state.get(partner_key) not in options:
        st.session_state[partner_key] = default.target
    partner = st.session_state[partner_key]
    return mates, next(p for p in mates if p.target == partner)


def projection_figure(
    fs: FeatureSet,
    xy: np.ndarray,
    view: View,
    diag: Diagnostics | None,
    selected: np.ndarray | None,
) -> tuple[go.Figure, str]:
    """(the layer's points coloured as chosen, what they are coloured by): clip diagnostics colour
    only once ready (until then the word colours stay)."""
    n = len(fs.paths)
    meta = np.stack([np.arange(n), fs.paths, fs.words, fs.speakers], axis=1)
    fig = go.Figure()
    table = None if diag is None else diag.tables.get(view.judged)
    colour = view.colour
    if colour in ("clip convexity", "bridge") and table is None:
        colour = "word"
    if colour in ("word", "speaker"):
        figures.class_traces(
            fig,
            xy,
            np.asarray(fs.labels(colour)),
            customdata=meta,
            hovertemplate=HOVER,
            selected=selected,
        )
    else:
        values = table.convexity if colour == "clip convexity" else table.bridge
        figures.value_trace(
            fig,
            xy,
            values,
            colour,
            customdata=meta,
            hovertemplate=HOVER,
            reverse=colour == "bridge",
            selected=selected,
        )
    return fig, colour


def add_clip_traces(
    fig: go.Figure, fs: FeatureSet, xy: np.ndarray, graph: Any, clip: int, path: ClipPath | None
) -> None:
    """The chosen clip (star), its k nearest neighbours (rings) and its path (labelled at its ends:
    interior labels would pile up when zoomed; hover names every step)."""
    n = len(fs.paths)
    meta = np.stack([np.arange(n), fs.paths, fs.words, fs.speakers], axis=1)
    idx, _ = graph.neighbours(clip)
    fig.add_trace(
        go.Scatter(
            x=xy[idx, 0],
            y=xy[idx, 1],
            mode="markers",
            name=f"{K} nearest neighbours",
            marker={"size": 13, "symbol": "circle-open", "color": "#0ea5e9", "line": {"width": 2}},
            customdata=meta[idx],
            hovertemplate=HOVER,
        )
    )
    if path is not None and path.reachable:
        v = list(path.vertices)
        last = len(v) - 1
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
                text=[
                    f"{'start' if s == 0 else 'end'} {fs.words[u]}" if s in (0, last) else ""
                    for s, u in enumerate(v)
                ],
                textposition="top center",
                customdata=meta[v],
                hovertemplate=HOVER.replace("<extra>", "<br>step %{pointNumber}<extra>"),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[xy[clip, 0]],
            y=[xy[clip, 1]],
            mode="markers",
            name="chosen clip",
            marker={"size": 18, "symbol": "star", "color": PATH_COLOUR},
            customdata=meta[[clip]],
            hovertemplate=HOVER,
        )
    )


def zoom_ranges(
    emb: np.ndarray, xy: np.ndarray, graph: Any, clip: int | None, path: ClipPath | None
) -> tuple[list[float], list[float]]:
    """The whole layer at the range shared by all layers, or the clip, its neighbours and its path."""
    lim = float(np.abs(emb).max()) * 1.05  # one range for all layers: positions are comparable
    if clip is None or graph is None or not st.session_state.get("pj_zoom", True):
        return [-lim, lim], [-lim, lim]
    near = [clip, *graph.neighbours(clip)[0].tolist()]
    near += list(path.vertices) if path is not None else []
    lo, hi = xy[near].min(axis=0), xy[near].max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) * 0.75, lim * 0.08)
    return [centre[0] - half, centre[0] + half], [centre[1] - half, centre[1] + half]


@st.fragment
def projection(
    fs: FeatureSet,
    info: FeatureInfo,
    emb: np.ndarray,
    prov: Provenance,
    view: View,
    diag: Diagnostics | None,
) -> None:
    """The plot, the selected region's clips and the chosen clip: a click or a selection reruns only
    this part, not the page."""
    state = st.session_state
    n_clips = len(fs.paths)
    clip = state.get("pj_clip")
    if clip is not None and not 0 <= int(clip) < n_clips:
        state.pj_clip = clip = None
    clip = None if clip is None else int(clip)
    link_clip(clip)
    picked = tuple(int(c) for c in state.get("pj_selected") or () if 0 <= int(c) < n_clips)
    selected = None
    if picked:
        selected = np.zeros(n_clips, dtype=bool)
        selected[list(picked)] = True
    labels = np.asarray(fs.labels(view.judged))
    graph = cached.layer_knn_graph(fs.key, view.layer, K) if clip is not None else None
    mates, path = (
        ([], None)
        if graph is None
        else chosen_path(fs, graph, labels, clip, view.judged, view.layer)
    )
    xy = emb[view.layer]
    fig, coloured = projection_figure(fs, xy, view, diag, selected)
    if clip is not None and graph is not None:
        add_clip_traces(fig, fs, xy, graph, clip, path)
    figures.layout_axes(fig, *zoom_ranges(emb, xy, graph, clip, path))
    figures.style(fig, height=620)
    fig.update_layout(
        legend={"orientation": "v", "y": 1, "x": 1.02, "yanchor": "top"},
        clickmode="event+select",
    )
    umap = prov.settings
    umap_text = (
        f"UMAP {umap.get('n_neighbors')} neighbours, min_dist {umap.get('min_dist')}, "
        f"{umap.get('n_epochs')} epochs"
    )
    export.add_caption(
        fig,
        [f"hidden state {view.layer}, coloured by {coloured} · {umap_text} · " + prov.caption()],
    )
    figures.show(
        fig,
        key="pj_plot",
        on_select=on_plot_event,
        selection_mode=("points", "box", "lasso"),
        config=figures.figure_config(f"umap-layer{view.layer}", fig),
    )
    st.caption(
        f"UMAP on the exact Euclidean kNN graph ({umap.get('n_neighbors')} neighbours) of each hidden "
        "state; each layer starts from the previous one's layout and is Procrustes-aligned to it, so "
        f"clips move only where the geometry changes. Neighbours and paths are those of the exact {K}-NN "
        "graph convexity uses, drawn on the UMAP. Pick the lasso or box in the plot's toolbar and drag to "
        "list a region's clips; click a point to follow one clip."
    )
    selection_section(fs, info, view, diag, picked, prov)
    clip_section(fs, info, view, diag, clip, graph, labels, mates, path)


def selection_section(
    fs: FeatureSet,
    info: FeatureInfo,
    view: View,
    diag: Diagnostics | None,
    picked: tuple[int, ...],
    prov: Provenance,
) -> None:
    """The clips of the selected region: labels and this layer's diagnostics, play one, download all."""
    if not picked:
        return
    table = None if diag is None else diag.tables.get(view.judged)
    rows = selection_table(picked, clip_labels(fs), table)
    head, clear = st.columns([4, 1])
    head.subheader(f"Selected region: {count(len(rows), 'clip')}")
    if clear.button("Clear the selection", key="pj_clear", icon=":material/deselect:"):
        st.session_state.pj_selected = ()
        st.rerun(scope="fragment")
    event = st.dataframe(
        [r.to_dict() for r in rows],
        hide_index=True,
        key="pj_selection_table",
        on_select="rerun",
        selection_mode="single-row",
    )
    chosen = event.selection.rows if event is not None else []
    if chosen:
        r = rows[chosen[0]]
        play(fs, info, r.clip, f"clip {r.clip}: {r.word} · {r.speaker}")
    note = (
        f"Clip convexity, bridge and kNN purity judged by {view.judged} classes at hidden state "
        f"{view.layer}."
        if table is not None
        else "Clip convexity, bridge and purity fill in once this layer's diagnostics are ready."
    )
    st.caption(
        note + " Select a row to hear its clip. The selection stays while you change the layer."
    )
    sources = [prov] + ([diag.provenance] if diag is not None else [])
    st.download_button(
        "Download the selection (CSV)",
        export.csv_with_provenance(selection_csv(rows), sources),
        file_name=f"selection-layer{view.layer}-{view.judged}.csv",
        mime="text/csv",
        key="pj_selection_download",
        on_click="ignore",
    )


def clip_section(
    fs: FeatureSet,
    info: FeatureInfo,
    view: View,
    diag: Diagnostics | None,
    clip: int | None,
    graph: Any,
    labels: np.ndarray,
    mates: list[ClipPath],
    path: ClipPath | None,
) -> None:
    """The chosen clip: its labels and diagnostics, its audio, its neighbours and its path."""
    n_clips = len(fs.paths)
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
    if clip is None or graph is None:
        st.caption(
            "Click a point to play its clip, its neighbours and its shortest path to a class-mate."
        )
        return
    table = None if diag is None else diag.tables.get(view.judged)
    st.markdown(
        f"**{fs.words[clip]}** spoken by **{fs.speakers[clip]}** — `{fs.paths[clip]}` (clip {clip})"
    )
    if table is not None:
        st.caption(clip_summary(table, clip))
    play(fs, info, clip)
    left, right = st.columns(2)
    with left:
        neighbours_part(fs, info, graph, labels, clip)
    with right:
        path_part(fs, info, view, labels, clip, mates, path)


def neighbours_part(
    fs: FeatureSet, info: FeatureInfo, graph: Any, labels: np.ndarray, clip: int
) -> None:
    """The clip's k nearest neighbours as a table and as audio."""
    st.subheader(f"Its {K} nearest neighbours")
    idx, dist = graph.neighbours(clip)
    st.dataframe(
        [
            {
                "clip": int(j),
                "word": fs.words[j],
                "speaker": fs.speakers[j],
                "distance": round(float(d), 4),
                "same class": bool(labels[j] == labels[clip]),
            }
            for j, d in zip(idx, dist, strict=True)
        ],
        hide_index=True,
        key="pj_neighbours",
    )
    with st.expander("Hear the neighbours"):
        for j, d in zip(idx, dist, strict=True):
            play(fs, info, int(j), f"clip {j}: {fs.words[j]} · {fs.speakers[j]} · distance {d:.3f}")


def path_part(
    fs: FeatureSet,
    info: FeatureInfo,
    view: View,
    labels: np.ndarray,
    clip: int,
    mates: list[ClipPath],
    path: ClipPath | None,
) -> None:
    """The shortest path to a chosen class-mate: its steps, its score and its audio."""
    st.subheader("Shortest path to a class-mate")
    if path is None:
        st.info(f"Clip {clip} has no class-mate in its {view.judged} class.")
        return
    score_of = {p.target: p.score for p in mates}
    st.selectbox(
        f"Class-mate ({view.judged} {labels[clip]}); default: the one whose path leaves the class most",
        [p.target for p in mates],
        key=f"pj_partner_{clip}_{view.judged}_{view.layer}",
        format_func=lambda t: (
            f"clip {t} · {fs.words[t]} · {fs.speakers[t]} · path score {score_of[t]:.2f}"
        ),
    )
    if not path.reachable:
        st.warning("Unreachable in the kNN graph: the pair scores 0.")
        return
    st.markdown(
        f"{count(len(path.vertices) - 1, 'edge')}, "
        f"{count(len(path.interior), 'interior clip')}, "
        f"pair score **{path.score:.2f}** (share of interior clips in the class)"
    )
    rows = path_rows(path, {"word": fs.words, "speaker": fs.speakers, "file": fs.paths})
    st.dataframe(rows, hide_index=True, key="pj_path_table")
    with st.expander("Hear the path, step by step"):
        for r in rows:
            where = "in class" if r["in_class"] else "OUTSIDE the class"
            play(
                fs,
                info,
                int(r["clip"]),
                f"step {r['step']} ({r['role']}, {where}): clip {r['clip']} · "
                f"{r['word']} · {r['speaker']}",
            )


def clip_table(fs: FeatureSet, info: FeatureInfo, table: Any, order: np.ndarray, key: str) -> None:
    """One page of clips in ``order`` with their diagnostics; a selected row plays its clip."""
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
        play(fs, info, int(rows[chosen[0]]["clip"]), f"clip {rows[chosen[0]]['clip']}")
    else:
        st.caption("Select a row to hear its clip; type its number above to see its path.")


def tables_section(fs: FeatureSet, info: FeatureInfo, view: View, diag: Diagnostics | None) -> None:
    """Lowest-convexity and highest-bridge clips, per-word, per-speaker and per-class tables, CSV."""
    table = None if diag is None else diag.tables.get(view.judged)
    if not view.tables or table is None:
        return
    st.subheader(f"Clip diagnostics at hidden state {view.layer} ({view.judged} classes)")
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
        + diag.provenance.caption()
    )
    tabs = st.tabs(["Lowest convexity", "Highest bridge", "Per word", "Per speaker", "Classes"])
    with tabs[0]:
        clip_table(fs, info, table, table.ranked("convexity"), "pj_low")
    with tabs[1]:
        clip_table(fs, info, table, table.ranked("bridge", lowest=False), "pj_bridge")
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
        export.csv_with_provenance(buf.getvalue(), [diag.provenance]),
        file_name=f"clips-layer{view.layer}-{view.judged}.csv",
        mime="text/csv",
        key="pj_download",
    )


def main() -> None:
    """The page: controls, diagnostics in the background, the projection with its clip and region
    views (one fragment), the diagnostics tables."""
    st.title("Projections")
    # Everything above the plot is one element, however many it shows (a caption at the last layer,
    # the diagnostics' progress while they run): the plot's fragment keeps its place and so its id,
    # and a clip typed while the page reruns is not dropped as a request to a fragment gone.
    with st.container():
        fs = current_features(DEFAULTS)
        if fs is None:
            return
        features_caption(fs)
        info = fs.info
        clip_from_link(len(fs.paths))
        # every layer at once, stored: moving the slider is instant; a layout from `python -m core
        # umap` opens
        try:
            emb, prov = cached.umap_with_provenance(fs.key)
        except LabError as exc:
            st.error(f"Cannot lay out these features: {one_line(exc)}")
            return
        view = controls(fs, info)
        state = st.session_state
        wanted = (
            view.colour in ("clip convexity", "bridge")
            or view.tables
            or state.get("pj_clip") is not None
            or bool(state.get("pj_selected"))
        )
        diag = layer_diagnostics(fs, view.layer, wanted)
    projection(fs, info, emb, prov, view, diag)
    tables_section(fs, info, view, diag)


main()
