"""Convexity Lab: entry point and navigation. Run with ``streamlit run app.py``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st

# A local icon: an emoji or ":material/...:" page icon makes the browser fetch it from a CDN (offline:
# errors). It is served as a static file (a URL on this server), not as a per-run media file, which a
# rerun started from a fragment can drop while the browser refetches it (a 404 in the console).
ICON = Path(__file__).parent / "static" / "icon.png"


def _page_icon() -> str:
    """This server's URL of the static icon; the file itself where no request URL is known (tests)."""
    url = urlsplit(st.context.url or "")
    return f"{url.scheme}://{url.netloc}/app/static/icon.png" if url.netloc else str(ICON)


st.set_page_config(page_title="Convexity Lab", page_icon=_page_icon(), layout="wide")

# Projector-friendly layout (a 1024 x 768 lecture screen): less empty space above the title, labels and
# segmented controls that wrap instead of being cut off, headline numbers a little smaller.
st.html(
    """<style>
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
)

# Home lives at /home. Streamlit serves its default page at "/" only (a default page's url_path is
# reserved, not served: /home would be "Page not found"), so the default is a hidden page at "/" that
# switches to Home.
HOME = st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home")


def _requested_path() -> str:
    """The path of the URL the browser asked for ('' at the root; '' where no URL is known: tests)."""
    return urlsplit(st.context.url or "").path.strip("/")


def _not_found(path: str) -> None:
    """A visible 'page not found' for an unknown URL, with a link to every page."""
    st.title("Page not found")
    st.error(
        f"There is no page at /{path}. The pages of Convexity Lab:", icon=":material/link_off:"
    )
    for page in PAGES[:-1]:
        st.page_link(page, label=page.title, icon=page.icon)


def _root() -> None:
    """The app's root URL: open Home (keeping the query string); any other URL Streamlit could not
    match to a page lands here too and says so."""
    path = _requested_path()
    if path:
        _not_found(path)
        return
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    st.switch_page(HOME, query_params=params)


PAGES = [
    HOME,
    st.Page("pages/setup.py", title="Setup", icon=":material/tune:", url_path="setup"),
    st.Page(
        "pages/convexity.py",
        title="Convexity",
        icon=":material/show_chart:",
        url_path="convexity",
    ),
    st.Page(
        "pages/projections.py",
        title="Projections",
        icon=":material/scatter_plot:",
        url_path="projections",
    ),
    st.Page(
        "pages/finetune.py",
        title="Prune & fine-tune",
        icon=":material/content_cut:",
        url_path="finetune",
    ),
    st.Page(
        "pages/sweep.py",
        title="Prune sweep",
        icon=":material/stacked_line_chart:",
        url_path="sweep",
    ),
    st.Page("pages/plans.py", title="Pruning plans", icon=":material/view_week:", url_path="plans"),
    st.Page(
        "pages/benchmarks.py",
        title="Benchmarks",
        icon=":material/leaderboard:",
        url_path="benchmarks",
    ),
    st.Page(
        "pages/compare.py",
        title="Compare",
        icon=":material/compare_arrows:",
        url_path="compare",
    ),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    st.Page(_root, title="Convexity Lab", default=True, visibility="hidden"),
]

st.navigation(PAGES).run()
