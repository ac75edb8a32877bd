"""A screenshot of a real clip's shortest path drawn on the Projections page's UMAP (Chromium, Playwright).

    CONVEXITY_LAB_CACHE=... python scripts/screenshot_clip_path.py --key b52ec8a7cb --clip 274 \\
        --out docs/projections-path.png

The feature set (with its UMAP already stored, e.g. by ``python -m core umap --key KEY``) is made the
Setup choice of the cache used, the dashboard is served on a free 127.0.0.1 port, the clip is typed into
the page's clip field and the page is shot once Streamlit is idle and the chart has drawn (a tall viewport: Streamlit's
main area scrolls inside the page, so a full-page shot would stop at the window).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.features import load_cached_features  # noqa: E402
from core.io.choice import SetupChoice, save_choice  # noqa: E402
from core.io.paths import cache_dir  # noqa: E402
from tests.helpers.app_server import running_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def idle(page) -> None:
    """Wait until the script run is over and plotly has drawn."""
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=600_000)
    page.wait_for_timeout(3000)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--key", required=True)
    p.add_argument("--clip", type=int, required=True)
    p.add_argument("--out", type=Path, default=Path("docs/projections-path.png"))
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=2000, help="tall: the page scrolls inside itself")
    args = p.parse_args()
    fs = load_cached_features(args.key)
    save_choice(SetupChoice(feature_key=str(fs.key), model=str(fs.meta.get("model_key"))))
    from playwright.sync_api import sync_playwright

    with running_app(cache_dir()) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(f"{url}/projections")
        page.wait_for_selector('[data-testid="stMain"] h1', timeout=300_000)
        idle(page)
        field = page.get_by_label("Clip (or click a point)")
        field.fill(str(args.clip))
        field.press("Enter")
        page.wait_for_timeout(1000)
        idle(page)
        for table in page.locator('[data-testid="stDataFrame"]').all():
            table.scroll_into_view_if_needed()  # the grids draw on a canvas once visible
            table.locator("canvas").first.wait_for(timeout=60_000)
        page.locator('[data-testid="stMain"] h1').scroll_into_view_if_needed()
        page.wait_for_timeout(8000)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        print(f"clip {args.clip} -> {args.out}")
        browser.close()


if __name__ == "__main__":
    main()
