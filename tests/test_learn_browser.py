"""Learn in a real browser: pick two points by clicking on the plot and see the pair change.

Starts ``streamlit run app.py`` on a free localhost port with a private ``CONVEXITY_LAB_CACHE`` and drives
Debian's Chromium (``/usr/bin/chromium``) through Playwright. Fails on a browser console error, a page error
or any request that leaves localhost. Skipped when Chromium or Playwright is missing. No model needed.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.app_server import running_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LONG = 120_000  # ms
PAIR = re.compile(r"Pair: start (\d+) → end (\d+) \(class (\d+)\)")
# formulas wider than their box (which then scrolls: the end is cut off) or beyond their column; KaTeX's
# aligned environment itself overhangs by ~2 px, a cut-off formula by a glyph or more
FORMULA_OVERFLOW_JS = """() => Array.from(document.querySelectorAll('.katex-display'))
  .filter((el) => el.scrollWidth > el.clientWidth + 4
    || el.querySelector('.katex-html').getBoundingClientRect().right
       > el.closest('[data-testid="stColumn"]').getBoundingClientRect().right + 1)
  .map((el) => el.textContent.slice(0, 40))"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]

# Screen positions of every class point of the Learn plot (decoded data from Plotly's full trace list).
POINTS_JS = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].pop();
  const fl = gd._fullLayout, box = gd.getBoundingClientRect(), out = [];
  gd._fullData.forEach((t) => {
    if (!t.name || !t.name.startsWith('class ')) return;
    for (let i = 0; i < t.x.length; i++) {
      out.push({id: Number(t.customdata[i]), cls: Number(t.name.slice(6)),
                x: box.left + fl.xaxis._offset + fl.xaxis.l2p(t.x[i]),
                y: box.top + fl.yaxis._offset + fl.yaxis.l2p(t.y[i])});
    }
  });
  return out;
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` on 127.0.0.1 with a private cache; yields its URL."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with running_app(tmp_path_factory.mktemp("learn-cache")) as url:
        yield url


def _idle(page) -> None:
    """Wait until the script run finished (Streamlit's running indicator gone)."""
    page.wait_for_timeout(400)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=LONG)


def _pair(page) -> tuple[int, int, int]:
    text = page.get_by_text(PAIR).first.inner_text()
    m = PAIR.search(text)
    assert m, text
    return int(m[1]), int(m[2]), int(m[3])


def _settled_points(page) -> list[dict]:
    """Point positions once the plot stopped moving (two reads 300 ms apart agree): a click lands."""
    points = page.evaluate(POINTS_JS)
    for _ in range(100):
        page.wait_for_timeout(300)
        again = page.evaluate(POINTS_JS)
        if again and again == points:
            return again
        points = again
    raise AssertionError("the Learn plot kept moving")


def _isolated(points: list[dict], cls: int, avoid: set[int]) -> list[dict]:
    """Points of ``cls`` (not in ``avoid``) sorted by distance to their nearest neighbour on screen, far first."""

    def gap(p: dict) -> float:
        return min((p["x"] - q["x"]) ** 2 + (p["y"] - q["y"]) ** 2 for q in points if q is not p)

    mine = [p for p in points if p["cls"] == cls and p["id"] not in avoid]
    return sorted(mine, key=gap, reverse=True)


def test_click_two_points_on_learn_to_choose_the_pair(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=LONG)
    host = urllib.parse.urlsplit(server).netloc
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(LONG)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console error: {msg.text}") if msg.type == "error" else None
            ),
        )

        def outside(request) -> None:
            parts = urllib.parse.urlsplit(request.url)
            if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != host:
                problems.append(f"outside request: {request.url}")

        page.on("request", outside)
        page.on(
            "response",
            lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        try:
            page.goto(server)  # a deep link (/learn) makes Streamlit probe /learn/_stcore/* (404s)
            page.get_by_role("heading", name="Convexity Lab").wait_for()
            page.locator('[data-testid="stSidebarNav"] a', has_text="Learn").first.click()
            page.get_by_role("heading", name="Learn: what graph convexity means").wait_for()
            page.locator(".js-plotly-plot").first.wait_for()
            _idle(page)
            before = _pair(page)
            cls = 1 - before[2] if before[2] in (0, 1) else 0  # a pair from another class
            points = _settled_points(page)
            first = _isolated(points, cls, set(before[:2]))[0]
            page.mouse.click(first["x"], first["y"])
            _idle(page)
            expect(page.get_by_text(f"Start: point {first['id']}")).to_be_visible()
            points = _settled_points(page)  # the plot was redrawn: read positions again
            second = _isolated(points, cls, {first["id"]})[0]
            page.mouse.click(second["x"], second["y"])
            _idle(page)
            expect(page.get_by_text(PAIR).first).to_have_text(
                re.compile(rf"start {first['id']} → end {second['id']} \(class {cls}\)")
            )
            after = _pair(page)
            assert after != before and after == (first["id"], second["id"], cls)
            seed = page.get_by_label(
                "Seed"
            )  # a new toy opens on a pair whose path leaves its class
            seed.fill("1")
            seed.press("Enter")
            _idle(page)
            for _ in range(3):  # on to step 4, the score's formulas
                page.get_by_role("button", name="Next ▶").click()
                _idle(page)
            expect(page.get_by_text("4. The score")).to_be_visible()
            expect(page.locator(".katex-display .katex-html").nth(1)).to_be_visible()
            page.evaluate("document.fonts.ready.then(() => true)")  # KaTeX's fonts laid out
            assert not page.evaluate(FORMULA_OVERFLOW_JS), "a formula runs out of its column"
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
