"""The Plans page's figure: the layer-similarity map with the detected blocks drawn on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from core.results import add_caption


def similarity_figure(
    table: Any, caption: Sequence[str], dropped: Sequence[int] = (), height: int = 420
) -> go.Figure:
    """Heatmap of the similarity over hidden states 0..L; each block outlined with its range, minimum
    similarity and how often it reappeared in half-samples; the picked plan's dropped layers marked."""
    values = table.matrix()
    n = values.shape[0]
    states = list(range(n))
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=states,
            y=states,
            colorscale="Viridis",
            zmin=float(np.nanmin(values)) if np.isfinite(values).any() else 0.0,
            zmax=1.0,
            colorbar={"title": table.similarity.replace("_", " ")},
            hovertemplate="layer %{y} vs %{x}: %{z:.3f}<extra></extra>",
        )
    )
    stability = table.stability
    for block in table.redundancy.blocks:
        text = f"{block.first}-{block.last} (min {block.min_similarity:.2f})"
        row = None if stability is None else stability.of(block)
        if row is not None:
            text += f"<br>in {row.exact:.0%} of {stability.n_resamples} halves"
        fig.add_shape(
            type="rect",
            x0=block.first - 0.5,
            x1=block.last + 0.5,
            y0=block.first - 0.5,
            y1=block.last + 0.5,
            line={"color": "#f97316", "width": 3},
        )
        fig.add_annotation(
            x=block.last + 0.5,
            y=block.first - 0.5,
            text=text,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"color": "#f97316", "size": 12},
            bgcolor="rgba(255,255,255,0.8)",
        )
    for layer in dropped:
        fig.add_shape(
            type="line",
            x0=layer,
            x1=layer,
            y0=-0.5,
            y1=n - 0.5,
            line={"color": "#ef4444", "width": 2, "dash": "dot"},
        )
    fig.update_layout(
        height=height,
        margin={"l": 40, "r": 20, "t": 30, "b": 40},
        xaxis={"title": "hidden state (0 = front-end)", "dtick": 1},
        yaxis={"title": "hidden state", "dtick": 1, "autorange": "reversed"},
        title={
            "text": f"{table.similarity.replace('_', ' ')}; blocks: every pair >= {table.redundancy.threshold:g}",
            "font": {"size": 14},
        },
    )
    return add_caption(fig, list(caption))
