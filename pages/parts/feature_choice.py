"""The feature set a page shows: the one chosen on Setup, how it is named, and the model sizes Setup lists."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.data import FeatureSet
from core.errors import LabError
from pages.parts.cached import cached_feature_list, feature_set
from pages.parts.messages import one_line
from pages.parts.state import init_state


def describe_entry(meta: dict[str, Any]) -> str:
    """One-line label of a cached feature set for pickers (an imported set has no split or input mode)."""
    if meta.get("dataset") == "imported":
        return (
            f"{meta.get('model_key', '?')} · imported · {meta.get('n_clips', '?')} points · "
            f"{meta.get('n_layers', '?')} layers · {str(meta.get('key', ''))[:8]}"
        )
    sel = meta.get("selection", {})
    cap = sel.get("max_clips") or "all"
    return (
        f"{meta.get('model_key', '?')} · {meta.get('dataset', '?')} · split {sel.get('split', '?')} · "
        f"{meta.get('n_clips', '?')} clips (cap {cap}) · {meta.get('input_mode') or '-'} · "
        f"{str(meta.get('key', ''))[:8]}"
    )


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
    st.caption(f"Features: {describe_entry(fs.meta)}. Change them on the Setup page.")
