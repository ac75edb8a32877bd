"""An unknown URL says so in a real browser: a visible 'Page not found' with a link to every page,
instead of Home shown as if it had been asked for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.app_server import running_app
from tests.helpers.browser import ARGS, CHROMIUM, idle

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with running_app(tmp_path_factory.mktemp("nf-cache")) as url:
        yield url


def test_an_unknown_url_shows_page_not_found_with_links(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{server}/nosuchpage")
            page.get_by_role("heading", name="Page not found").wait_for(timeout=60_000)
            idle(page, 60_000)
            expect(page.get_by_text("There is no page at /nosuchpage")).to_be_visible()
            main = page.locator('[data-testid="stMainBlockContainer"]')
            for title in ("Home", "Setup", "Convexity", "Projections", "Compare", "Learn"):
                expect(main.get_by_role("link", name=title, exact=True)).to_be_visible()
            learn = main.get_by_role("link", name="Learn", exact=True)
            assert learn.get_attribute("href") == "learn"
            page.goto(server)  # the root still opens Home
            page.get_by_role("heading", name="Convexity Lab").first.wait_for(timeout=60_000)
            expect(page.get_by_role("heading", name="Page not found")).to_have_count(0)
        finally:
            browser.close()
