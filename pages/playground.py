"""Graph convexity on a small 2-D toy: see the kNN graph, a class's shortest paths, and the score."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from core.convexity import graph_convexity
from core.knn import knn_graph
from core.synthetic import toy_clusters


@st.cache_data(show_spinner=False)
def compute(shape: str, classes: int, per_class: int, spread: float, k: int, seed: int):
    """Points, kNN edges and the exhaustive convexity result for one set of toy settings."""
    points, labels = toy_clusters(per_class, classes, spread, shape, seed)
    result = graph_convexity(points, labels, k=k, max_pairs_per_class=None, device="cpu")
    src, dst, _ = knn_graph(torch.from_numpy(points), k).undirected_edges()
    keep = (src < dst).numpy()
    return points, labels, result, np.stack([src.numpy()[keep], dst.numpy()[keep]], axis=1)


def figure(points: np.ndarray, labels: np.ndarray, edges: np.ndarray) -> go.Figure:
    """Scatter of the points coloured by class over the kNN graph's edges."""
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
            line={"width": 0.6, "color": "rgba(128,128,128,0.45)"},
            hoverinfo="skip",
        )
    )
    for c in np.unique(labels):
        mask = labels == c
        fig.add_trace(
            go.Scatter(
                x=points[mask, 0],
                y=points[mask, 1],
                mode="markers",
                name=f"class {c}",
                marker={"size": 8},
            )
        )
    fig.update_layout(
        height=520,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        yaxis={"scaleanchor": "x"},
        legend={"orientation": "h"},
    )
    return fig


st.title("Convexity playground")
st.caption(
    "Graph convexity asks: does the shortest path through the k-nearest-neighbour graph between two "
    "points of a class stay inside the class? 1 means every class is convex in this sense."
)
left, right = st.columns([1, 3])
with left:
    shape = st.radio(
        "Shape",
        ["blobs", "moons"],
        horizontal=True,
        help="Blobs are convex classes; moons interlock, so paths leave the class.",
    )
    classes = st.slider("Classes", 2, 6, 3)
    per_class = st.slider("Points per class", 10, 120, 40, step=10)
    spread = st.slider("Noise", 0.05, 1.0, 0.25, step=0.05)
    k = st.slider("k (neighbours)", 1, 20, 10)
    seed = st.number_input("Seed", 0, 10_000, 0)

points, labels, result, edges = compute(shape, classes, per_class, spread, k, int(seed))
with right:
    st.metric("Graph convexity (exhaustive)", f"{result.score:.3f}")
    st.plotly_chart(figure(points, labels, edges), width="stretch")
    st.dataframe(
        [
            {"class": str(c), "score": round(v.score, 4), "points": v.n_points, "pairs": v.n_pairs}
            for c, v in result.per_class.items()
        ],
        hide_index=True,
    )
