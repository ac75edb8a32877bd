"""End to end in a real browser: Setup -> Convexity -> Projections -> Prune & fine-tune -> Benchmarks ->
Pruning plans.

Starts ``streamlit run app.py`` on a free port with a private ``CONVEXITY_LAB_CACHE`` and drives it with
Playwright's Python API in Debian's Chromium (``/usr/bin/chromium``; no ``playwright install``).
Skipped when Chromium, Playwright or the offline Whisper tiny.en weights are missing.

What only a browser shows: live updates without navigation (a benchmark's result, a run's
curves), requests to outside hosts and console errors (offline use), pages opened by URL, and layout at a
projector's 1024 x 768 (clipped labels, the main chart above the fold), in light and dark themes. Every page
load is watched: any failed request, any request to a host other than this machine, any console error fails.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from core.io.paths import REPO_ROOT
from core.models.whisper_offline import offline_whisper_available
from tests.helpers.app_server import running_app
from tests.helpers.browser import ARGS, CHROMIUM, LONG, Watch, idle, metric

MODEL = "whisper-tiny.en-offline"
CLIPS = 70
PROJECTOR = {"width": 1024, "height": 768}
SERVER_CACHE: dict[str, Path] = {}  # the running server's CONVEXITY_LAB_CACHE
URL_PATHS = {  # every page, opened directly by URL
    "setup": "Setup",
    "convexity": "Graph convexity per layer",
    "projections": "Projections",
    "finetune": "Prune & fine-tune",
    "benchmarks": "Benchmarks",
    "sweep": "Prune sweep",
    "plans": "Pruning plans",
    "compare": "Compare stored results",
    "learn": "Learn",
}
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
    pytest.mark.skipif(
        not offline_whisper_available(MODEL), reason=f"{MODEL} weights not installed"
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` with a private cache; yields its URL and stops it afterwards."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    cache = tmp_path_factory.mktemp("e2e-cache")
    models = REPO_ROOT / "cache" / "models"
    if models.is_dir():
        (cache / "models").symlink_to(models, target_is_directory=True)
    SERVER_CACHE["path"] = cache
    with running_app(cache) as url:
        yield url
        _cancel_runs(cache)


def _cancel_runs(cache: Path) -> None:
    """Stop any training the test left behind (runs live in the server's cache)."""
    from core import runs
    from core.runs import lifecycle

    os.environ["CONVEXITY_LAB_CACHE"], old = str(cache), os.environ.get("CONVEXITY_LAB_CACHE")
    try:
        for run in runs.list_runs():
            lifecycle.cancel(run.run_id, force=True)
    finally:
        if old is None:
            os.environ.pop("CONVEXITY_LAB_CACHE", None)
        else:
            os.environ["CONVEXITY_LAB_CACHE"] = old


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go (``$E2E_SCREENSHOTS`` if set, to look at them after a run)."""
    folder = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _go(page, title: str) -> None:
    """Open a page through the sidebar navigation and wait for its run to end."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=_HEADINGS[title]).wait_for(timeout=LONG)
    idle(page)


_HEADINGS = {
    "Setup": "Setup",
    "Convexity": "Graph convexity per layer",
    "Projections": "Projections",
    "Prune & fine-tune": "Prune & fine-tune",
    "Benchmarks": "Benchmarks",
    "Pruning plans": "Pruning plans",
}


CLIPPED_JS = """() => {
  const sel = '[data-testid="stMetricLabel"], [data-testid="stMetricValue"], '
    + '[data-testid="stWidgetLabel"], label[data-baseweb], h1, button, [data-testid="stTable"], '
    + '[data-testid="stButtonGroup"], .katex-display .katex-html';
  const out = [];
  for (const root of document.querySelectorAll(sel)) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const st = getComputedStyle(el), r = el.getBoundingClientRect();
      if (!r.width || st.visibility === 'hidden') continue;
      // a segmented control scrolls its buttons (overflow auto) when they do not fit its column
      const hides = ['hidden', 'clip'].concat(root.matches('[data-testid="stButtonGroup"]')
        ? ['auto', 'scroll'] : []);
      const cut = hides.includes(st.overflowX) && el.scrollWidth > el.clientWidth + 1;
      const column = el.closest('[data-testid="stColumn"], [data-testid="stMainBlockContainer"]');
      const out_of_column = column && r.right > column.getBoundingClientRect().right + 1;
      if (cut || r.right > window.innerWidth + 1 || out_of_column) {
        out.push((el.innerText || el.tagName).slice(0, 50));
      }
    }
  }
  return [...new Set(out)];
}"""


def _no_clipping(page, where: str) -> None:
    """No label, headline number, button or table is cut off or runs out of the window."""
    clipped = page.evaluate(CLIPPED_JS)
    assert not clipped, f"{where}: clipped {clipped}"


def test_dashboard_end_to_end(server: str, shots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=LONG)
    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(LONG)
        watch = Watch(page)
        try:
            page.goto(f"{server}/setup")
            page.get_by_role("heading", name="Setup").wait_for()
            idle(page)
            expect(page.get_by_text("Nothing cached yet.")).to_be_visible()

            # Setup: extract a 70-clip slice with the offline Whisper tiny.en
            clips = page.get_by_label("Number of clips (0 = all)", exact=True)
            clips.fill(str(CLIPS))
            clips.press("Enter")
            idle(page)
            page.get_by_role("button", name="Extract features").click()
            expect(page.get_by_text(f"{CLIPS} clips x 5 hidden states")).to_be_visible()
            idle(page)
            page.screenshot(path=str(shots / "1-setup.png"), full_page=True)

            # Convexity: the curve and the prune point
            _go(page, "Convexity")
            expect(metric(page, "prune point (word)")).to_have_text(re.compile(r"p = [1-4]"))
            expect(page.locator(".js-plotly-plot")).to_have_count(2)
            expect(page.get_by_text("prune point (word): p = ").first).to_be_visible()  # legend
            page.screenshot(path=str(shots / "2-convexity.png"), full_page=True)

            # Projections: move the layer slider with the keyboard
            _go(page, "Projections")
            slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
            expect(slider).to_have_value("4")
            expect(
                page.get_by_text("Hidden state 4 includes Whisper's final LayerNorm.")
            ).to_be_visible()
            slider.focus()
            slider.press("ArrowLeft")
            expect(slider).to_have_value("3")
            idle(page)
            expect(page.get_by_text("includes Whisper's final LayerNorm")).to_have_count(0)
            expect(page.locator(".js-plotly-plot")).to_have_count(1)
            page.screenshot(path=str(shots / "3-projections.png"), full_page=True)

            # Prune & fine-tune: one short epoch of a pruned model, watched live
            _go(page, "Prune & fine-tune")
            for label, value in (
                ("Epochs", "1"),
                ("Training clips (0 = whole train split)", str(CLIPS)),
                ("Validation clips (selection; 0 = whole split)", "70"),
            ):
                box = page.get_by_label(label, exact=True)
                box.fill(value)
                box.press("Enter")
                idle(page)
            prune = page.locator(
                'input[type="range"][aria-label="Prune point p (keep transformer layers 1..p)"]'
            )
            prune.focus()
            target = 2
            while int(prune.input_value()) > target:
                now = prune.input_value()
                prune.press("ArrowLeft")
                expect(prune).not_to_have_value(now)
            idle(page)
            expect(metric(page, "parameters")).to_contain_text("M")
            page.get_by_role("button", name=f"Fine-tune pruned (p = {target})").click()
            expect(metric(page, "status")).to_have_text(re.compile("queued|running|done"))
            # watch it live until the curves gained points and the time left showed; then cancel it
            # (the finished view is AppTest's; waiting for the end costs minutes on a busy machine)
            seen: list[int] = []
            eta_seen = False
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                state = metric(page, "status").inner_text()
                steps = metric(page, "optimizer step").inner_text()
                seen.append(int(steps) if steps.isdigit() else 0)
                if state == "running" and metric(page, "left in total").count():
                    eta_seen = eta_seen or metric(page, "elapsed").inner_text() != "-"
                if state in ("done", "failed", "cancelled") or (eta_seen and max(seen) > min(seen)):
                    break
                page.wait_for_timeout(1000)  # polling a live view: the page itself never blocks
            page.screenshot(path=str(shots / "4-finetune.png"), full_page=True)
            assert metric(page, "status").inner_text() in ("running", "done"), page.locator(
                '[data-testid="stAlert"]'
            ).all_inner_texts()
            assert seen[-1] >= 1 and max(seen) > min(seen), seen  # the live view gained points
            assert eta_seen  # elapsed and time left shown while it ran
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            cancel = page.get_by_role("button", name="Cancel run")
            if cancel.count():
                cancel.click()
                idle(page)

            # Benchmarks: a benchmark's result appears by itself when its thread ends (no navigation)
            _go(page, "Benchmarks")
            expect(page.get_by_role("heading", name="Full vs pruned runs")).to_be_visible()
            expect(page.get_by_text("Needs one finished full")).to_be_visible()
            point = page.get_by_label("Prune point", exact=True)
            point.fill("2")
            point.press("Enter")
            idle(page)
            repeats = page.get_by_label("Repeats", exact=True)
            repeats.fill("2")
            repeats.press("Enter")
            idle(page)
            expect(page.get_by_text("Saved benchmarks")).to_have_count(0)
            page.get_by_role("button", name="Run benchmark").click()
            expect(page.get_by_text(re.compile(r"running for \d+ s"))).to_be_visible()
            # only waiting here (minutes on a busy machine): the fragment polls, then reruns the page
            expect(page.get_by_text("measured side by side")).to_be_visible(timeout=2 * LONG)
            table = page.locator('[data-testid="stTable"]').last
            expect(table).to_contain_text("training step")
            expect(table).to_contain_text(" MB")
            expect(table).not_to_contain_text("_")  # no snake_case names
            page.screenshot(path=str(shots / "5-benchmarks.png"), full_page=True)

            # Pruning plans: the table computes in the background (the page stays live), then a typed plan
            # is offered to the Fine-tune page by its link; scoring it shows progress and can be cancelled
            _go(page, "Pruning plans")
            page.get_by_role("button", name="Compute the plans table").click()
            expect(page.get_by_text("Similarity map")).to_be_visible()  # settings stay usable
            expect(page.locator(".js-plotly-plot")).to_have_count(1, timeout=2 * LONG)
            page.locator('[data-testid="stRadio"] label', has_text="custom").click()
            idle(page)
            typed = page.get_by_label("Plan, e.g. 'drop 3-4' or 'keep 1-2, 5-12'", exact=True)
            typed.fill("drop 2")
            typed.press("Enter")
            idle(page)
            link = page.get_by_role("link", name="Fine-tune drop 2")
            expect(link).to_have_attribute("href", re.compile(r"/finetune\?plan=drop\+2$"))
            page.get_by_role("button", name="Score drop 2 without retraining").click()
            expect(page.get_by_text(re.compile(r"plans of .*steps, \d+ s so far"))).to_be_visible()
            page.get_by_role("button", name="Cancel", exact=True).click()
            cancelled = page.get_by_text("Cancelled: nothing was stored.")
            expect(cancelled.or_(page.locator('[data-testid="stDataFrame"]'))).to_be_visible()
            if (
                not cancelled.count()
            ):  # its last step ended before the cancel: the plan was stored, and shown
                expect(page.get_by_text("drop 2 is not in the table yet.")).to_have_count(0)
                expect(page.get_by_text("Cancelled")).to_have_count(0)
            page.screenshot(path=str(shots / "6-plans.png"), full_page=True)
            assert not page.locator('[data-testid="stException"]').count()
            watch.check()
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    print(f"browser end-to-end: {time.monotonic() - t0:.0f} s")  # a figure, not an assert
    if os.environ.get("E2E_DOCS_SCREENSHOT"):
        shutil.copy(shots / "2-convexity.png", REPO_ROOT / "docs" / "convexity.png")


def _choose_features_unless_chosen(cache: Path) -> None:
    """The Setup choice the first test makes in the browser, made here when this test runs alone."""
    if (cache / "last_choice.json").exists():
        return
    from core.data.features import Selection, extract_features
    from core.io.choice import SetupChoice, save_choice

    old = os.environ.get("CONVEXITY_LAB_CACHE")
    os.environ["CONVEXITY_LAB_CACHE"] = str(cache)
    try:
        fs = extract_features(MODEL, Selection.of("sample", max_clips=CLIPS), batch_size=35)
        save_choice(SetupChoice(feature_key=str(fs.key), model=MODEL, max_clips=CLIPS))
    finally:
        if old is None:
            os.environ.pop("CONVEXITY_LAB_CACHE", None)
        else:
            os.environ["CONVEXITY_LAB_CACHE"] = old


def test_every_page_by_url_offline_and_on_a_projector(server: str, shots: Path) -> None:
    """After the first test chose features: each page opened by URL in a new tab, at 1024 x 768, light
    and dark: the page (not "Page not found"), the features chosen before, nothing clipped, the main
    Convexity chart above the fold, no outside request and no console error."""
    from playwright.sync_api import expect, sync_playwright

    _choose_features_unless_chosen(SERVER_CACHE["path"])
    expect.set_options(timeout=LONG)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport=PROJECTOR, color_scheme=scheme)
                page.set_default_timeout(LONG)
                watch = Watch(page)
                for path, heading in URL_PATHS.items():
                    for opened in ("link", "reload"):  # a deep link, then the browser's reload
                        if opened == "link":
                            watch.goto(f"{server}/{path}")
                        else:
                            watch.reload()
                        page.get_by_role("heading", name=heading).first.wait_for()
                        idle(page)
                        assert urlparse(page.url).path == f"/{path}", (opened, page.url)
                        expect(page.get_by_text("Page not found")).to_have_count(0)
                    if path == "convexity":  # the stored choice, in a new session
                        expect(page.get_by_text(f"{CLIPS} clips (cap {CLIPS})")).to_be_visible()
                        chart = page.locator(".js-plotly-plot").first
                        chart.wait_for()
                        box = chart.bounding_box()
                        assert box is not None and box["y"] + box["height"] <= 768, box
                    _no_clipping(page, f"{path} ({scheme})")
                    page.screenshot(path=str(shots / f"projector-{scheme}-{path}.png"))
                if scheme == "dark":
                    bg = page.evaluate(
                        "getComputedStyle(document.querySelector('[data-testid=stApp]'))"
                        ".backgroundColor"
                    )
                    rgb = [int(v) for v in re.findall(r"\d+", bg)[:3]]
                    assert sum(rgb) < 150, bg  # the dark theme follows the system setting
                for url in (server, f"{server}/home"):  # the root and /home open Home (at /home)
                    watch.goto(url)
                    page.get_by_role("heading", name="Convexity Lab").first.wait_for()
                    idle(page)
                    expect(page.get_by_text("Page not found")).to_have_count(0)
                    assert urlparse(page.url).path == "/home", page.url
                watch.check()
                page.close()
        finally:
            browser.close()
