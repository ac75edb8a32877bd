"""An ASGI middleware for Streamlit's server: a browser opening a URL deeper than one page
(``/convexity/extra``) is sent to the dashboard's "page not found", not to a blank page.

Streamlit answers any unknown path with its ``index.html``, which loads its scripts by relative path;
one level down those resolve to ``/convexity/static/js/...``, are answered with ``index.html`` again,
and the page stays blank (streamlit/streamlit#8013). Streamlit has no setting for it, so the server
redirects such a navigation to ``/not-found?path=...`` (one level, which the app shows as not found).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

NOT_FOUND = "not-found"  # the URL path the app shows "page not found" at
# first path segments the server itself routes (assets, the websocket, static files, media, components)
SERVER_PREFIXES = frozenset({"_stcore", "static", "app", "media", "component", "components"})


def is_page_navigation(scope: Scope) -> bool:
    """A browser loading a document (not an asset, a download of media or a component's frame)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    destination = headers.get("sec-fetch-dest")
    if destination is not None:
        return destination == "document"
    return "text/html" in headers.get("accept", "")


def too_deep(path: str) -> bool:
    """A path of two or more segments outside the server's own routes (no page is that deep)."""
    parts = [p for p in path.split("/") if p]
    return len(parts) >= 2 and parts[0] not in SERVER_PREFIXES


def not_found_location(path: str) -> str:
    """Where a too-deep path is sent: the app's not-found page, naming the path asked for."""
    return f"/{NOT_FOUND}?{urlencode({'path': path})}"


class DeepLinks:
    """Redirects a page navigation to a too-deep path (302) to the not-found page; passes the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if (
            scope["type"] == "http"
            and scope.get("method") in ("GET", "HEAD")
            and too_deep(scope.get("path", ""))
            and is_page_navigation(scope)
        ):
            location = not_found_location(scope["path"])
            await send(
                {
                    "type": "http.response.start",
                    "status": 302,
                    "headers": [(b"location", location.encode()), (b"cache-control", b"no-cache")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)
