"""Exports that carry their provenance and read correctly on their own: figures, CSV and JSON.

Figures: caption lines under the plot name model, data and settings, wrapped to the plot's width and never
cut (so a downloaded PNG/SVG says what it shows); standalone HTML gets a fixed size, room around the plot and ``automargin`` axes with a title
standoff, so tick labels and axis titles are neither clipped nor overlapping. PNG and SVG come from
plotly.js in the browser (the modebar camera button, ``toImageButtonOptions``): nothing server-side, no
internet.
"""

from __future__ import annotations

import json
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
            for piece in textwrap.wrap(part, width - 2) or [""]:
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
        width=width,
        height=height,
        autosize=False,
        template="plotly_white",
        margin={"l": 80, "r": 40, "t": 90, "b": CAPTION_SHIFT},
        font={"size": 14},
    )
    if title:
        out.update_layout(title={"text": title, "x": 0, "xanchor": "left", "y": 0.98})
    out.update_xaxes(automargin=True, title_standoff=12)
    out.update_yaxes(automargin=True, title_standoff=12)
    return add_caption(out, lines, width=max(CAPTION_CHARS, (width - 120) // 6))


def figure_html(
    fig: go.Figure, lines: Sequence[str], filename: str, title: str | None = None
) -> str:
    """A self-contained HTML page of ``fig`` (plotly.js inlined: opens offline) with its caption."""
    out = standalone(fig, lines, title=title)
    return out.to_html(
        include_plotlyjs=True, full_html=True, config=image_config(filename, width=out.layout.width)
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
