"""Convexity Lab: entry point and navigation. Run with ``streamlit run app.py``."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Convexity Lab", page_icon=":material/hub:", layout="wide")

PAGES = [
    st.Page(
        "pages/playground.py",
        title="Convexity playground",
        icon=":material/scatter_plot:",
        default=True,
    ),
]

st.navigation(PAGES).run()
