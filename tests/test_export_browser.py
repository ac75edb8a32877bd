"""Exported HTML figures read correctly in a real browser: tick labels and titles lie inside the figure.

Opens the standalone HTML (plotly.js inlined) from a file:// URL in Debian's Chromium through Playwright's
sync API (no network), and compares DOM bounding boxes. A control figure with the old tight margins shows
the check does catch clipping.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import pytest

from core.results import export

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]

BOXES_JS = """
() => {
  const fig = document.querySelector('.main-svg').getBoundingClientRect();
  const box = (el) => { const r = el.getBoundingClientRect();
    return {text: el.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const all = (sel) => Array.from(document.querySelectorAll(sel)).map(box);
  return {fig: {left: fig.left, right: fig.right, top: fig.top, bottom: fig.bottom},
          ticks: all('.xtick text, .ytick text'), titles: all('.g-xtitle text, .g-ytitle text'),
          caption: all('.annotation-text').filter((b) => b.text.includes('model '))};
}
"""


def convexity_like_figure() -> go.Figure:
    """A figure shaped like the Convexity page's: 13 hidden states, error bars, prune lines, top legend."""
    layers = list(range(13))
    fig = go.Figure()
    for name, shift in (("word", 0.0), ("speaker", 0.3)):
        scores = [min(1.0, 0.2 + shift + 0.06 * i) for i in layers]
        fig.add_trace(
            go.Scatter(
                x=layers,
                y=scores,
                name=name,
                mode="lines+markers",
                error_y={"type": "data", "array": [0.02] * 13},
            )
        )
        fig.add_vline(x=8, line={"dash": "dash"}, annotation_text=f"prune {name}: p=8")
    fig.update_xaxes(
        tickmode="array",
        tickvals=layers,
        range=[-0.3, 12.3],
        title_text="hidden state (0 = input to layer 1)",
    )
    fig.update_yaxes(range=[0, 1.05], title_text="graph convexity")
    fig.update_layout(
        height=440,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font={"size": 14},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    return fig


def _boxes(html: str, path: Path) -> dict:
    """Bounding boxes of the figure, tick labels, axis titles and caption, measured in Chromium."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path.write_text(html, encoding="utf-8")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(path.as_uri())
            page.wait_for_selector(".ytick text", timeout=30_000)
            return page.evaluate(BOXES_JS)
        finally:
            browser.close()


def _outside(boxes: dict, names: str = "ticks") -> list[str]:
    """Labels whose box is not fully inside the figure."""
    f = boxes["fig"]
    return [
        b["text"]
        for b in boxes[names]
        if b["left"] < f["left"] - 0.5
        or b["right"] > f["right"] + 0.5
        or b["top"] < f["top"] - 0.5
        or b["bottom"] > f["bottom"] + 0.5
    ]


def _overlap(a: dict, b: dict) -> bool:
    """Whether two boxes intersect."""
    return not (
        a["right"] <= b["left"]
        or b["right"] <= a["left"]
        or a["bottom"] <= b["top"]
        or b["bottom"] <= a["top"]
    )


def test_exported_html_keeps_tick_labels_and_titles_inside(tmp_path: Path) -> None:
    caption = [
        "model whisper-tiny.en-offline [ct2-sha256:0123456789ab] · data sample, 805 clips · k=10"
    ]
    html = export.figure_html(
        convexity_like_figure(), caption, "convexity", "Graph convexity per layer"
    )
    boxes = _boxes(html, tmp_path / "convexity.html")
    assert len(boxes["ticks"]) >= 13 + 6  # 13 x ticks, y ticks 0 .. 1
    assert not _outside(boxes), _outside(boxes)
    assert not _outside(boxes, "titles") and len(boxes["titles"]) == 2
    assert not _outside(boxes, "caption") and len(boxes["caption"]) == 1
    labels = boxes["ticks"] + boxes["titles"]
    clashes = [
        (a["text"], b["text"])
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
        if _overlap(a, b)
    ]
    assert not clashes, clashes
    assert not any(_overlap(boxes["caption"][0], t) for t in labels)


def test_the_check_catches_clipped_labels(tmp_path: Path) -> None:
    fig = convexity_like_figure()  # the old export: 10-px margins, no automargin
    fig.update_xaxes(automargin=False)
    fig.update_yaxes(automargin=False)
    boxes = _boxes(fig.to_html(include_plotlyjs=True, full_html=True), tmp_path / "old.html")
    assert _outside(boxes), "tight margins should clip the y tick labels"


LINES_JS = """
() => {
  const fig = document.querySelector('.main-svg').getBoundingClientRect();
  const note = Array.from(document.querySelectorAll('.annotation-text'))
    .find((el) => el.textContent.includes('model '));
  const lines = Array.from(note.querySelectorAll('tspan.line')).map((el) => el.getBoundingClientRect());
  const r = note.getBoundingClientRect();
  return {fig: {left: fig.left, right: fig.right, top: fig.top, bottom: fig.bottom},
          caption: [{text: note.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom}],
          lines: lines.length};
}
"""


def test_a_full_provenance_caption_is_wrapped_inside_the_exported_figure(tmp_path: Path) -> None:
    caption = [  # as long as a real one: model path and weights, data, sampling, seed, device, code, date
        "model /home/lecturer/models/whisper-tiny.en-finetuned-speakers [files-sha256:8dfcea5a3b2f] "
        "· data folder (test), 2520 clips [378d9ff57325] · k=10 · sampled, target se 0.005 · seed 0 · "
        "cuda, engine v3, code 77e3e88abcde+dirty · 2026-12-01"
    ]
    html = export.figure_html(convexity_like_figure(), caption, "convexity", "Graph convexity")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path = tmp_path / "convexity.html"
    path.write_text(html, encoding="utf-8")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.goto(path.as_uri())
            page.wait_for_selector(".ytick text", timeout=30_000)
            boxes = page.evaluate(LINES_JS)
        finally:
            browser.close()
    assert boxes["lines"] >= 2  # wrapped onto several lines ...
    assert not _outside(boxes, "caption"), boxes  # ... every one inside the figure, none cut
    text = " ".join(boxes["caption"][0]["text"].split())
    assert "".join(caption[0].split()) == "".join(text.split())  # the whole caption, in order


AREA_JS = """
() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const title = document.querySelector('.gtitle');
  return {plot: box(document.querySelector('.nsewdrag')),
          legend: box(document.querySelector('.legend')),
          title: title ? box(title) : null};
}
"""


def _areas(html: str, path: Path) -> dict:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path.write_text(html, encoding="utf-8")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(path.as_uri())
            page.wait_for_selector(".ytick text", timeout=30_000)
            return page.evaluate(AREA_JS)
        finally:
            browser.close()


def _page_figure() -> tuple[go.Figure, list[str]]:
    """The Convexity page's curve plot with both chance bands, both prune points and a caption."""
    import numpy as np

    from pages.parts.figures import Curve, convexity_figure

    layers = list(range(5))
    curves = [
        Curve("word (70 classes)", layers, [0.2, 0.5, 0.8, 0.9, 0.85], err=[0.01] * 5),
        Curve("speaker (24 classes)", layers, [0.6, 0.5, 0.3, 0.2, 0.2], err=[0.01] * 5),
    ]
    bands = [
        (f"chance ({n})", layers, np.full(5, 0.1), np.full(5, 0.02), None)
        for n in ("word", "speaker")
    ]
    caption = [
        "model whisper-tiny.en-offline [ct2-sha256:0123456789ab] · data sample, 2520 clips "
        "[378d9ff57325] · k=10 · sampled, target se 0.005 · seed 0 · cpu, engine v3 · 2026-12-07"
    ]
    fig = convexity_figure(
        curves, bands=bands, prune_points={"word": (3, None), "speaker": (1, None)}, caption=caption
    )
    return fig, caption


def test_page_curve_keeps_its_plot_area_in_the_png_size_and_in_html_under_its_title(
    tmp_path: Path,
) -> None:
    from pages.parts.figures import PLOT_HEIGHT

    fig, caption = _page_figure()
    png = go.Figure(fig).update_layout(width=1200, autosize=False)  # the camera button's size
    boxes = _areas(png.to_html(include_plotlyjs=True, full_html=True), tmp_path / "png.html")
    plot = boxes["plot"]
    assert plot["bottom"] - plot["top"] >= PLOT_HEIGHT - 2, boxes
    assert not _overlap(boxes["legend"], plot), boxes
    html = export.figure_html(fig, caption, "convexity", "Graph convexity per layer")
    boxes = _areas(html, tmp_path / "convexity.html")
    plot = boxes["plot"]
    assert plot["bottom"] - plot["top"] >= 400, boxes
    assert boxes["title"] is not None and not _overlap(boxes["title"], boxes["legend"]), boxes
    assert not _overlap(boxes["legend"], plot), boxes
