"""The paper's size in a real browser: 10,990 imported points (388 speakers, 35 words, 4 hidden
states) through Convexity and Projections: the UMAP shows, a lasso selects a region whose clips are
listed and kept across layers, a clip typed while the layer's diagnostics run outlives the rerun
their end makes, and a clicked clip shows its neighbours and path once the layer's graph is built
(only the plot's fragment reruns). The times are printed, not asserted: they are
figures for docs/benchmarks.md, measured on an idle machine.

The features are generated here and imported through ``core.data.imported.import_features`` (what
Setup's "Import features" runs); the test chooses them on Setup. Fails on a Python traceback, a
browser console error (beyond Streamlit's own base-path probes), or any request to another host.
Prints the measured times (``-s``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.app_server import running_app
from tests.helpers.browser import ARGS, CHROMIUM, Watch, click_clip_and_time, idle
from tests.helpers.paper_size import N_CLIPS, N_STATES, write_paper_size

LONG = 900_000  # ms: the UMAP of 10,990 points on 2 busy cores

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The generated paper-size set imported into a private cache, and the dashboard over it."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from core.data.imported import import_features

    base = tmp_path_factory.mktemp("paper-size")
    cache = base / "cache"
    cache.mkdir()
    arrays, labels = write_paper_size(base)
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEXITY_LAB_CACHE", str(cache))
    try:
        fs = import_features(arrays, labels)
    finally:
        mp.undo()
    assert fs.features.shape[:2] == (N_CLIPS, N_STATES)
    with running_app(cache) as url:
        yield url


def _no_traceback(page, where: str) -> None:
    assert not page.locator('[data-testid="stException"]').count(), where


def _far_point(page) -> tuple[float, float]:
    """Screen position of a class point inside the plot, the farthest from the chosen clip (or from
    the plot's centre when none is chosen); read from the plot's data and axes, as the points are
    drawn with WebGL at this size (no SVG element per point)."""
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    return page.evaluate(
        """() => {
          const plot = document.querySelector('.js-plotly-plot');
          const xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis;
          const area = plot.querySelector('.nsewdrag').getBoundingClientRect();
          const at = (t, i) => [area.x + xa.l2p(t.x[i]), area.y + ya.l2p(t.y[i])];
          const extra = ['10 nearest neighbours', 'shortest path', 'chosen clip'];
          const chosen = plot._fullData.find(t => t.name === 'chosen clip');
          const from = chosen ? at(chosen, 0) : [area.x + area.width / 2, area.y + area.height / 2];
          let best = null, dist = -1;
          plot._fullData.forEach(t => {
            if (t.mode !== 'markers' || extra.includes(t.name)) return;
            for (let i = 0; i < t.x.length; i++) {
              const [x, y] = at(t, i);
              if (x < area.x + 5 || x > area.right - 5 || y < area.y + 5 || y > area.bottom - 5) continue;
              const d = Math.hypot(x - from[0], y - from[1]);
              if (d > dist) { dist = d; best = [x, y]; }
            }
          });
          return best;
        }"""
    )


def _convexity(page, timings: dict[str, float], shots: Path) -> None:
    """Convexity at the coarsest precision preset (the first run stops at its next layer)."""
    t0 = time.monotonic()
    page.locator('[data-testid="stSidebarNav"] a', has_text="Convexity").first.click()
    page.get_by_role("heading", name="Graph convexity per layer").first.wait_for()
    precision = page.locator('[data-testid="stSlider"]', has_text="Precision").get_by_role("slider")
    precision.focus()
    page.keyboard.press("Home")  # ± 0.01, the coarsest
    page.locator(".js-plotly-plot").first.wait_for()
    idle(page, LONG)
    timings["convexity curve shown"] = time.monotonic() - t0
    _no_traceback(page, "convexity")
    page.screenshot(path=str(shots / "paper-1-convexity.png"))


def _projections(page, timings: dict[str, float], shots: Path) -> None:
    """Projections: the UMAP, colour by clip convexity, a lasso, another layer, two clicks."""
    from playwright.sync_api import expect

    t0 = time.monotonic()
    page.locator('[data-testid="stSidebarNav"] a', has_text="Projections").first.click()
    page.get_by_role("heading", name="Projections").first.wait_for()
    page.locator(".js-plotly-plot .gl-container canvas").first.wait_for(timeout=LONG)
    timings["UMAP plot shown"] = time.monotonic() - t0
    idle(page, LONG)
    _no_traceback(page, "projections")

    # colour by clip convexity: the plot stays while the diagnostics run in the background
    page.locator('[data-testid="stButtonGroup"] button', has_text="clip convexity").click()
    page.wait_for_timeout(500)
    assert page.locator(".js-plotly-plot .gl-container canvas").count() >= 1  # drawn with WebGL
    idle(page, LONG)
    expect(page.locator(".js-plotly-plot .colorbar")).to_have_count(1)

    # a lasso (the plot's toolbar) around the middle of the plot lists its clips
    page.locator(".js-plotly-plot").first.hover()
    page.locator('.js-plotly-plot .modebar-btn[data-title="Lasso Select"]').click()
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    r = min(box["width"], box["height"]) / 6
    page.mouse.move(cx - r, cy - r)
    page.mouse.down()
    for dx, dy in ((r, -r), (r, r), (-r, r), (-r, -r)):
        page.mouse.move(cx + dx, cy + dy, steps=5)
    page.mouse.up()
    heading = page.get_by_role("heading", name="Selected region")
    heading.wait_for(timeout=120_000)
    idle(page, LONG)
    selected = int(heading.inner_text().split(":")[1].split()[0].replace(",", ""))
    assert 0 < selected < N_CLIPS
    expect(page.get_by_role("button", name="Download the selection (CSV)")).to_be_visible()
    page.screenshot(path=str(shots / "paper-2-selection.png"))

    # another layer keeps the selection; a clip typed while its diagnostics run in the background is
    # kept when they land and rerun the page (it builds the layer's graph)
    page.get_by_role("slider").first.focus()
    page.keyboard.press("ArrowLeft")
    layer = N_STATES - 2  # the page opened on the last hidden state
    page.get_by_text(f"Clip diagnostics of hidden state {layer}").first.wait_for(timeout=120_000)
    t0 = time.monotonic()
    clip_box = page.get_by_label("Clip (or click a point)")
    clip_box.fill("0")
    clip_box.press("Enter")
    shown = page.get_by_role("heading", name="Shortest path to a class-mate")
    shown.or_(page.locator('[data-testid="stException"]')).first.wait_for(timeout=300_000)
    _no_traceback(page, "typed clip")
    expect(page.get_by_text(f"judged by word classes at hidden state {layer}.")).to_be_visible(
        timeout=300_000
    )
    idle(page, LONG)
    expect(shown).to_be_visible()  # the typed clip outlived the rerun the diagnostics' end makes
    expect(
        page.get_by_role("heading", name=f"Selected region: {selected:,} clip").first
    ).to_be_visible()
    timings["clip typed while diagnostics run, until both shown"] = time.monotonic() - t0
    page.get_by_text("Zoom to the clip and its path").click()
    idle(page, LONG)
    page.locator(".js-plotly-plot").first.hover()
    page.locator('.js-plotly-plot .modebar-btn[data-title="Zoom"]').click()
    timings["click to neighbours and path"] = click_clip_and_time(page, *_far_point(page), LONG)
    expect(page.get_by_role("heading", name="Its 10 nearest neighbours")).to_be_visible()
    _no_traceback(page, "projections clip")
    page.screenshot(path=str(shots / "paper-3-clip.png"))
    assert "clip=" in page.url  # a reload keeps the chosen clip


def test_paper_size_convexity_and_projections(served: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=LONG)
    shots = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path)
    timings: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(LONG)
        watch = Watch(page)
        try:
            watch.goto(f"{served}/setup")
            page.get_by_role("heading", name="Cached feature sets").wait_for()
            idle(page, LONG)
            page.get_by_role("button", name="Use this feature set").click()
            expect(page.get_by_text("Using imported:paper")).to_be_visible()
            idle(page, LONG)

            _convexity(page, timings, shots)
            _projections(page, timings, shots)
            watch.check()
        except Exception:
            page.screenshot(path=str(shots / "paper-failed.png"), full_page=True)
            print(
                "page text at the failure:",
                page.locator('[data-testid="stMainBlockContainer"]').inner_text()[:4000],
            )
            raise
        finally:
            browser.close()
    print("paper size timings (s):", {k: round(v, 2) for k, v in timings.items()})
    assert "click to neighbours and path" in timings  # the clicked clip's path was shown
