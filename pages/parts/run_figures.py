"""A run's charts on the Prune & fine-tune page: its loss and selection accuracy while it trains, and the
convexity of its encoder after fine-tuning beside the pretrained one.

A helper module, not a page. Counted axes (optimizer steps, epochs, hidden states) show whole numbers
only; the legend sits under the plots, clear of the panels' titles.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.runs import RunMetrics
from core.training import ConvexityComparison
from pages.parts.figures import LABEL_COLOURS, LAYER_AXIS, integer_axis, style

LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.28, "xanchor": "left", "x": 0}


def metric_figure(metrics: RunMetrics, split: str) -> go.Figure:
    """Training loss by step and the selection split's accuracy by epoch, side by side."""
    train, evals = metrics.train, metrics.evals
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("loss", f"{split} accuracy (selection, every epoch)")
    )
    fig.add_trace(
        go.Scatter(
            x=[r.step for r in train],
            y=[r.loss for r in train],
            mode="lines+markers",
            name="train loss",
            line={"color": "#3b82f6"},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[r.step for r in evals],
            y=[r.loss for r in evals],
            mode="markers",
            name=f"{split} loss",
            marker={"color": "#f97316", "size": 10},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[r.epoch for r in evals],
            y=[r.accuracy for r in evals],
            mode="lines+markers",
            name=f"{split} accuracy (selection)",
            line={"color": "#10b981"},
            marker={"size": 10},
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="optimizer step", row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=1, col=2)
    integer_axis(fig, [r.step for r in (*train, *evals)], row=1, col=1)
    integer_axis(fig, [r.epoch for r in evals] or [1], row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    style(fig, height=400)
    fig.update_layout(legend=LEGEND_BELOW, margin={"b": 90})
    return fig


def has_curves(conv: ConvexityComparison) -> bool:
    """Whether the comparison holds any curve with points to draw."""
    return any(c.layers for c in (*conv.pretrained.values(), *conv.finetuned.values()))


def convexity_figure(conv: ConvexityComparison) -> go.Figure:
    """Pretrained (dashed) vs fine-tuned (solid) convexity of both label sets."""
    fig = go.Figure()
    for which, dash in (("pretrained", "dash"), ("finetuned", "solid")):
        for name, curve in getattr(conv, which).items():
            fig.add_trace(
                go.Scatter(
                    x=list(curve.layers),
                    y=list(curve.scores),
                    mode="lines+markers",
                    name=f"{name} ({which})",
                    line={"color": LABEL_COLOURS.get(name), "dash": dash, "width": 3},
                )
            )
    fig.update_yaxes(range=[0, 1.05])
    integer_axis(fig)
    return style(fig, height=380, x_title=LAYER_AXIS, y_title="graph convexity")
