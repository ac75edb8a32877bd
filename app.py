"""Convexity Lab: entry point and navigation. Run with ``streamlit run app.py``.

Streamlit runs this file as the app's script (as ``__main__``: ``main``); ``streamlit run`` also imports
it once to find ``app``, Streamlit's own server with one middleware (``pages/parts/deep_links.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st
from starlette.middleware import Middleware

from pages.parts.deep_links import NOT_FOUND, DeepLinks

# A local icon: an emoji or ":material/...:" page icon makes the browser fetch it from a CDN (offline:
# errors). It is served as a static file (a URL on this server), not as a per-run media file, which a
# rerun started from a fragment can drop while the browser refetches it (a 404 in the console).
ICON = Path(__file__).parent / "static" / "icon.png"


def _page_icon() -> str:
    """This server's URL of the static icon; the file itself where no request URL is known (tests)."""
    url = urlsplit(st.context.url or "")
    return f"{url.scheme}://{url.netloc}/app/static/icon.png" if url.netloc else str(ICON)


# Projector-friendly layout (a 1024 x 768 lecture screen): less empty space above the title, labels and
# segmented controls that wrap instead of being cut off, headline numbers a little smaller.
STYLE = """<style>
    [data-testid="stMainBlockContainer"] { padding-top: 2.5rem; padding-bottom: 3rem; }
    [data-testid="stMainBlockContainer"] h1 { font-size: 2.25rem; padding-top: 0.25rem; }
    [data-testid="stMetricLabel"] *, [data-testid="stWidgetLabel"] *, label[data-baseweb] *,
    [data-testid^="stBaseButton"] * {
        white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
    }
    [data-testid="stMetricValue"] { font-size: 1.75rem; }
    /* segmented controls and pills in a narrow column wrap onto a second row instead of scrolling */
    [data-testid="stButtonGroup"] > div:not([data-testid]) { flex-wrap: wrap; row-gap: 0.25rem; }
    [data-testid="stButtonGroup"] button { padding-left: 0.6rem; padding-right: 0.6rem; }
    </style>"""


@dataclass(frozen=True)
class PageSpec:
    """One page of the navigation: its script, title, icon and URL path."""

    path: str
    title: str
    icon: str
    url_path: str


# Home lives at /home. Streamlit serves its default page at "/" only (a default page's url_path is
# reserved, not served: /home would be "Page not found"), so the default is a hidden page at "/" that
# switches to Home.
PAGES = (
    PageSpec("pages/home.py", "Home", ":material/home:", "home"),
    PageSpec("pages/setup.py", "Setup", ":material/tune:", "setup"),
    PageSpec("pages/convexity.py", "Convexity", ":material/show_chart:", "convexity"),
    PageSpec("pages/projections.py", "Projections", ":material/scatter_plot:", "projections"),
    PageSpec("pages/finetune.py", "Prune & fine-tune", ":material/content_cut:", "finetune"),
    PageSpec("pages/sweep.py", "Prune sweep", ":material/stacked_line_chart:", "sweep"),
    PageSpec("pages/plans.py", "Pruning plans", ":material/view_week:", "plans"),
    PageSpec("pages/benchmarks.py", "Benchmarks", ":material/leaderboard:", "benchmarks"),
    PageSpec("pages/compare.py", "Compare", ":material/compare_arrows:", "compare"),
    PageSpec("pages/learn.py", "Learn", ":material/school:", "learn"),
)
HOME = PAGES[0]


def _requested_path() -> str:
    """The path of the URL the browser asked for ('' at the root; '' where no URL is known: tests)."""
    return urlsplit(st.context.url or "").path.strip("/")


def _not_found(path: str) -> None:
    """A visible 'page not found' for an unknown URL, with a link to every page."""
    st.title("Page not found")
    st.error(
        f"There is no page at `/{path.replace('`', '')}`. The pages of Convexity Lab:",
        icon=":material/link_off:",
    )
    for page in PAGES:
        st.page_link(page.path, label=page.title, icon=page.icon)


def _root() -> None:
    """The app's root URL: open Home (keeping the query string); any other URL Streamlit could not
    match to a page lands here too and says so."""
    path = _requested_path()
    if path == NOT_FOUND:  # where the server sends a URL deeper than any page
        path = st.query_params.get("path", "").strip("/")
    if path:
        _not_found(path)
        return
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    st.switch_page(HOME.path, query_params=params)


def navigation() -> list:
    """The pages as Streamlit pages, and the hidden root."""
    return [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES] + [
        st.Page(_root, title="Convexity Lab", default=True, visibility="hidden")
    ]


def main() -> None:
    """Page setup, the projector-friendly style and the navigation."""
    st.set_page_config(page_title="Convexity Lab", page_icon=_page_icon(), layout="wide")
    st.html(STYLE)
    st.navigation(navigation()).run()


if __name__ == "__main__":
    main()
else:  # imported by `streamlit run` for the server
    app = st.App(__file__, middleware=[Middleware(DeepLinks)])
