"""Convexity Lab: entry point and navigation. Run with ``streamlit run app.py``."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

# a local favicon: a ":material/...:" or emoji page icon makes the browser fetch it from a CDN
ICON = Path(__file__).resolve().parent / "docs" / "favicon.png"
st.set_page_config(page_title="Convexity Lab", page_icon=str(ICON), layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
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
    st.Page(
        "pages/benchmarks.py",
        title="Benchmarks",
        icon=":material/leaderboard:",
        url_path="benchmarks",
    ),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
]

st.navigation(PAGES).run()
