"""Ratio charts shared by the Benchmarks and Prune sweep pages: pruned / full bars with min-max whiskers.

A helper module, not a page: the axis comes from :func:`core.runs.views.ratio_axis`, so one wild
repeat cannot squash the other bars; a clipped whisker ends at the axis and is labelled with its value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from core.data import label_set
from core.geometry import PrunePointChoice, choose_prune_points
from core.runs import SweepView, ratio_axis
from pages.parts.figures import integer_axis, style

BAR_WIDTH = 0.35  # in prune points: a cost bar covers its own point only


@dataclass(frozen=True)
class RatioBars:
    """The bar trace, its value-axis settings and the annotations of clipped whiskers."""

    bar: go.Bar
    axis: dict[str, object]
    notes: list[dict[str, object]]


def ratio_bars(
    names: Sequence[str | int],
    medians: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    reliable: Sequence[bool],
    *,
    horizontal: bool,
    name: str = "pruned / full",
) -> RatioBars:
    """pruned / full bars with min-max whiskers on an axis one wild repeat cannot squash."""
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
    return RatioBars(bar, {"range": [0, axis.upper]}, notes)


def sweep_cost_figure(view: SweepView) -> go.Figure | None:
    """Each point's own side-by-side benchmark: training step pruned / full with its min-max.

    Bars only where a benchmark measured the point, each a fraction of one layer wide, on an integer
    axis over every swept point, so an unmeasured point shows as a gap."""
    rows = [r for r in view.top_rows if r.cost is not None]  # a plan's cost: in the table
    if not rows:
        return None
    bars = ratio_bars(
        [r.prune_point for r in rows],
        [r.cost.ratio for r in rows],
        [r.cost.low for r in rows],
        [r.cost.high for r in rows],
        [r.cost.reliable for r in rows],
        horizontal=False,
        name="training step, pruned / full",
    )
    bars.bar.width = BAR_WIDTH  # a bar stands on its own point only, never over a neighbour
    fig = go.Figure(bars.bar)
    fig.add_hline(y=1.0, line={"dash": "dash", "color": "#ef4444"})
    fig.update_yaxes(**bars.axis)
    integer_axis(fig, [r.prune_point for r in view.top_rows])  # every swept point: gaps unmeasured
    for note in bars.notes:
        fig.add_annotation(**note)
    return style(
        fig,
        height=320,
        x_title="prune point p",
        y_title="train step, pruned / full",
        legend=False,
    )


def sweep_result_figure(view: SweepView) -> go.Figure:
    """A sweep's outcome over its pretrained convexity: test accuracy (the headline) and validation
    accuracy (selection) per prune point, the task's and the other labels' curves, the suggestion."""
    relevant = label_set(view.task)
    fig = go.Figure()
    other = "speaker" if relevant == "word" else "word"
    styles = {relevant: ("#2563eb", "solid"), other: ("#94a3b8", "dot")}
    for name, (colour, dash) in styles.items():
        curve = view.pretrained.get(name)
        if curve is not None:
            fig.add_trace(
                go.Scatter(
                    x=list(curve.layers),
                    y=list(curve.scores),
                    error_y={"type": "data", "array": list(curve.sems)},
                    mode="lines+markers",
                    name=f"{name} convexity (pretrained{', task' if name == relevant else ''})",
                    line={"color": colour, "dash": dash, "width": 3},
                )
            )
    top = view.top_rows
    xs = [r.prune_point for r in top]
    head = [r.headline for r in top]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[h.accuracy for h in head],
            mode="lines+markers",
            name="fine-tuned test accuracy",
            line={"color": "#10b981", "width": 3},
            marker={"size": 13, "symbol": "diamond"},
            hovertext=[h.text() for h in head],
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[r.validation.accuracy for r in top],
            mode="markers",
            name="validation accuracy (selection)",
            marker={"size": 8, "color": "#10b981", "symbol": "circle-open"},
            hovertext=[r.validation.text() for r in top],
            hoverinfo="text",
        )
    )
    if view.plan_rows:  # at the number of layers each keeps, apart from the top-p line
        fig.add_trace(
            go.Scatter(
                x=[r.prune_point for r in view.plan_rows],
                y=[r.headline.accuracy for r in view.plan_rows],
                mode="markers+text",
                text=[r.plan for r in view.plan_rows],
                textposition="bottom center",
                name="fine-tuned test accuracy, plan (x: layers kept)",
                marker={"size": 13, "color": "#f59e0b", "symbol": "star"},
                hovertext=[f"{r.plan}: {r.headline.text()}" for r in view.plan_rows],
                hoverinfo="text",
            )
        )
    choice = _rules(view)
    if choice is not None:
        fig.add_vline(
            x=choice.threshold_point,
            line={"color": "#ef4444", "dash": "dash", "width": 2},
            annotation_text=f"threshold rule p = {choice.threshold_point}",
            annotation_position="top left",
        )
        fig.add_vline(
            x=choice.local_peak,
            line={"color": "#8b5cf6", "dash": "dashdot", "width": 2},
            annotation_text=f"local peak p = {choice.local_peak}",
            annotation_position="bottom right",
        )
    fig.update_yaxes(range=[0, 1.05], title_text="convexity / accuracy")
    integer_axis(fig)
    return style(fig, height=460, x_title="prune point p = hidden state")


def _rules(view: SweepView) -> PrunePointChoice | None:
    """Both prune-point rules on the sweep's pretrained curve of its task (None without one)."""
    curve = view.pretrained.get(label_set(view.task))
    if curve is None:
        return None
    return choose_prune_points(list(curve.scores), list(curve.sems) or None, view.fraction or 0.95)


def sweep_rule_text(view: SweepView) -> str | None:
    """What the two rules chose on the sweep's curve, in words (None without a curve)."""
    choice = _rules(view)
    return None if choice is None else choice.explanation(f"{label_set(view.task)} labels")
