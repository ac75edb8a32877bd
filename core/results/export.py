"""Exports that carry their provenance and read correctly on their own: figures, CSV and JSON.

Figures: caption lines under the plot name model, data and settings, wrapped to the plot's width and never
cut (so a downloaded PNG/SVG says what it shows); standalone HTML gets a fixed size, room around the plot and ``automargin`` axes with a title
standoff, so tick labels and axis titles are neither clipped nor overlapping. PNG and SVG come from
plotly.js in the browser (the modebar camera button, ``toImageButtonOptions``): nothing server-side, no
internet.
"""

from __future__ import annotations

import html
import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from core.results.provenance import Provenance

CAPTION_SHIFT = (
    66  # px below the plot area: clears tick labels (~20 px) and the axis title (~25 px)
)
CAPTION_LINE = 15  # px per caption line at the caption's 11 px font
# Characters per caption line: ~6 px each at 11 px, so a line fits a 520 px wide plot (a 3/4-width column
# at 1024 px); longer provenance is wrapped onto more lines (never cut off).
CAPTION_CHARS = 85
IMAGE_WIDTH = 1200  # px of a camera-button image (PNG x2): the caption wraps for narrower plots too
LEGEND_ROW = 25  # px per row of a horizontal legend at a 14 px font
TITLE_SPACE = 44  # px a figure title takes above the legend
STATISTICS_COLUMNS = (
    "chance",
    "chance_sd",
    "normalised",
    "interval_low",
    "interval_high",
    "population_se",
    "interval_of",  # in words: what interval_low..interval_high is an interval of
    "other_speakers_half_score",  # speaker labels: the mean score at half the speakers
    "other_speakers_half_low",  # and its interval (other sets of half as many speakers)
    "other_speakers_half_high",
)


def captions(provenance: Sequence[Provenance]) -> list[str]:
    """One caption line per distinct provenance (model, data, settings, engine, code, date)."""
    return list(dict.fromkeys(p.caption() for p in provenance))


def wrap_caption(lines: Sequence[str], width: int = CAPTION_CHARS) -> list[str]:
    """Caption lines broken at their " · " separators (else at spaces) into lines of <= ``width`` chars."""
    out: list[str] = []
    for line in lines:
        current = ""
        for part in str(line).split(" · "):
            sep = " · "
            for piece in textwrap.wrap(part, width - 2, break_on_hyphens=False) or [""]:
                joined = f"{current}{sep}{piece}" if current else piece
                if current and len(joined) > width - 2:  # room for a trailing " ·"
                    out.append(current + (" ·" if sep == " · " else ""))
                    current = piece
                else:
                    current = joined
                sep = " "  # the rest of a part too long for one line
        out.append(current)
    return out


def caption_text(fig: go.Figure) -> str:
    """The provenance caption of ``fig`` as plain text (its wrapped lines re-joined), "" if none."""
    for a in fig.layout.annotations:
        if a.name == "provenance":
            return " ".join(str(a.text).split("<br>"))
    return ""


def add_caption(
    fig: go.Figure, lines: Sequence[str], *, size: int = 11, width: int = CAPTION_CHARS
) -> go.Figure:
    """Put caption line(s) under the plot area (in place), wrapped, with a bottom margin that holds them."""
    if not lines:
        return fig
    fig.layout.annotations = [a for a in fig.layout.annotations if a.name != "provenance"]
    wrapped = wrap_caption(lines, width)
    fig.add_annotation(
        text="<br>".join(wrapped),
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        xanchor="left",
        yanchor="top",
        yshift=-CAPTION_SHIFT,
        showarrow=False,
        align="left",
        font={"size": size, "color": "#6b7280"},
        name="provenance",
    )
    margin = fig.layout.margin
    bottom = max(int(margin.b or 0), CAPTION_SHIFT + CAPTION_LINE * len(wrapped) + 10)
    fig.update_layout(margin={"b": bottom})
    return fig


def image_config(
    filename: str, fmt: str = "png", *, width: int = IMAGE_WIDTH, height: int | None = None
) -> dict[str, Any]:
    """Plotly config whose modebar camera button downloads ``filename.png`` or ``.svg`` client-side.

    The image is ``width`` px wide (``height``: the figure's own height when None), so what is laid out
    for a narrow column still has room for its legend and wrapped caption.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"image format must be png or svg, got {fmt!r}")
    options: dict[str, Any] = {
        "format": fmt,
        "filename": filename,
        "scale": 2 if fmt == "png" else 1,
        "width": width,
    }
    if height is not None:
        options["height"] = height
    return {"displaylogo": False, "toImageButtonOptions": options}


def legend_rows(fig: go.Figure, width: int) -> int:
    """Rows a horizontal legend of ``fig`` takes at ``width`` px (fixed-fraction entries, else an
    estimate of ~8 px per character plus the symbol)."""
    entries = [t for t in fig.data if t.showlegend is not False and t.name]
    if not entries or fig.layout.showlegend is False:
        return 0
    legend = fig.layout.legend
    if legend.entrywidthmode == "fraction" and legend.entrywidth:
        per_row = max(1, int(round(1 / float(legend.entrywidth))))
        return math.ceil(len(entries) / per_row)
    rows, used = 1, 0
    for t in entries:
        need = 40 + 8 * len(str(t.name))
        if used and used + need > width:
            rows, used = rows + 1, 0
        used += need
    return rows


def top_margin(fig: go.Figure, width: int, title: bool) -> int:
    """Px above the plot area that holds the title (if any) and every row of the legend."""
    return 24 + (TITLE_SPACE if title else 0) + LEGEND_ROW * legend_rows(fig, width)


def standalone(
    fig: go.Figure,
    lines: Sequence[str] = (),
    *,
    width: int = 1000,
    plot_height: int = 420,
    title: str | None = None,
) -> go.Figure:
    """A copy of ``fig`` laid out to stand alone: fixed width, a plot area of ``plot_height`` px
    whatever the legend and caption add (the figure grows instead), the title above the legend."""
    out = go.Figure(fig)
    out.layout.annotations = [a for a in out.layout.annotations if a.name != "provenance"]
    top = top_margin(out, width - 120, bool(title))
    out.update_layout(
        width=width,
        autosize=False,
        template="plotly_white",
        margin={"l": 80, "r": 40, "t": top, "b": CAPTION_SHIFT, "autoexpand": True},
        font={"size": 14},
    )
    if title:
        out.update_layout(
            title={
                "text": html.escape(title),
                "x": 0,
                "xref": "container",
                "xanchor": "left",
                "y": 1,
                "yref": "container",
                "yanchor": "top",
                "pad": {"t": 12, "l": 16},
            }
        )
    out.update_xaxes(automargin=True, title_standoff=12)
    out.update_yaxes(automargin=True, title_standoff=12)
    add_caption(out, lines, width=max(CAPTION_CHARS, (width - 120) // 6))
    out.update_layout(height=plot_height + top + int(out.layout.margin.b or 0))
    return out


def figure_html(
    fig: go.Figure, lines: Sequence[str], filename: str, title: str | None = None
) -> str:
    """A self-contained HTML page of ``fig`` (plotly.js inlined: opens offline) with its caption,
    titled in the page (``<title>``) and on the figure."""
    out = standalone(fig, lines, title=title)
    page = out.to_html(
        include_plotlyjs=True, full_html=True, config=image_config(filename, width=out.layout.width)
    )
    name = html.escape(title or filename)
    return page.replace("<head>", f"<head><title>{name}</title>", 1)


def csv_with_provenance(csv_text: str, provenance: Sequence[Provenance]) -> str:
    """CSV preceded by ``# provenance: {json}`` comment lines (``pandas.read_csv(..., comment='#')``)."""
    head = "".join(f"# provenance: {json.dumps(p.to_dict(), sort_keys=True)}\n" for p in provenance)
    return head + csv_text


def json_with_provenance(
    payload: Mapping[str, Any], provenance: Sequence[Provenance]
) -> dict[str, Any]:
    """``payload`` with a ``provenance`` list added."""
    return {**payload, "provenance": [p.to_dict() for p in provenance]}


def statistics_columns(stats: Any | None, name: str, layer_index: int) -> dict[str, Any]:
    """Chance and population-interval cells of one layer row of label set ``name`` (empty without
    statistics, or for a part that was not computed)."""
    if stats is None or name not in stats.sets:
        return {}
    s = stats.sets[name]
    out: dict[str, Any] = {}
    if s.chance is not None:
        out |= {
            "chance": s.chance.mean[layer_index],
            "chance_sd": s.chance.std[layer_index],
            "normalised": float(s.normalised()[layer_index]),
        }
    if s.interval is not None:
        out |= {
            "interval_low": s.interval.low[layer_index],
            "interval_high": s.interval.high[layer_index],
            "population_se": s.interval.se[layer_index],
            "interval_of": s.interval.question or s.interval.scheme,
        }
    if s.other_speakers is not None:
        half = s.other_speakers
        out |= {
            "other_speakers_half_score": half.score[layer_index],
            "other_speakers_half_low": half.low[layer_index],
            "other_speakers_half_high": half.high[layer_index],
        }
    return out


def curve_rows(curves: Mapping[str, Any], stats: Any | None = None) -> list[dict[str, Any]]:
    """One row per (label set, layer, class) and per (label set, layer); with statistics, every row
    has the chance and interval columns (filled on the layer rows, where they are defined)."""
    rows = []
    for name, curve in curves.items():
        layers = list(curve.layers)
        for row in curve.to_records():
            if stats is not None:
                row |= dict.fromkeys(STATISTICS_COLUMNS)
                if row["class"] is None:
                    row |= statistics_columns(stats, name, layers.index(row["layer"]))
            rows.append(row)
    return rows


def convexity_document(
    title: str,
    features: Mapping[str, Any],
    settings: Mapping[str, Any],
    curves: Mapping[str, Any],
    provenance: Provenance,
    *,
    prune_points: Mapping[str, int],
    stats: Any | None = None,
    stats_provenance: Provenance | None = None,
) -> dict[str, Any]:
    """The JSON export of a convexity result: title, features, run-level settings, curves, prune
    points and records under the curves' provenance; statistics, when present, as their own block
    with their own settings and provenance."""
    doc: dict[str, Any] = {
        "title": title,
        "features": dict(features),
        "settings": dict(settings),
        "prune_points": dict(prune_points),
        "curves": {
            n: {
                "layers": [int(i) for i in c.layers],
                "scores": [float(v) for v in c.scores],
                "sems": [float(v) for v in c.sems],
            }
            for n, c in curves.items()
        },
        "records": [r for c in curves.values() for r in c.to_records()],
        "provenance": provenance.to_dict(),
    }
    if stats is not None:
        doc["statistics"] = {
            "settings": dict(stats.settings),
            "sets": {n: s.to_dict() for n, s in stats.sets.items()},
            "seconds": dict(stats.seconds),
            "provenance": None if stats_provenance is None else stats_provenance.to_dict(),
        }
    return doc
