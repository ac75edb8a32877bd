"""A clicked clip at the paper's size: SVG against WebGL markers, side by side in one run.

    python bench/projection_clicks.py                # 2 rounds (SVG, WebGL, WebGL, SVG), 5 clicks each
    python bench/projection_clicks.py --rounds 1 --clicks 8

10,990 synthetic imported points (``tests/helpers/paper_size.py``) in a private cache; the dashboard
served on a free loopback port and driven in Chromium. Each round opens Projections, types a clip (the
layer's kNN graph is built), then clicks points spread over the plot and times each click until the
clicked clip's heading shows and the fragment rerun has ended. The SVG side is the same page with
``pages.parts.figures.WEBGL_FROM`` raised above the point count (a ``sitecustomize`` on the server's
path), so only the marker renderer differs. Rounds alternate so a drift in load falls on both. Prints
figures and the ratio of medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.app_server import running_app  # noqa: E402
from tests.helpers.browser import ARGS, CHROMIUM, click_clip_and_time, idle  # noqa: E402
from tests.helpers.paper_size import write_paper_size  # noqa: E402

LONG = 900_000  # ms: the first round lays out the UMAP of 10,990 points
FORCE_SVG = f"import sys\nsys.path.insert(0, {str(REPO)!r})\nimport pages.parts.figures as f\nf.WEBGL_FROM = 10**9\n"
POINT = """(n) => {
  const plot = document.querySelector('.js-plotly-plot');
  const xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis;
  const area = plot.querySelector('.nsewdrag').getBoundingClientRect();
  const extra = ['10 nearest neighbours', 'shortest path', 'chosen clip'];
  const traces = plot._fullData.filter(t => t.mode === 'markers' && !extra.includes(t.name));
  const t = traces[n % traces.length], i = (n * 37) % t.x.length;
  return [area.x + xa.l2p(t.x[i]), area.y + ya.l2p(t.y[i])];
}"""


def imported_cache(folder: Path) -> Path:
    """A cache holding the paper-size set, imported as Setup's "Import features" does."""
    cache = folder / "cache"
    cache.mkdir()
    arrays, labels = write_paper_size(folder)
    os.environ["CONVEXITY_LAB_CACHE"] = str(cache)
    try:
        from core.data.imported import import_features

        import_features(arrays, labels)
    finally:
        del os.environ["CONVEXITY_LAB_CACHE"]
    return cache


def click_times(url: str, clicks: int) -> list[float]:
    """Seconds per clicked clip on Projections, the layer's graph built by a typed clip first."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(LONG)
        page.goto(f"{url}/setup")
        page.get_by_role("heading", name="Cached feature sets").wait_for()
        idle(page, LONG)
        page.get_by_role("button", name="Use this feature set").click()
        idle(page, LONG)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Projections").first.click()
        page.locator(".js-plotly-plot").first.wait_for()
        idle(page, LONG)
        box = page.get_by_label("Clip (or click a point)")
        box.fill("0")
        box.press("Enter")
        page.get_by_role("heading", name="Shortest path to a class-mate").wait_for()
        idle(page, LONG)
        page.get_by_text("Zoom to the clip and its path").click()  # the whole layer stays in view
        idle(page, LONG)
        page.locator(".js-plotly-plot").first.hover()
        page.locator('.js-plotly-plot .modebar-btn[data-title="Zoom"]').click()
        times = [
            click_clip_and_time(page, *page.evaluate(POINT, n), LONG) for n in range(1, clicks + 1)
        ]
        browser.close()
    return times


def one_round(cache: Path, svg: bool, clicks: int, hooks: Path) -> list[float]:
    """One served dashboard and browser, markers drawn as SVG or with WebGL."""
    saved = os.environ.get("PYTHONPATH")
    if svg:
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(hooks), saved) if p)
    try:
        with running_app(cache) as url:
            return click_times(url, clicks)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="SVG/WebGL pairs, order alternating")
    ap.add_argument("--clicks", type=int, default=5, help="clicked clips per round")
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} not installed")
    times: dict[str, list[float]] = {"SVG": [], "WebGL": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache = imported_cache(folder)
        hooks = folder / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(FORCE_SVG)
        for r in range(args.rounds):
            for svg in (True, False) if r % 2 == 0 else (False, True):
                name = "SVG" if svg else "WebGL"
                load = os.getloadavg()[0]
                got = one_round(cache, svg, args.clicks, hooks)
                times[name] += got
                print(
                    f"round {r + 1} {name:5}: "
                    + " ".join(f"{t:.2f}" for t in got)
                    + f" s (load {load:.1f})",
                    flush=True,
                )
    svg_med, gl_med = (statistics.median(times[k]) for k in ("SVG", "WebGL"))
    print(
        f"median per click: SVG {svg_med:.2f} s, WebGL {gl_med:.2f} s; SVG / WebGL x{svg_med / gl_med:.1f}"
    )


if __name__ == "__main__":
    main()
