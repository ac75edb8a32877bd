"""Learn: graph convexity on a 2-D toy. Click two points, then step through graph -> path -> interior -> score."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.data import clip_audio
from core.geometry import PairWalkthrough, leaving_pair, undirected_pairs, walk_pair
from core.results import code_version, export
from pages.parts import figures
from pages.parts.cached import default_pair, real_layer_graph, toy_graph
from pages.parts.state import init_state

STEPS = ("1. The graph", "2. The shortest path", "3. Interior points", "4. The score")
IN_COLOUR, OUT_COLOUR, PATH_COLOUR = "#16a34a", "#dc2626", "#e11d48"
# This page's controls; the moons open it (their shortest paths leave their class).
DEFAULTS = {
    "ln_shape": "moons",
    "ln_classes": 3,
    "ln_per_class": 40,
    "ln_noise": 0.25,
    "ln_k": 10,
    "ln_seed": 0,
    "ln_class": 0,
    "ln_mode": "2-D toy",
    "ln_real_layer": None,
    "ln_real_per_word": 24,
}
MODES = ["2-D toy", "Real layer"]


def _edge_trace(points: np.ndarray, edges: np.ndarray, step: int) -> go.Scatter:
    """The kNN edges as one broken line (thinner once the path is on top)."""
    xs = np.full((len(edges), 3), np.nan)
    ys = np.full((len(edges), 3), np.nan)
    xs[:, :2], ys[:, :2] = points[edges, 0], points[edges, 1]
    return go.Scatter(
        x=xs.ravel(),
        y=ys.ravel(),
        mode="lines",
        name="kNN edges",
        line={"width": 0.7 if step else 1.2, "color": "rgba(128,128,128,0.45)"},
        hoverinfo="skip",
    )


def _class_traces(points: np.ndarray, labels: np.ndarray) -> list[go.Scatter]:
    """One marker trace per class, each point carrying its id for clicks."""
    ids = np.arange(len(points))
    classes = np.unique(labels)
    traces = []
    for c, colour in zip(classes, figures.palette(len(classes)), strict=True):
        mask = labels == c
        traces.append(
            go.Scatter(
                x=points[mask, 0],
                y=points[mask, 1],
                mode="markers",
                name=f"class {c}",
                marker={"size": 10, "color": colour},
                customdata=ids[mask],
                hovertemplate=f"point %{{customdata}} (class {c})<extra></extra>",
            )
        )
    return traces


def _path_trace(points: np.ndarray, path: list[int]) -> go.Scatter:
    """The shortest path as a thick line."""
    return go.Scatter(
        x=points[path, 0],
        y=points[path, 1],
        mode="lines",
        name="shortest path",
        line={"width": 4, "color": PATH_COLOUR},
        hoverinfo="skip",
    )


def _interior_traces(points: np.ndarray, walk: PairWalkthrough) -> list[go.Scatter]:
    """The path's interior points ringed by whether they are in the pair's class (empty groups left out)."""
    traces = []
    for name, group, colour, symbol in (
        ("interior, same class", walk.inside, IN_COLOUR, "circle-open"),
        ("interior, other class", walk.outside, OUT_COLOUR, "x-open"),
    ):
        if group:
            g = list(group)
            traces.append(
                go.Scatter(
                    x=points[g, 0],
                    y=points[g, 1],
                    mode="markers",
                    name=f"{name} ({len(g)})",
                    marker={"size": 17, "symbol": symbol, "color": colour, "line": {"width": 3}},
                    customdata=g,
                    hovertemplate="point %{customdata}<extra></extra>",
                )
            )
    return traces


def _ends_trace(points: np.ndarray, walk: PairWalkthrough) -> go.Scatter:
    """The pair's two points as labelled stars."""
    ends = [walk.start, walk.end]
    return go.Scatter(
        x=points[ends, 0],
        y=points[ends, 1],
        mode="markers+text",
        name="start / end",
        text=["start", "end"],
        textposition="top center",
        marker={"size": 20, "symbol": "star", "color": PATH_COLOUR},
        customdata=ends,
        hovertemplate="point %{customdata}<extra></extra>",
    )


def figure(
    points: np.ndarray, labels: np.ndarray, edges: np.ndarray, walk: PairWalkthrough, step: int
) -> go.Figure:
    """The toy by class over its kNN edges; from step 2 on the path, from step 3 the interior points."""
    fig = go.Figure()
    fig.add_trace(_edge_trace(points, edges, step))
    for trace in _class_traces(points, labels):
        fig.add_trace(trace)
    if step >= 1 and walk.path is not None and len(walk.path) > 1:
        fig.add_trace(_path_trace(points, list(walk.path)))
    if step >= 2:
        for trace in _interior_traces(points, walk):
            fig.add_trace(trace)
    fig.add_trace(_ends_trace(points, walk))
    fig.update_yaxes(scaleanchor="x")
    fig.update_layout(clickmode="event+select", dragmode="pan")
    return figures.style(fig, height=560)


def _walk_figure(built: Any, walk: PairWalkthrough, step: int, caption: str) -> go.Figure:
    """:func:`figure` of a built graph (points, labels, kNN graph) at ``step``, captioned with what it
    shows and the code version."""
    g = built.graph
    fig = figure(built.points, built.labels, undirected_pairs(g.indptr, g.indices), walk, step)
    return export.add_caption(fig, [f"{caption} · code {code_version()}"])


def clicked_point(event: Any) -> int | None:
    """The point id of a plot click (selection event), or None."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points:
        data = p.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if data is not None:
            return int(data)
    return None


def apply_click(labels: np.ndarray) -> str | None:
    """Turn plot clicks into the pair: first click = start, second (same class) = end; returns a hint."""
    event = st.session_state.get("ln_plot")
    point = clicked_point(event)
    signature = repr(event)
    if point is None or signature == st.session_state.get("ln_last_event"):
        return None
    st.session_state["ln_last_event"] = signature
    first = st.session_state.get("ln_first")
    if first is None or first == point or labels[first] != labels[point]:
        st.session_state["ln_first"] = point
        why = (
            f" (point {first} is in class {labels[first]}: a pair lies in one class)"
            if first is not None and first != point and labels[first] != labels[point]
            else ""
        )
        return f"Start: point {point} (class {labels[point]}). Click a second point of the same class{why}."
    set_pair(int(labels[first]), first, point)
    return None


def set_pair(cls: int, start: int, end: int) -> None:
    """Choose the pair (and its class) in the widgets' state; the step-through starts over."""
    st.session_state["ln_class"] = cls
    start_key, end_key = _keys(cls)
    st.session_state[start_key] = int(start)
    st.session_state[end_key] = int(end)
    st.session_state["ln_first"] = None
    st.session_state["ln_step"] = 0


def move_step(delta: int) -> None:
    """Button callback: one step forward or back (runs before the page, so the buttons see the new step)."""
    st.session_state["ln_step"] = min(len(STEPS) - 1, max(0, st.session_state["ln_step"] + delta))


def step_buttons(step: int) -> None:
    """Back / Next and the name of the current step."""
    back, label, forward = st.columns([1, 3, 1])
    back.button("◀ Back", disabled=step == 0, key="ln_back", on_click=move_step, args=(-1,))
    forward.button(
        "Next ▶", disabled=step == len(STEPS) - 1, key="ln_next", on_click=move_step, args=(1,)
    )
    label.markdown(f"**{STEPS[step]}** (step {step + 1} of {len(STEPS)})")


def _keys(cls: int) -> tuple[str, str]:
    per_class = st.session_state["ln_per_class"]
    return f"ln_start_{cls}_{per_class}", f"ln_end_{cls}_{per_class}"


def step_text(walk: PairWalkthrough, step: int, k: int, cls: int, result: Any) -> None:
    """What the lecturer says at this step, with the actual numbers."""
    if step == 0:
        st.markdown(
            f"Every point is joined to its **k = {k} nearest neighbours** (an edge if either point lists "
            "the other; its weight is the Euclidean distance). Convexity only looks at this graph."
        )
        return
    if walk.path is None:
        st.warning(
            "The end point is unreachable from the start in this kNN graph: the pair scores 0."
        )
        return
    if step == 1:
        st.markdown(
            f"The **shortest weighted path** from point {walk.start} to point {walk.end}: "
            f"{' → '.join(map(str, walk.path))} ({len(walk.path) - 1} edges)."
        )
        return
    if step == 2:
        st.markdown(
            f"Its **interior points** (all but the two ends): {walk.n_interior}. "
            f":green[{len(walk.inside)} in class {walk.label}]"
            f"{': ' + ', '.join(map(str, walk.inside)) if walk.inside else ''}; "
            f":red[{len(walk.outside)} in other classes]"
            f"{': ' + ', '.join(map(str, walk.outside)) if walk.outside else ''}."
        )
        return
    per = result.per_class[cls]
    if walk.n_interior:
        st.latex(
            rf"\text{{pair score}} = \frac{{\#\,\text{{interior in class}}}}{{\#\,\text{{interior}}}}"
            rf" = \frac{{{len(walk.inside)}}}{{{walk.n_interior}}} = {walk.score:.2f}"
        )
    else:
        st.markdown("No interior point (the two are neighbours): the pair scores **1**.")
    n = per.n_points
    st.latex(  # two lines: one line overflows the column of a 1400 px window
        rf"\begin{{aligned}}\text{{class {cls} score}} &= \frac{{1}}{{n(n-1)}}\sum_{{s \ne t}}"
        rf" \text{{pair score}}(s,t) \\ &= \text{{mean over }} {n}\cdot{n - 1} = {per.n_pairs}"
        rf"\text{{ pairs}} = {per.score:.3f}\end{{aligned}}"
    )
    st.latex(
        rf"\text{{graph convexity}} = \text{{mean over {len(result.per_class)} classes}} = "
        rf"{result.score:.3f}"
    )


@dataclass(frozen=True)
class _RealChoice:
    """What real mode draws: the hidden state, the words, clips per word and k."""

    layer: int
    words: list[str]
    per_word: int
    k: int


def _real_controls(fs: Any) -> _RealChoice:
    """The hidden state, words, clips per word and k (the clips slider capped at what exists)."""
    words = sorted(set(fs.words))
    if st.session_state.get("ln_real_layer") is None:
        st.session_state["ln_real_layer"] = min(fs.n_layers, 2)
    layer = st.slider(figures.LAYER_AXIS, 0, fs.n_layers, key="ln_real_layer")
    st.session_state.setdefault("ln_real_words", words[: min(3, len(words))])
    chosen = st.multiselect("Words", words, key="ln_real_words", max_selections=6)
    counts = Counter(fs.words)
    most = max((counts[w] for w in chosen), default=4)
    top = min(72, max(4, -(-most // 4) * 4))  # the slider offers no more clips than exist
    if st.session_state.get("ln_real_per_word", 4) > top:
        st.session_state["ln_real_per_word"] = top
    per_word = st.slider("Clips per word", 4, top, step=4, key="ln_real_per_word")
    short = [f"{w} has {counts[w]}" for w in chosen if counts[w] < per_word]
    if short:
        st.caption(f"Fewer clips than {per_word} exist: {', '.join(short)} (all are used).")
    k = st.slider("k (neighbours)", 1, 20, key="ln_k")
    return _RealChoice(layer, chosen, per_word, k)


def _start_new_real(feature_key: str, choice: _RealChoice, real_graph: Any) -> None:
    """On new data, step 1 and a pair whose path leaves its class (else the first two clips)."""
    real = (feature_key, choice.layer, tuple(choice.words), choice.per_word, choice.k)
    if st.session_state.get("ln_real") != real:
        st.session_state["ln_real"] = real
        st.session_state["ln_step"] = 0
        g = real_graph.graph
        pair = leaving_pair(g.indptr, g.indices, g.weights, real_graph.labels) or (0, 1)
        st.session_state["ln_real_start"], st.session_state["ln_real_end"] = map(int, pair)


def _real_pair_pickers(labels: np.ndarray, names: dict[int, str]) -> tuple[int, int]:
    """Start clip, then end clip among the start's word (kept valid when the start changes)."""
    start = st.selectbox(
        "Start clip", range(len(names)), key="ln_real_start", format_func=names.get
    )
    mates = [int(i) for i in np.flatnonzero(labels == labels[start])]
    if st.session_state.get("ln_real_end") not in mates:
        st.session_state["ln_real_end"] = next(i for i in mates if i != start)
    end = st.selectbox("End clip", mates, key="ln_real_end", format_func=names.get)
    return start, end


def _real_plot(
    fs: Any, real_graph: Any, choice: _RealChoice, walk: PairWalkthrough, step: int
) -> None:
    """The real layer's clips on two principal components with the step's path, and what it shows."""
    real_fig = _walk_figure(
        real_graph,
        walk,
        step,
        f"{fs.info.model_key} hidden state {choice.layer}: {len(real_graph.clips)} clips of "
        f"{', '.join(choice.words)} · k={choice.k} · exact (all pairs) · drawn on the first two "
        f"principal components (graph and paths in all {fs.features.shape[2]} dimensions)",
    )
    figures.show(real_fig, config=figures.figure_config("learn-real", real_fig), key="ln_real_plot")
    st.caption(
        "Drawn on the clips' first two principal components; the kNN graph, the path and the "
        f"scores use all {fs.features.shape[2]} dimensions of hidden state {choice.layer}."
    )


def _hear_path(
    fs: Any,
    walk: PairWalkthrough,
    labels: np.ndarray,
    idx: np.ndarray,
    names: dict[int, str],
    step: int,
) -> None:
    """Each clip along the path with its role and class, and its audio where the file exists."""
    info, path = fs.info, list(walk.path or ())
    with st.expander("Hear the path", expanded=step >= 2):
        for n, v in enumerate(path):
            role = "start" if n == 0 else "end" if n == len(path) - 1 else "interior"
            inside = "in class" if labels[v] == labels[walk.start] else "OTHER class"
            st.caption(f"{n}. {role} · {inside} · {names[v]}")
            audio = clip_audio(info.dataset, info.root, fs.paths[idx[v]])
            if audio.file is not None:
                st.audio(str(audio.file))


def real_mode() -> None:
    """The same step-through on a small real layer: a few words of the chosen feature set."""

    from pages.parts.cached import feature_set
    from pages.parts.feature_choice import features_caption

    key = st.session_state.get("feature_key")
    if key is None:
        st.info("No feature set chosen yet: pick or extract one on the Setup page.")
        st.page_link("pages/setup.py", label="Go to Setup", icon=":material/tune:")
        return
    fs = feature_set(key)
    features_caption(fs)
    left, right = st.columns([1, 3])
    with left:
        choice = _real_controls(fs)
    if len(choice.words) < 2:
        st.info("Choose at least two words.")
        return
    with st.spinner(
        f"Building the kNN graph of {len(choice.words)} words and scoring every pair..."
    ):
        real_graph = real_layer_graph(
            fs.key, int(choice.layer), tuple(choice.words), int(choice.per_word), int(choice.k)
        )
    idx, labels, result = np.asarray(real_graph.clips), real_graph.labels, real_graph.result
    _start_new_real(fs.key, choice, real_graph)
    names = {i: f"{labels[i]} · {fs.speakers[idx[i]]} (clip {idx[i]})" for i in range(len(idx))}
    with left:
        st.divider()
        start, end = _real_pair_pickers(labels, names)
    g = real_graph.graph
    walk = walk_pair(g.indptr, g.indices, g.weights, labels, int(start), int(end))
    step = int(st.session_state["ln_step"])
    with right:
        a, b, c = st.columns(3)
        a.metric("This path's score", f"{walk.score:.2f}")
        b.metric(f"Class '{labels[start]}' score", f"{result.per_class[labels[start]].score:.3f}")
        c.metric(f"Graph convexity ({len(choice.words)} words)", f"{result.score:.3f}")
        step_buttons(step)
        step_text(walk, step, choice.k, labels[start], result)
        _real_plot(fs, real_graph, choice, walk, step)
        if walk.path is not None and step >= 1:
            _hear_path(fs, walk, labels, idx, names, step)


@dataclass(frozen=True)
class _Toy:
    """The toy's settings: shape, classes, points per class, noise, k and seed."""

    shape: str
    classes: int
    per_class: int
    spread: float
    k: int
    seed: int

    @property
    def key(self) -> tuple[Any, ...]:
        """The settings in ``toy_graph``'s argument order (also what marks a new toy)."""
        return (self.shape, self.classes, self.per_class, self.spread, self.k, self.seed)


def _toy_controls() -> _Toy:
    """The toy's shape, classes, points per class, noise, k and seed."""
    shape = st.radio(
        "Shape",
        ["blobs", "moons"],
        horizontal=True,
        key="ln_shape",
        help="Blobs are convex classes; moons interlock, so paths leave the class.",
    )
    classes = st.slider("Classes", 2, 6, key="ln_classes")
    per_class = st.slider("Points per class", 10, 120, step=10, key="ln_per_class")
    spread = st.slider("Noise", 0.05, 1.0, step=0.05, key="ln_noise")
    k = st.slider("k (neighbours)", 1, 20, key="ln_k")
    seed = st.number_input("Seed", 0, 10_000, key="ln_seed")
    return _Toy(shape, classes, per_class, spread, k, int(seed))


def _start_new_toy(toy: _Toy, labels: np.ndarray) -> None:
    """On a new toy, start from a pair whose path leaves its class (if it has one)."""
    if st.session_state.get("ln_toy") != toy.key:
        st.session_state["ln_toy"] = toy.key
        pair = default_pair(*toy.key)
        if pair is not None:
            set_pair(int(labels[pair[0]]), pair[0], pair[1])
        else:
            st.session_state["ln_first"] = None


def _toy_pair_pickers(cls: int, labels: np.ndarray) -> tuple[int, int]:
    """Start and end point among the class's points (a stale choice falls back to its first/last)."""
    members = np.flatnonzero(labels == cls).tolist()
    start_key, end_key = _keys(cls)
    for key in (start_key, end_key):
        if st.session_state.get(key) not in members:
            st.session_state.pop(key, None)
    for key, index in ((start_key, 0), (end_key, len(members) - 1)):
        st.session_state.setdefault(key, members[index])
    start = st.selectbox("Start point", members, key=start_key)
    end = st.selectbox("End point", members, key=end_key)
    return start, end


def _toy_plot(toy: _Toy, toy_built: Any, walk: PairWalkthrough, step: int) -> None:
    """The toy with the step's path, clickable to choose the pair."""
    toy_fig = _walk_figure(
        toy_built,
        walk,
        step,
        f"2-D toy: {toy.shape}, {toy.classes} classes x {toy.per_class} points, noise "
        f"{toy.spread}, seed {toy.seed} · k={toy.k} · exact (all pairs) · graph convexity "
        f"{toy_built.result.score:.3f}",
    )
    figures.show(
        toy_fig,
        config=figures.figure_config("learn-toy", toy_fig),
        key="ln_plot",
        on_select="rerun",
        selection_mode="points",
    )


def _class_table(result: Any) -> None:
    """Each class's score, points and pairs."""
    st.dataframe(
        [
            {
                "class": str(c),
                "score": round(v.score, 4),
                "points": v.n_points,
                "pairs": v.n_pairs,
            }
            for c, v in result.per_class.items()
        ],
        hide_index=True,
    )


def toy_mode() -> None:
    """The step-through on a 2-D toy: its settings, a pair clicked or picked, the four steps."""
    st.caption(
        "Connect every point to its k nearest neighbours. A class is convex in this graph if the shortest path "
        "between any two of its points stays inside the class. **Click two points of one class on the plot** "
        "to choose a pair, then step through how its score is made."
    )
    left, right = st.columns([1, 3])
    with left:
        toy = _toy_controls()
    with st.spinner(
        "Building the toy's kNN graph and scoring every pair (the first visit also compiles the "
        "shortest-path kernels: about half a minute)..."
    ):
        toy_built = toy_graph(*toy.key)
    labels, result = toy_built.labels, toy_built.result
    _start_new_toy(toy, labels)
    hint = apply_click(labels)
    with left:
        st.divider()
        cls = st.selectbox(
            "Class", list(range(toy.classes)), key="ln_class", format_func=lambda c: f"class {c}"
        )
        start, end = _toy_pair_pickers(cls, labels)
    g = toy_built.graph
    walk = walk_pair(g.indptr, g.indices, g.weights, labels, int(start), int(end))
    step = int(st.session_state["ln_step"])
    with right:
        a, b, c = st.columns(3)
        a.metric("This path's score", f"{walk.score:.2f}")
        b.metric(f"Class {cls} score", f"{result.per_class[cls].score:.3f}")
        c.metric("Graph convexity (all classes)", f"{result.score:.3f}")
        st.markdown(f"**Pair:** start {walk.start} → end {walk.end} (class {cls})")
        if hint:
            st.info(hint, icon=":material/touch_app:")
        step_buttons(step)
        step_text(walk, step, toy.k, cls, result)
        _toy_plot(toy, toy_built, walk, step)
        _class_table(result)


def main() -> None:
    """The page: the 2-D toy or a real layer, stepped through graph -> path -> interior -> score."""
    init_state(DEFAULTS)
    st.session_state.setdefault("ln_step", 0)
    st.title("Learn: what graph convexity means")
    mode = st.segmented_control(
        "Data",
        MODES,
        key="ln_mode",
        help="The 2-D toy, or a few words of a real layer (the feature set chosen on Setup).",
    )
    if mode == "Real layer":
        st.caption(
            "The same four steps on real clips: a few words of one hidden state of the chosen model. "
            "Convexity is computed on these clips alone."
        )
        real_mode()
        return
    toy_mode()


main()
