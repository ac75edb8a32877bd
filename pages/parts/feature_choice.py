"""The feature set a page shows: the one chosen on Setup, how it is named, and the model sizes Setup lists."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.data import FeatureSet
from core.errors import LabError
from pages.parts.cached import cached_feature_list, feature_set
from pages.parts.messages import one_line
from pages.parts.state import init_state


def current_features(page_defaults: dict[str, Any] | None = None) -> FeatureSet | None:
    """The feature set chosen on Setup (this session's, else the last stored choice); None with a hint."""
    init_state(page_defaults)
    key = st.session_state.feature_key
    if key is None:
        if cached_feature_list():
            st.info("No feature set chosen yet: pick or extract one on the Setup page.")
        else:
            st.info("No features yet: extract some on the Setup page first.")
        st.page_link("pages/setup.py", label="Go to Setup", icon=":material/tune:")
        return None
    try:
        return feature_set(key)
    except LabError as exc:
        st.error(
            f"Cannot load cached features {key[:8]}: {one_line(exc)} Re-extract them on Setup."
        )
        st.session_state.feature_key = None
        return None


def features_caption(fs: FeatureSet) -> None:
    """A caption naming the feature set the page shows."""
    st.caption(f"Features: {fs.info.label()}. Change them on the Setup page.")
