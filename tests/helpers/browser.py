"""Driving the dashboard in Debian's Chromium with Playwright: browser path and flags, waiting for a
script run to end, reading a metric, timing a clicked clip, and ``Watch`` (fails on outside requests
and console errors)."""

from __future__ import annotations

import re
import time
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LONG = 240_000  # ms: model loads and numba/UMAP compilation on 2 busy cores
# Streamlit's frontend, opened at /<page>, first probes /<page>/_stcore/{health,host-config} (in case the app
# is served under that base path) and falls back to /_stcore/...: those two 404s are its protocol, not ours.
BASE_PATH_PROBE = re.compile(r"^/[a-z]+/_stcore/(health|host-config)$")


def idle(page, timeout: float = LONG) -> None:
    """Wait until the script run finished: Streamlit's "running" status widget gone."""
    page.wait_for_timeout(300)  # let a just-triggered rerun show its indicator
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout)
    page.locator('[data-testid="stApp"]').wait_for(timeout=timeout)
    # spinners and progress bars (long work) and skeletons (elements not drawn yet) gone too
    page.wait_for_function(
        "!document.querySelector('[data-testid=stSpinner], [data-testid=stSkeleton], "
        "[data-testid=stProgress]')",
        timeout=timeout,
        polling=250,
    )


class Watch:
    """Records what must not happen in an offline lecture: failed or outside requests, console errors."""

    def __init__(self, page) -> None:
        self.page = page
        self.problems: list[str] = []
        self.navigating = False
        self.probes = 0
        self.not_found_logs = 0
        page.on("request", self._request)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def _request(self, request) -> None:
        url = urlparse(request.url)
        if url.scheme not in ("data", "blob") and url.hostname not in ("127.0.0.1", "localhost"):
            self.problems.append(f"outside request: {request.url}")

    def goto(self, url: str) -> None:
        """Open ``url``; the previous page's requests that this navigation aborts are not failures."""
        self.navigating = True
        try:
            self.page.goto(url)
        finally:
            self.navigating = False

    def reload(self) -> None:
        """Reload the page, as the browser's reload button does."""
        self.navigating = True
        try:
            self.page.reload()
        finally:
            self.navigating = False

    def _failed(self, request) -> None:
        if self.navigating and request.failure == "net::ERR_ABORTED":
            return  # cancelled by our own page.goto, not a failed load
        self.problems.append(f"failed: {request.url} {request.failure}")

    def _response(self, response) -> None:
        if response.status < 400:
            return
        if response.status == 404 and BASE_PATH_PROBE.match(urlparse(response.url).path):
            self.probes += 1
        else:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        if "status of 404" in msg.text:
            self.not_found_logs += 1  # matched against the probes in check()
        else:
            self.problems.append(f"console error: {msg.text}")

    def check(self) -> None:
        """Fail on anything recorded (404 console lines beyond the base-path probes included)."""
        extra = self.not_found_logs - self.probes
        assert not self.problems and extra <= 0, self.problems + [f"{extra} unexplained 404 logs"]


def click_clip_and_time(page, x: float, y: float, timeout: float = LONG) -> float:
    """Seconds from a click on a Projections point until another clip's path section shows and the
    rerun ended (the point is hovered first: plotly clicks the hovered point)."""
    chosen = page.locator("text=/\\(clip \\d+\\)/")
    before = chosen.first.inner_text() if chosen.count() else ""
    page.mouse.move(x, y)
    page.wait_for_timeout(400)
    t0 = time.monotonic()
    page.mouse.click(x, y)
    page.wait_for_function(
        """(before) => {
          const el = [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]
            .find(e => /\\(clip \\d+\\)/.test(e.innerText));
          return el && el.innerText !== before
            && [...document.querySelectorAll('h3')].some(h => h.innerText.includes('Shortest path'));
        }""",
        arg=before,
        timeout=120_000,
        polling=20,
    )
    idle(page, timeout)
    return time.monotonic() - t0 - 0.3  # idle's initial settling wait


def metric(page, label: str):
    """The value element of the metric called ``label``."""
    box = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label)
    )
    return box.locator('[data-testid="stMetricValue"]').first
