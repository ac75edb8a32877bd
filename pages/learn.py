"""Learn: graph convexity on a 2-D toy; see the kNN graph, one shortest path inside a class, and the scores."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.geometry.teaching import path_score, shortest_path, undirected_pairs
from pages import common


def figure(
    points: np.ndarray,
    labels: np.ndarray,
    edges: np.ndarray,
    path: list[int] | None,
    ends: list[int],
) -> go.Figure:
    """Scatter of the points by class over the kNN edges, with one shortest path highlighted."""
    fig = go.Figure()
    xs = np.full((len(edges), 3), np.nan)
    ys = np.full((len(edges), 3), np.nan)
    xs[:, :2], ys[:, :2] = points[edges, 0], points[edges, 1]
    fig.add_trace(
        go.Scatter(
            x=xs.ravel(),
            y=ys.ravel(),
            mode="lines",
            name="kNN edges",
            line={"width": 0.7, "color": "rgba(128,128,128,0.45)"},
            hoverinfo="skip",
        )
    )
    ids = np.arange(len(points))
    classes = np.unique(labels)
    for c, colour in zip(classes, common.palette(len(classes)), strict=True):
        mask = labels == c
        fig.add_trace(
            go.Scatter(
                x=points[mask, 0],
                y=points[mask, 1],
                mode="markers",
                name=f"class {c}",
                marker={"size": 9, "color": colour},
                customdata=ids[mask],
                hovertemplate=f"point %{{customdata}} (class {c})<extra></extra>",
            )
        )
    if path is not None:
        fig.add_trace(
            go.Scatter(
                x=points[path, 0],
                y=points[path, 1],
                mode="lines+markers",
                name="shortest path",
                line={"width": 4, "color": "#e11d48"},
                marker={"size": 13, "symbol": "circle-open", "line": {"width": 2.5}},
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=points[ends, 0],
            y=points[ends, 1],
            mode="markers+text",
            name="start / end",
            text=["start", "end"],
            textposition="top center",
            marker={"size": 18, "symbol": "star", "color": "#e11d48"},
            hoverinfo="skip",
        )
    )
    fig.update_yaxes(scaleanchor="x")
    return common.style(fig, height=560)


common.init_state()
st.title("Learn: what graph convexity means")
st.caption(
    "Connect every point to its k nearest neighbours. A class is convex in this graph if the shortest path "
    "between any two of its points stays inside the class. A path's score is the share of its interior "
    "points in the class; a class's score is the mean over all its ordered pairs; the layer score is the "
    "mean over classes. Pick two points of a class and see one such path."
)
left, right = st.columns([1, 3])
with left:
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

points, labels, result, (indptr, nbr, wts) = common.toy_graph(
    shape, classes, per_class, spread, k, int(seed)
)
with left:
    st.divider()
    cls = st.selectbox(
        "Class", list(range(classes)), key="ln_class", format_func=lambda c: f"class {c}"
    )
    members = np.flatnonzero(labels == cls).tolist()
    start = st.selectbox("Start point", members, index=0, key=f"ln_start_{cls}_{per_class}")
    end = st.selectbox(
        "End point", members, index=len(members) - 1, key=f"ln_end_{cls}_{per_class}"
    )

path = shortest_path(indptr, nbr, wts, int(start), int(end)) if start != end else [int(start)]
score = path_score(path, labels) if start != end else 1.0
with right:
    a, b, c = st.columns(3)
    a.metric("This path's score", f"{score:.2f}")
    b.metric(f"Class {cls} score", f"{result.per_class[cls].score:.3f}")
    c.metric("Graph convexity (all classes)", f"{result.score:.3f}")
    if path is None:
        st.warning(
            "The end point is unreachable from the start in this kNN graph: the pair scores 0."
        )
    elif len(path) > 2:
        inside = sum(labels[v] == cls for v in path[1:-1])
        st.caption(
            f"Path {' → '.join(map(str, path))}: {inside} of {len(path) - 2} interior points are in "
            f"class {cls}."
        )
    else:
        st.caption("The two points are neighbours (or the same point): no interior point, score 1.")
    common.show(figure(points, labels, undirected_pairs(indptr, nbr), path, [int(start), int(end)]))
    st.dataframe(
        [
            {"class": str(c), "score": round(v.score, 4), "points": v.n_points, "pairs": v.n_pairs}
            for c, v in result.per_class.items()
        ],
        hide_index=True,
    )
