"""The launchers' pruning-plan field (Prune & fine-tune, Prune sweep, Benchmarks).

A text field beside the prune point: empty means the prune point decides; ``drop 3-4`` or
``keep 1-2, 5-12`` keeps any layers. It is prefilled from the page URL's ``plan`` query parameter
(``/finetune?plan=drop+3-4``: how other pages link a plan to its launch), each time that parameter
changes, so a link always lands with its plan while a typed plan is kept across reruns.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.errors import LabError
from core.models import PruningPlan
from core.training import run_plan
from pages.parts.messages import one_line

QUERY = "plan"  # the URL query parameter that prefills the field
HELP = (
    "Any transformer layers to keep, in order: 'drop 3-4' or 'keep 1-2, 5-12' (1-based). "
    "Leave empty to use the prune point."
)


@dataclass(frozen=True)
class PlanChoice:
    """The field's plan (None: empty, the prune point decides) or why it is refused."""

    plan: PruningPlan | None
    error: str | None = None

    @property
    def text(self) -> str | None:
        """The plan in the words runs record it by (``drop 3-4``), or None."""
        return self.plan.describe() if self.plan is not None else None


def prefill_from_query(key: str) -> None:
    """Put the URL's ``plan`` parameter into the field ``key`` when the parameter is new."""
    state = st.session_state
    query = st.query_params.get(QUERY)
    seen = f"_{key}_query"
    if query is not None and state.get(seen) != query:
        state[key] = str(query)
        state[seen] = query
    state.setdefault(key, "")


def plan_field(key: str, n_layers: int, label: str = "Pruning plan (optional)") -> PlanChoice:
    """The plan text field for a model of ``n_layers`` layers, checked as typed (one-line error)."""
    prefill_from_query(key)
    text = str(st.text_input(label, key=key, placeholder="e.g. drop 3-4", help=HELP)).strip()
    if not text:
        return PlanChoice(None)
    try:
        plan = run_plan(None, text, n_layers)
    except LabError as exc:
        st.error(f"Plan: {one_line(exc)}")
        return PlanChoice(None, one_line(exc))
    st.caption(f"Plan: {plan.describe()}, {plan.size} of {n_layers} transformer layers kept.")
    return PlanChoice(plan)
