"""Features extracted elsewhere, in a real browser: upload generated embeddings and labels on Setup,
then open them on Convexity; Prune & fine-tune says they need a model. On the same server, an
unknown URL shows a visible "Page not found" with links.

Starts ``streamlit run app.py`` with a private ``CONVEXITY_LAB_CACHE`` and drives Debian's Chromium
with Playwright (skipped without them). Fails on a Python traceback on any page, a browser console
error or a request to any host but this machine (``Watch`` of the main browser test).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.app_server import running_app
from tests.helpers.browser import ARGS, CHROMIUM, Watch, idle

LONG = 180_000  # ms
N, STATES, D = 36, 5, 16

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Generated per-layer embeddings (.npz, one array per layer), their labels table and the dashboard."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    base = tmp_path_factory.mktemp("import-journey")
    rng = np.random.default_rng(0)
    words = np.arange(N) % 3
    centres = rng.normal(scale=3.0, size=(3, D))
    layers = {
        f"layer_{i}": (centres[words] * i / (STATES - 1) + rng.normal(size=(N, D))).astype(
            np.float32
        )
        for i in range(STATES)
    }
    np.savez(base / "toolkit embeddings.npz", **layers)
    (base / "labels.csv").write_text(
        "class,speaker,path\n" + "".join(f"w{w},s{i % 4},c{i}.wav\n" for i, w in enumerate(words))
    )
    cache = base / "cache"
    cache.mkdir()
    with running_app(cache) as url:
        yield {"url": url, "base": base, "cache": cache}


def _go(page, title: str, heading: str) -> None:
    """Open a page through the sidebar and wait for its run to end."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=heading).first.wait_for(timeout=LONG)
    idle(page, LONG)


def _no_traceback(page, where: str) -> None:
    assert not page.locator('[data-testid="stException"]').count(), where


def test_upload_on_setup_then_open_on_convexity(served: dict[str, object], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=LONG)
    base = Path(str(served["base"]))
    shots = Path(os.environ.get("E2E_SCREENSHOTS") or tmp_path)
    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(LONG)
        watch = Watch(page)
        try:
            watch.goto(f"{served['url']}/setup")
            page.get_by_role("heading", name="Import your own features").wait_for()
            idle(page, LONG)
            expect(page.get_by_text(re.compile(r"Up to \d+ MB per file"))).to_be_visible()
            inputs = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            inputs.nth(0).set_input_files(str(base / "toolkit embeddings.npz"))
            idle(page, LONG)
            inputs.nth(1).set_input_files(str(base / "labels.csv"))
            idle(page, LONG)
            page.get_by_role("button", name="Import features").click()
            expect(
                page.get_by_text("imported:toolkit-embeddings: 36 points x 5 hidden")
            ).to_be_visible()
            idle(page, LONG)
            _no_traceback(page, "setup")
            page.screenshot(path=str(shots / "import-1-setup.png"), full_page=True)

            _go(page, "Convexity", "Graph convexity per layer")
            expect(page.get_by_text("imported:toolkit-embeddings").first).to_be_visible()
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            _no_traceback(page, "convexity")
            page.screenshot(path=str(shots / "import-2-convexity.png"), full_page=True)

            _go(page, "Prune & fine-tune", "Prune & fine-tune")
            expect(page.get_by_text("needs a model").first).to_be_visible()
            _no_traceback(page, "finetune")
            watch.check()
        finally:
            browser.close()
    assert not list((Path(str(served["cache"])) / "runs").glob("*")), "a run folder was made"
    print(f"import journey: {time.monotonic() - t0:.0f} s")


def test_an_unknown_url_shows_page_not_found_with_links(served: dict[str, object]) -> None:
    """A visible 'Page not found' with a link to every page, instead of Home shown as if asked for (or
    a blank page, for a URL deeper than any page)."""
    server = served["url"]
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{server}/nosuchpage")
            main = page.locator('[data-testid="stMainBlockContainer"]')
            main.get_by_role("heading", name="Page not found").wait_for(timeout=60_000)
            idle(page, 60_000)
            # a server that has served the app before also opens Streamlit's own notice (a modal)
            if page.locator('[data-testid="stDialog"]').count():
                page.keyboard.press("Escape")
                expect(page.locator('[data-testid="stDialog"]')).to_have_count(0)
            expect(main.get_by_text("There is no page at /nosuchpage")).to_be_visible()
            for title in ("Home", "Setup", "Convexity", "Projections", "Compare", "Learn"):
                expect(main.get_by_role("link", name=title, exact=True)).to_be_visible()
            learn = main.get_by_role("link", name="Learn", exact=True)
            assert learn.get_attribute("href") == "learn"
            # deeper than any page: the same notice (Streamlit alone leaves such a URL blank)
            page.goto(f"{server}/convexity/extra")
            main.get_by_role("heading", name="Page not found").wait_for(timeout=60_000)
            idle(page, 60_000)
            expect(main.get_by_text("There is no page at /convexity/extra")).to_be_visible()
            if page.locator('[data-testid="stDialog"]').count():
                page.keyboard.press("Escape")
            main.get_by_role("link", name="Setup", exact=True).click()
            page.get_by_role("heading", name="Setup").first.wait_for(timeout=60_000)
            assert page.url == f"{server}/setup"
            page.goto(server)  # the root still opens Home
            page.get_by_role("heading", name="Convexity Lab").first.wait_for(timeout=60_000)
            expect(main.get_by_role("heading", name="Page not found")).to_have_count(0)
        finally:
            browser.close()
