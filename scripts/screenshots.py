"""Screenshots of dashboard pages for the README, taken in a real browser (Chromium via Playwright).

    python scripts/screenshots.py home=docs/home.png sweep=docs/sweep.png [--width 1280 --height 900]

Each argument is URL_PATH=FILE (the page's url path in app.py). The dashboard is served on a free
127.0.0.1 port with this checkout's cache (stored results show as they would for a user); a page is
shot once Streamlit is idle and its charts have drawn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io.paths import cache_dir  # noqa: E402
from tests.helpers.app_server import running_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def shoot(url: str, shots: list[tuple[str, Path]], width: int, height: int) -> None:
    """Open each page and save a full-page PNG."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": height})
        for path, out in shots:
            page.goto(f"{url}/{path}")
            page.wait_for_selector('[data-testid="stMain"] h1', timeout=300_000)  # the app has run
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=600_000)
            page.wait_for_timeout(2500)  # plotly draws after the script run
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            print(f"{path} -> {out}")
        browser.close()


def main() -> None:
    """Parse URL_PATH=FILE pairs and take the screenshots."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("shots", nargs="+", help="URL_PATH=FILE, e.g. home=docs/home.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    shots = []
    for item in args.shots:
        path, sep, out = item.partition("=")
        if not sep or not out:
            parser.error(f"expected URL_PATH=FILE, got {item!r}")
        shots.append((path.strip("/"), Path(out)))
    with running_app(cache_dir()) as url:
        shoot(url, shots, args.width, args.height)


if __name__ == "__main__":
    main()
