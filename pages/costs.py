"""Ratio charts shared by the Benchmarks and Prune sweep pages: pruned / full bars with min-max whiskers.

A helper module, not a page: the axis comes from :func:`core.runs.views.ratio_axis`, so one wild
repeat cannot squash the other bars; a clipped whisker ends at the axis and is labelled with its value.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from core.runs.views import SweepView, ratio_axis
from pages.figures import integer_axis, style


def ratio_bars(
    names: Sequence[str | int],
    medians: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    reliable: Sequence[bool],
    *,
    horizontal: bool,
    name: str = "pruned / full",
) -> tuple[go.Bar, dict[str, object], list[dict[str, object]]]:
    """The bar trace, its value-axis settings and the annotations of clipped whiskers."""
    axis = ratio_axis(list(medians), list(highs))
    plus = [h - m for h, m in zip(axis.shown_high, medians, strict=True)]
    minus = [m - lo for m, lo in zip(medians, lows, strict=True)]
    error = {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}
    colours = ["#3b82f6" if ok else "#94a3b8" for ok in reliable]
    hover = [
        f"x{m:.2f} (repeats x{lo:.2f}-{h:.2f}){'' if ok else ', unreliable'}"
        for m, lo, h, ok in zip(medians, lows, highs, reliable, strict=True)
    ]
    common = {"marker_color": colours, "name": name, "hovertext": hover, "hoverinfo": "text"}
    if horizontal:
        bar = go.Bar(y=list(names), x=list(medians), orientation="h", error_x=error, **common)
    else:
        bar = go.Bar(x=list(names), y=list(medians), error_y=error, **common)
    notes = []
    for n, h, cut in zip(names, highs, axis.clipped, strict=True):
        if not cut:
            continue
        at = (
            {"y": n, "x": axis.upper, "xanchor": "right"}
            if horizontal
            else {"x": n, "y": axis.upper}
        )
        notes.append(
            {
                **at,
                "text": f"whisker to x{h:.2f} (clipped)",
                "showarrow": False,
                "yanchor": "bottom",
            }
        )
    return bar, {"range": [0, axis.upper]}, notes


def sweep_cost_figure(view: SweepView) -> go.Figure | None:
    """Each point's own side-by-side benchmark: training step pruned / full with its min-max."""
    rows = [r for r in view.rows if r.cost is not None]
    if not rows:
        return None
    bar, axis, notes = ratio_bars(
        [r.prune_point for r in rows],
        [r.cost.ratio for r in rows],
        [r.cost.low for r in rows],
        [r.cost.high for r in rows],
        [r.cost.reliable for r in rows],
        horizontal=False,
        name="training step, pruned / full",
    )
    fig = go.Figure(bar)
    fig.add_hline(y=1.0, line={"dash": "dash", "color": "#ef4444"})
    fig.update_yaxes(**axis)
    integer_axis(fig, [r.prune_point for r in rows])
    for note in notes:
        fig.add_annotation(**note)
    return style(
        fig,
        height=320,
        x_title="prune point p",
        y_title="train step, pruned / full",
        legend=False,
    )
