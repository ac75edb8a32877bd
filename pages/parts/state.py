"""Session-state choices shared by every page: defaults, the stored Setup choice, keeping values across pages."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitWidgetAlreadyInstantiatedError

from core.models import MODELS

DEFAULT_MODEL = "whisper-tiny.en-offline"

# Choices every page reads; a page's own controls declare their defaults in that page (init_state(...)).
DEFAULTS: dict[str, Any] = {
    "model": DEFAULT_MODEL,
    "custom_model": "",  # a hub id or local folder typed by the user (overrides "model")
    "trust_remote_code": False,
    "dataset": "sample",
    "root": "",
    "split": "all",
    "max_clips": 0,  # 0 = all clips
    "whisper_input": "trimmed",
    "feature_key": None,
    # the convexity settings: the Convexity page sets them, Prune & fine-tune and Benchmarks use them
    "cx_k": 10,
    "cx_precision": "± 0.005",
    "cx_fraction": 0.95,
    "img_format": "png",  # what a figure's camera button downloads
    # Prune & fine-tune's controls (that page declares no defaults of its own)
    "ft_task": "words",
    "ft_epochs": 3,
    "ft_lr": 2e-4,
    "ft_batch": 16,
    "ft_train_clips": 0,  # 0 = the whole train split
    "ft_eval_clips": 0,
    "ft_prune": None,  # None = the convexity suggestion
}

SETUP_KEYS = ("model", "custom_model", "dataset", "root", "split", "max_clips", "whisper_input")
_KEPT = "_kept_keys"  # session-state names of every default declared so far in this session


def _leave_pages_directory_mode() -> None:
    """Rerun through app.py's st.navigation if Streamlit ran a page directly (its legacy pages/ mode).

    Streamlit 1.67 still runs a script found in ``pages/`` by itself (``PagesManager.uses_pages_directory``,
    set while a ``pages/`` folder exists and ``st.navigation`` has not run in the process: no wide layout,
    a file-name sidebar) when the first visitor of a fresh server opens a deep link such as /convexity.
    There is no public switch for it; the flag is what ``st.navigation`` itself clears.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # internal module moved: nothing to fix
        return
    if "_navigation_checked" in st.session_state:
        return  # only a session's first run: a rerun there loses no widget event
    st.session_state["_navigation_checked"] = True
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def _stored_choice() -> dict[str, Any]:
    """Session-state values of the last explicit Setup choice on disk ({} if none)."""
    from core.io import load_choice

    choice = load_choice()
    if choice is None or choice.model not in MODELS:
        return {}
    return {k: getattr(choice, k) for k in SETUP_KEYS} | {"feature_key": choice.feature_key}


def remember_choice(feature_key: str, **overrides: Any) -> None:
    """Use ``feature_key`` and store the Setup choice behind it (an explicit user choice) for new sessions."""
    from core.io import SetupChoice, save_choice

    state = st.session_state
    values = {k: state[k] for k in SETUP_KEYS} | overrides
    values["max_clips"] = int(values["max_clips"] or 0)
    state.feature_key = feature_key
    save_choice(SetupChoice(feature_key=feature_key, **values))


def session_id() -> str:
    """A random id of this browser session (kept in its state), e.g. to show a job's error only to
    the session that started it."""
    state = st.session_state
    if "_session_id" not in state:
        import uuid

        state["_session_id"] = uuid.uuid4().hex
    return str(state["_session_id"])


def init_state(page_defaults: Mapping[str, Any] | None = None) -> None:
    """Fill in choices once per session (pages call this first): the stored Setup choice, else defaults.

    ``page_defaults``: the calling page's own controls. Every declared value is re-assigned on every
    page's run, so a widget's value survives while its page is not shown.
    """
    _leave_pages_directory_mode()
    state = st.session_state
    if "_choice_loaded" not in state:
        state["_choice_loaded"] = True
        for name, value in _stored_choice().items():
            state.setdefault(name, value)
    defaults = DEFAULTS | dict(page_defaults or {})
    kept = set(state.get(_KEPT, ())) | set(defaults)
    state[_KEPT] = kept
    for name in kept:
        if name in state:
            # re-assign so Streamlit keeps a widget's value off its page (a widget this run already
            # drew keeps it anyway, and refuses the assignment)
            with contextlib.suppress(StreamlitWidgetAlreadyInstantiatedError):
                state[name] = state[name]
        elif name in defaults:
            state[name] = defaults[name]
