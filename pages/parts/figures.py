"""Every figure's look: one palette, one curve plot, integer axes, provenance captions, showing and images."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.results import add_caption, image_config

LAYER_AXIS = "hidden state (0 = input to layer 1)"
# One colour per label set on every page (word blue, speaker pink).
LABEL_COLOURS = {"word": "#2563eb", "speaker": "#db2777"}


def palette(n: int) -> list[str]:
    """Distinct class colours of mid lightness, readable on light and dark backgrounds."""
    import plotly.colors as pc

    if n <= 10:
        return list(pc.qualitative.Plotly[:n])
    # evenly spaced hues, alternating lightness so neighbours in hue still differ
    return [f"hsl({round(360 * i / n)},70%,{50 if i % 2 == 0 else 62}%)" for i in range(n)]


def integer_axis(
    fig: go.Figure,
    values: Sequence[float] | None = None,
    *,
    axis: str = "x",
    pad: float = 0.3,
    **where: int,
) -> go.Figure:
    """Make a counted axis (hidden states, epochs, steps, layers) show whole numbers only.

    Ticks every 1 (or every whole ``n`` when there are more than 24), formatted as integers, and the range
    fitted to the data (``pad`` either side), so no 0.5 ticks and no tick past the last value. ``values``
    default to every trace's; ``where`` (``row=1, col=2``) picks one subplot's axis.
    """
    if values is None:
        values = [v for trace in fig.data for v in (getattr(trace, axis, None) or ())]
    data = np.asarray([v for v in values if v is not None], dtype=float)
    data = data[np.isfinite(data)]
    if not data.size:
        return fig
    lo, hi = math.floor(data.min()), math.ceil(data.max())
    step = max(1, math.ceil((hi - lo) / 24))
    settings = {
        "tickmode": "linear",
        "tick0": lo,
        "dtick": step,
        "tickformat": "d",
        "range": [lo - pad, hi + pad],
    }
    (fig.update_xaxes if axis == "x" else fig.update_yaxes)(**settings, **where)
    return fig


def style(
    fig: go.Figure,
    *,
    height: int = 460,
    x_title: str | None = None,
    y_title: str | None = None,
    legend: bool = True,
) -> go.Figure:
    """One look for every figure: readable fonts, tight margins, theme-neutral (works light and dark).

    The legend sits above the plot and may take several rows: margins grow to hold it (never clipped).
    """
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10, "autoexpand": True},
        font={"size": 14},
        hoverlabel={"font_size": 13},
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
    )
    if x_title is not None:
        fig.update_xaxes(title_text=x_title, automargin=True)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title, automargin=True)
    return fig


def fixed_legend(fig: go.Figure, short: int = 36) -> go.Figure:
    """Legend entries of a fixed share of the width (two per row, or one when a name is long).

    Entry widths measured from text overlap when an image is drawn in another font than the page
    (the camera PNG); fixed shares never do.
    """
    longest = max((len(str(t.name or "")) for t in fig.data), default=0)
    fig.update_layout(
        legend={"entrywidthmode": "fraction", "entrywidth": 0.5 if longest <= short else 1.0}
    )
    return fig


@dataclass(frozen=True)
class Curve:
    """One line of a curve plot: points, optional error bars, per-point hover text and marker symbols."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    err: Sequence[float] | None = None
    colour: str | None = None
    dash: str | None = None
    hover: Sequence[str] | None = None
    symbols: Sequence[str] | None = None
    width: float = 3


def curve_figure(
    curves: Sequence[Curve],
    *,
    height: int = 380,
    x_title: str = LAYER_AXIS,
    y_title: str = "graph convexity",
    y_range: tuple[float, float] | None = (0, 1.05),
    integer_x: bool = True,
    caption: Sequence[str] = (),
) -> go.Figure:
    """The dashboard's curve plot (convexity and criteria per layer): lines + markers, error bars, caption."""
    fig = go.Figure()
    for c in curves:
        err = None if c.err is None else list(c.err)
        fig.add_trace(
            go.Scatter(
                x=list(c.x),
                y=list(c.y),
                mode="lines+markers",
                name=c.name,
                error_y={
                    "type": "data",
                    "array": err,
                    "visible": err is not None,
                    "thickness": 1.5,
                },
                line={"color": c.colour, "width": c.width, "dash": c.dash},
                marker={"size": 9, **({"symbol": list(c.symbols)} if c.symbols else {})},
                hovertext=None if c.hover is None else list(c.hover),
                hoverinfo="text" if c.hover is not None else None,
            )
        )
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    style(fig, height=height, x_title=x_title, y_title=y_title)
    fixed_legend(fig)
    if integer_x:
        integer_axis(fig, [x for c in curves for x in c.x])
    return add_caption(fig, caption)


def figure_config(filename: str, fig: go.Figure | None = None) -> dict[str, Any]:
    """Plotly config: the modebar camera downloads ``filename`` as PNG or SVG (browser-side, offline)."""
    height = None if fig is None or fig.layout.height is None else int(fig.layout.height)
    return image_config(filename, st.session_state.get("img_format") or "png", height=height)


def image_format_picker() -> None:
    """Choose what the figures' camera button (top right of each plot) downloads: PNG or SVG."""
    st.segmented_control(
        "Figure image (camera button)",
        ["png", "svg"],
        key="img_format",
        help="The camera icon at the top right of every figure downloads it, caption included.",
    )


def show(fig: go.Figure, **kwargs: Any) -> Any:
    """st.plotly_chart with the dashboard's defaults (Streamlit theme, full width)."""
    return st.plotly_chart(fig, theme="streamlit", width="stretch", **kwargs)


GREYED = {"marker": {"opacity": 0.12, "color": "#9ca3af"}}  # points outside a selection
# Above this many points a scatter draws with WebGL (plotly express's "auto" threshold): SVG redraws
# of ~10,000 markers take seconds on every click, WebGL a fraction of that.
WEBGL_FROM = 1_000


def points_trace(n_points: int, **props: Any) -> go.Scatter | go.Scattergl:
    """A marker trace drawn as SVG, or with WebGL once the plot holds more than ``WEBGL_FROM`` points."""
    return go.Scattergl(**props) if n_points > WEBGL_FROM else go.Scatter(**props)


def _selected_in(mask: np.ndarray, selected: np.ndarray | None) -> list[int] | None:
    """Positions within a trace (``mask`` of all points) of the selected points; None: no selection."""
    if selected is None:
        return None
    return np.flatnonzero(selected[mask]).tolist()


def class_traces(
    fig: go.Figure,
    xy: np.ndarray,
    labels: np.ndarray,
    *,
    customdata: np.ndarray | None = None,
    hovertemplate: str | None = None,
    selected: np.ndarray | None = None,
) -> go.Figure:
    """One marker trace per class of ``labels`` on the 2-D points ``xy`` (classes sorted, one palette);
    ``selected`` (bool per point) keeps those points in colour and greys the rest."""
    names = sorted(set(labels.tolist()))
    for cls, colour in zip(names, palette(len(names)), strict=True):
        mask = labels == cls
        fig.add_trace(
            points_trace(
                len(xy),
                x=xy[mask, 0],
                y=xy[mask, 1],
                mode="markers",
                name=str(cls),
                marker={"size": 7, "opacity": 0.85, "color": colour},
                customdata=None if customdata is None else customdata[mask],
                hovertemplate=hovertemplate,
                selectedpoints=_selected_in(mask, selected),
                unselected=GREYED,
            )
        )
    return fig


def value_trace(
    fig: go.Figure,
    xy: np.ndarray,
    values: np.ndarray,
    name: str,
    *,
    customdata: np.ndarray | None = None,
    hovertemplate: str = "",
    reverse: bool = False,
    selected: np.ndarray | None = None,
) -> go.Figure:
    """One marker trace of the 2-D points ``xy`` coloured by a per-point value (NaN drawn as 0), with a
    colour bar; ``selected`` as in :func:`class_traces`."""
    fig.add_trace(
        points_trace(
            len(xy),
            x=xy[:, 0],
            y=xy[:, 1],
            mode="markers",
            name=name,
            marker={
                "size": 7,
                "color": np.nan_to_num(values, nan=0.0),
                "colorscale": "Inferno" if reverse else "Viridis",
                "reversescale": reverse,
                "colorbar": {"title": {"text": name}},
                "showscale": True,
            },
            customdata=customdata,
            text=[f"{v:.3f}" for v in values],
            hovertemplate=hovertemplate.replace("<extra>", f"<br>{name} %{{text}}<extra>"),
            showlegend=False,
            selectedpoints=_selected_in(np.ones(len(xy), dtype=bool), selected),
            unselected=GREYED,
        )
    )
    return fig


def layout_axes(fig: go.Figure, x_range: Sequence[float], y_range: Sequence[float]) -> go.Figure:
    """Unlabelled, equally scaled UMAP axes on fixed ranges (the same for every layout a slider shows)."""
    fig.update_xaxes(range=list(x_range), showticklabels=False, zeroline=False, title_text="UMAP 1")
    fig.update_yaxes(
        range=list(y_range),
        showticklabels=False,
        zeroline=False,
        title_text="UMAP 2",
        scaleanchor="x",
    )
    return fig


def layer_heatmaps(
    panels: dict[str, np.ndarray],
    x: Sequence[Any],
    layers: Sequence[int],
    *,
    x_title: str,
    categorical_x: bool = False,
) -> go.Figure:
    """Convexity (colour, 0-1) per hidden state (rows) and column ``x``, one panel per label set
    (``panels``: title -> (columns x hidden states) scores)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.12
    )
    for col, (title, matrix) in enumerate(panels.items(), start=1):
        fig.add_trace(
            go.Heatmap(
                x=list(x),
                y=list(layers),
                z=np.asarray(matrix).T,
                zmin=0,
                zmax=1,
                colorscale="Viridis",
                showscale=col == len(panels),
                colorbar={"title": "convexity"},
                hovertemplate=f"%{{x}}, hidden state %{{y}}: %{{z:.3f}}<extra>{title}</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(
            title_text=x_title, type="category" if categorical_x else None, row=1, col=col
        )
        fig.update_yaxes(title_text=LAYER_AXIS if col == 1 else None, row=1, col=col)
        integer_axis(fig, list(layers), axis="y", pad=0.5, row=1, col=col)
    return style(fig, height=340)


def add_band(
    fig: go.Figure,
    name: str,
    x: Sequence[float],
    centre: np.ndarray,
    half_width: np.ndarray,
    colour: str | None,
) -> go.Figure:
    """A dashed centre line with a translucent band of +- ``half_width`` (e.g. a chance level)."""
    xs = list(x)
    lo, hi = list(centre - half_width), list(centre + half_width)
    fig.add_trace(
        go.Scatter(
            x=xs + xs[::-1],
            y=hi + lo[::-1],
            fill="toself",
            fillcolor=colour,
            opacity=0.15,
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            name=f"{name} band",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=list(centre),
            mode="lines",
            name=name,
            line={"color": colour, "dash": "dash", "width": 1.5},
            hovertext=[
                f"{name}<br>hidden state {a}<br>{c:.3f} ± {h:.3f} (2 sd)"
                for a, c, h in zip(xs, centre, half_width, strict=True)
            ],
            hoverinfo="text",
        )
    )
    return fig


# Convexity page figures: the curve with its bands and prune points, the class heatmap, criteria.

PLOT_HEIGHT = 230  # px of a curve plot's own area, whatever legend rows and caption lines add
LEGEND_WIDTH = 700  # px assumed when counting legend rows of measured-width entries


def fit_height(fig: go.Figure, plot_height: int = PLOT_HEIGHT) -> go.Figure:
    """Size ``fig`` so its plot area keeps ``plot_height`` px: the top margin holds every legend row
    (never over a title), the bottom one the axis title and caption; the figure grows instead."""
    from core.results import top_margin

    top = top_margin(fig, LEGEND_WIDTH, title=bool(fig.layout.title.text))
    has_caption = any(a.name == "provenance" for a in fig.layout.annotations)
    bottom = int(fig.layout.margin.b or 0) if has_caption else 60  # ticks and axis title
    fig.update_layout(height=plot_height + top + bottom, margin={"t": top, "b": bottom})
    return fig


def convexity_figure(
    curves: Sequence[Curve],
    *,
    bands: Sequence[tuple[str, Sequence[int], np.ndarray, np.ndarray, str | None]] = (),
    prune_points: dict[str, tuple[int, str | None]] | None = None,
    note: str | None = None,
    note_x: float | None = None,
    caption: Sequence[str] = (),
    plot_height: int = PLOT_HEIGHT,
) -> go.Figure:
    """Convexity per layer: the curves, dashed chance bands (name, layers, centre, half-width,
    colour), prune points as dashed verticals named in the legend, an optional note at the bottom
    right; the plot area keeps ``plot_height`` px however many entries the legend gets."""
    fig = curve_figure(curves)
    for name, x, centre, half, colour in bands:
        add_band(fig, name, x, np.asarray(centre), np.asarray(half), colour)
    for name, (point, colour) in (prune_points or {}).items():
        fig.add_trace(
            go.Scatter(
                x=[point, point],
                y=[0, 1.05],
                mode="lines",
                name=f"prune point ({name}): p = {point}",
                line={"color": colour, "dash": "dash", "width": 2},
                hoverinfo="name",
            )
        )
    fixed_legend(fig)
    integer_axis(fig, [x for c in curves for x in c.x])
    if note:
        fig.add_annotation(
            x=note_x,
            y=0.02,
            yref="paper",
            text=note,
            showarrow=False,
            yanchor="bottom",
            xanchor="right",
        )
    add_caption(fig, caption)
    return fit_height(fig, plot_height)


CLASS_ROW = 18  # px per class row of the class heatmap: every class keeps a readable label


def class_heatmap(table: Any, caption: Sequence[str] = ()) -> go.Figure:
    """Per-class convexity (``core.results.convexity_view.ClassTable``): one labelled row per class,
    in the table's order from the top, each class's own SE on hover when sampled."""
    heat = go.Figure(
        go.Heatmap(
            z=table.z(),
            x=list(table.layers),
            y=list(table.classes),
            customdata=table.se(),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar={"title": {"text": "convexity"}},
            hovertemplate=f"{table.label_set} %{{y}}<br>hidden state %{{x}}<br>convexity %{{z:.3f}}"
            + ("" if table.exact else " ± %{customdata:.3f} (this class's SE)")
            + "<extra></extra>",
        )
    )
    style(heat, x_title=LAYER_AXIS, y_title=table.label_set, legend=False)
    heat.update_yaxes(
        type="category",
        tickmode="array",
        tickvals=list(table.classes),
        ticktext=list(table.classes),
        autorange="reversed",  # the first class at the top
        tickfont={"size": 11},
    )
    integer_axis(heat, list(table.layers), pad=0.5)
    add_caption(heat, caption)
    return fit_height(heat, max(240, CLASS_ROW * len(table.classes)))


def criteria_matrix(
    name: str, values: np.ndarray, layers: Sequence[int], caption: Sequence[str] = ()
) -> go.Figure:
    """A layer x layer criterion (CKA, ...) as a square-ish heatmap with integer axes."""
    mat = go.Figure(
        go.Heatmap(
            z=np.asarray(values, dtype=float),
            x=list(layers),
            y=list(layers),
            colorscale="Viridis",
            colorbar={"title": {"text": name.replace("_", " ")}},
        )
    )
    style(mat, x_title=LAYER_AXIS, y_title="hidden state", legend=False)
    integer_axis(mat, list(layers), pad=0.5)
    integer_axis(mat, list(layers), axis="y", pad=0.5)
    add_caption(mat, caption, width=60)
    return fit_height(mat, 300)
