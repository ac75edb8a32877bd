"""Exports that carry their provenance and read correctly on their own: figures, CSV and JSON.

Figures: a caption line under the plot names model, data and settings (so a downloaded PNG/SVG says what
it shows); standalone HTML gets a fixed size, room around the plot and ``automargin`` axes with a title
standoff, so tick labels and axis titles are neither clipped nor overlapping. PNG and SVG come from
plotly.js in the browser (the modebar camera button, ``toImageButtonOptions``): nothing server-side, no
internet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from core.results.provenance import Provenance

CAPTION_SHIFT = (
    66  # px below the plot area: clears tick labels (~20 px) and the axis title (~25 px)
)
CAPTION_MARGIN = 104  # bottom margin that holds ticks, axis title and one caption line


def captions(provenance: Sequence[Provenance]) -> list[str]:
    """One caption line per distinct provenance (model, data, settings, engine, code, date)."""
    return list(dict.fromkeys(p.caption() for p in provenance))


def add_caption(fig: go.Figure, lines: Sequence[str], *, size: int = 11) -> go.Figure:
    """Put caption line(s) under the plot area (in place) and make the bottom margin hold them."""
    if not lines:
        return fig
    fig.add_annotation(
        text="<br>".join(lines), xref="paper", yref="paper", x=0, y=0, xanchor="left",
        yanchor="top", yshift=-CAPTION_SHIFT, showarrow=False, align="left",
        font={"size": size, "color": "#6b7280"}, name="provenance",
    )  # fmt: skip
    margin = fig.layout.margin
    bottom = max(int(margin.b or 0), CAPTION_MARGIN + 14 * (len(lines) - 1))
    fig.update_layout(margin={"b": bottom})
    return fig


def image_config(filename: str, fmt: str = "png") -> dict[str, Any]:
    """Plotly config whose modebar camera button downloads ``filename.png`` or ``.svg`` client-side."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"image format must be png or svg, got {fmt!r}")
    return {
        "displaylogo": False,
        "toImageButtonOptions": {
            "format": fmt,
            "filename": filename,
            "scale": 2 if fmt == "png" else 1,
        },
    }


def standalone(
    fig: go.Figure,
    lines: Sequence[str] = (),
    *,
    width: int = 1000,
    height: int = 600,
    title: str | None = None,
) -> go.Figure:
    """A copy of ``fig`` laid out to stand alone: fixed size, margins, automargin axes, caption."""
    out = go.Figure(fig)
    out.layout.annotations = [a for a in out.layout.annotations if a.name != "provenance"]
    out.update_layout(
        width=width, height=height, autosize=False, template="plotly_white",
        margin={"l": 80, "r": 40, "t": 90, "b": CAPTION_MARGIN}, font={"size": 14},
    )  # fmt: skip
    if title:
        out.update_layout(title={"text": title, "x": 0, "xanchor": "left", "y": 0.98})
    out.update_xaxes(automargin=True, title_standoff=12)
    out.update_yaxes(automargin=True, title_standoff=12)
    return add_caption(out, lines)


def figure_html(
    fig: go.Figure, lines: Sequence[str], filename: str, title: str | None = None
) -> str:
    """A self-contained HTML page of ``fig`` (plotly.js inlined: opens offline) with its caption."""
    return standalone(fig, lines, title=title).to_html(
        include_plotlyjs=True, full_html=True, config=image_config(filename)
    )


def csv_with_provenance(csv_text: str, provenance: Sequence[Provenance]) -> str:
    """CSV preceded by ``# provenance: {json}`` comment lines (``pandas.read_csv(..., comment='#')``)."""
    head = "".join(f"# provenance: {json.dumps(p.to_dict(), sort_keys=True)}\n" for p in provenance)
    return head + csv_text


def json_with_provenance(
    payload: Mapping[str, Any], provenance: Sequence[Provenance]
) -> dict[str, Any]:
    """``payload`` with a ``provenance`` list added."""
    return {**payload, "provenance": [p.to_dict() for p in provenance]}
