"""The run launchers' "Run on: local | Ray cluster" choice (Prune & fine-tune, Prune sweep).

A widget only: which executor and address become the run's ExecutorSpec through
:func:`core.runs.executors.launch_spec`, the same path the CLI's ``--executor``/``--address`` take.
"""

from __future__ import annotations

import streamlit as st

from core.errors import LabError
from core.runs import (
    LAUNCH_CHOICES,
    ExecutorSpec,
    default_address,
    launch_choice_default,
    launch_spec,
)
from pages.parts.messages import one_line


def run_on_defaults(prefix: str) -> dict[str, str]:
    """The choice's session-state defaults, for the page's ``init_state`` (kept while it is not shown)."""
    return {f"{prefix}_run_on": launch_choice_default(), f"{prefix}_ray_address": default_address()}


def run_on(prefix: str) -> ExecutorSpec | None:
    """Radio + Ray address field; the chosen ExecutorSpec, or None (its one-line error shown)."""
    state = st.session_state
    for name, value in run_on_defaults(prefix).items():
        state.setdefault(name, value)
    a, b = st.columns([1, 2])
    choice = a.radio("Run on", list(LAUNCH_CHOICES), horizontal=True, key=f"{prefix}_run_on")
    address = b.text_input(
        "Ray address",
        key=f"{prefix}_ray_address",
        help="auto (a cluster started on this machine with `ray start --head`), host:6379 or "
        "ray://host:10001; used only for Ray. See the README, 'Running on a cluster'.",
    )
    try:
        return launch_spec(choice, address)
    except LabError as exc:
        st.error(one_line(exc))
        return None
