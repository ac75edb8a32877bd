"""The server's deep-link middleware (pages/parts/deep_links.py): a browser opening a URL deeper than
any page is sent to the app's "page not found"; assets, media, components and the websocket pass."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest
import streamlit as st

from pages.parts.deep_links import NOT_FOUND, DeepLinks

REPO = Path(__file__).resolve().parents[1]


def _call(path: str, *, dest: str | None = "document", method: str = "GET", accept: str = "*/*"):
    """The middleware's answer to one request: ('redirect', location) or ('passed', path)."""
    passed: list[str] = []
    sent: list[dict] = []

    async def inner(scope, receive, send) -> None:
        passed.append(scope["path"])

    async def send(message) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request"}

    headers = [(b"accept", accept.encode())]
    if dest is not None:
        headers.append((b"sec-fetch-dest", dest.encode()))
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(DeepLinks(inner)(scope, receive, send))
    if passed:
        return "passed", passed[0]
    start = sent[0]
    assert start["status"] == 302
    return "redirect", dict(start["headers"])[b"location"].decode()


def test_a_page_navigation_deeper_than_any_page_goes_to_not_found():
    assert _call("/convexity/extra") == ("redirect", f"/{NOT_FOUND}?path=%2Fconvexity%2Fextra")
    assert _call("/a/b/c/") == ("redirect", f"/{NOT_FOUND}?path=%2Fa%2Fb%2Fc%2F")
    # a client that sends no fetch metadata: judged by what it accepts
    assert _call("/convexity/extra", dest=None, accept="text/html,*/*")[0] == "redirect"


@pytest.mark.parametrize(
    ("path", "dest", "method"),
    [
        ("/convexity", "document", "GET"),  # a page
        ("/", "document", "GET"),
        ("/convexity/static/js/index.js", "script", "GET"),  # an asset, whatever its path
        ("/static/js/index.js", "document", "GET"),  # Streamlit's own routes, even opened directly
        ("/_stcore/health", "document", "GET"),
        ("/app/static/icon.png", "document", "GET"),
        ("/media/abc.csv", "document", "GET"),  # a download
        ("/component/x/index.html", "iframe", "GET"),
        ("/convexity/extra", "document", "POST"),
        ("/convexity/extra", None, "GET"),  # neither a document fetch nor asking for HTML
    ],
)
def test_everything_else_passes(path: str, dest: str | None, method: str):
    assert _call(path, dest=dest, method=method) == ("passed", path)


def test_streamlit_run_finds_the_server_and_importing_runs_no_page(capfd: pytest.CaptureFixture):
    spec = importlib.util.spec_from_file_location("convexity_lab_entry", REPO / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)  # as `streamlit run` imports it: no page code runs
    finally:
        del sys.modules[spec.name]
    assert "ScriptRunContext" not in capfd.readouterr().err  # no Streamlit call outside a run
    assert isinstance(module.app, st.App)  # its middleware is exercised in test_import_browser
    assert [p.url_path for p in module.PAGES][:2] == ["home", "setup"]
