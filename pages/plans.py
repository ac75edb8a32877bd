"""Pruning plans: the layer-similarity map with its redundancy blocks, a plan picker, plans of equal size
scored without retraining beside what fine-tuning and benchmarks measured, and links to run the plan."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import LabError
from core.geometry import suggest_prune_point
from core.models import PruningPlan, parse_plan
from core.results import captions
from core.training import PlansRequest, ProbeOptions, StoredPlans, read_plans_table
from pages.parts.cached import background_tasks, current_convexity, feature_set
from pages.parts.figures import show
from pages.parts.messages import one_line
from pages.parts.plans_figures import similarity_figure
from pages.parts.plans_view import (
    PlansWork,
    launch_links,
    plan_rows,
    start_plans_work,
)
from pages.parts.state import init_state

FORM_DEFAULTS = {
    "pl_similarity": "linear_cka",
    "pl_threshold": 0.9,
    "pl_labels": "word",
    "pl_stability": 20,
    "pl_source": "detected block",
    "pl_custom": "",
}
THRESHOLDS = {"linear_cka": 0.9, "mutual_knn": 0.5}
SOURCES = ("convexity top-p", "detected block", "custom")


def source_section() -> Any | None:
    """The chosen feature set (from Setup), or None with a line saying what to do."""
    key = st.session_state.get("feature_key")
    if key is None:
        st.info("Choose or extract features on the Setup page; plans are computed on that model.")
        return None
    try:
        fs = feature_set(key)
    except LabError as exc:
        st.error(f"Cannot read the chosen features: {one_line(exc)}")
        return None
    info = fs.info
    if not info.model_key:
        st.info("These features were imported without a model; plans need a model to prune.")
        return None
    st.caption(
        f"Features: {info.describe} · {info.dataset}, {info.n_clips} clips · key {fs.key[:12]}"
    )
    return fs


def request_section() -> PlansRequest:
    """The similarity map, threshold, labels and stability draws of the table."""
    state = st.session_state
    c1, c2, c3, c4 = st.columns([1.2, 1, 1, 1])
    with c1:
        similarity = st.selectbox(
            "Similarity map",
            list(THRESHOLDS),
            key="pl_similarity",
            format_func=lambda s: s.replace("_", " "),
        )
    if state.get("_pl_sim") not in (None, similarity):  # another map: its own default threshold
        state.pl_threshold = THRESHOLDS[similarity]
    state["_pl_sim"] = similarity
    with c2:
        st.number_input("Block threshold", -1.0, 1.0, step=0.05, key="pl_threshold")
    with c3:
        st.radio("Probe labels", ["word", "speaker"], key="pl_labels", horizontal=True)
    with c4:
        st.number_input("Half-samples (stability)", 0, 100, key="pl_stability")
    return PlansRequest(
        similarity=similarity,
        threshold=float(state.pl_threshold),
        options=ProbeOptions(labels=str(state.pl_labels)),
        stability_resamples=int(state.pl_stability),
    )


def _work_key(fs: Any, request: PlansRequest) -> str:
    """The background registry's key of one table (features and request), shared by every session."""
    return f"plans:{fs.key}:{request.to_dict()}"


def table_section(fs: Any, request: PlansRequest) -> StoredPlans | None:
    """The stored table, else a button computing it in the background (progress, time left, cancel)."""
    stored = read_plans_table(fs, request)
    if stored is not None:
        return stored
    tasks = background_tasks()
    key = _work_key(fs, request)
    work = tasks.get(key)
    if work is not None:
        watch(key, work)
        return None
    show_outcome()
    st.info(
        "No plans table for these settings yet. Computing it scores each plan with the probes; a plan "
        "whose output is not a cached hidden state runs its pruned encoder over the clips once "
        "(minutes on a CPU)."
    )
    if st.button("Compute the plans table", type="primary", key="pl_compute"):
        tasks[key] = start_plans_work(fs.info, request, fs)
        st.rerun()
    return None


def show_outcome() -> None:
    """Say once how the last background table ended when it stored nothing (cancelled or failed)."""
    outcome = st.session_state.pop("_pl_outcome", None)
    if outcome is not None:
        (st.warning if outcome.startswith("Cancelled") else st.error)(outcome)


def watch(key: str, work: PlansWork) -> None:
    """Progress of the background table, refreshed every second, with a cancel button; when it ends, the
    page reruns (showing the table, or why there is none)."""

    @st.fragment(run_every=1.0)
    def live() -> None:
        if work.finished:
            background_tasks().pop(key, None)
            outcome = work.outcome()
            if outcome is not None:
                st.session_state["_pl_outcome"] = outcome
            st.rerun()
        st.progress(work.fraction(), text=work.text())
        if st.button("Cancel", key="pl_cancel"):
            work.stop.set()

    live()


def map_section(stored: StoredPlans, dropped: tuple[int, ...]) -> None:
    """The similarity map with the blocks and their stability, and the blocks as a list."""
    table = stored.table
    lines = captions([stored.provenance]) + [
        f"store entry {stored.key[:12]}; stability: "
        + (
            f"the same rule on {table.stability.n_resamples} seeded half-samples "
            f"({table.stability.scheme})"
            if table.stability is not None
            else "not measured (no block to find again, none asked, or too few units to halve)"
        )
    ]
    show(similarity_figure(table, lines, dropped), key="pl_map")
    if not table.redundancy.blocks:
        st.caption(
            f"No block at threshold {table.redundancy.threshold:g}: no run of layers is pairwise that "
            "similar. Lower the threshold to see the strongest runs."
        )


def _suggested(fs: Any, labels: str) -> int | None:
    """The Convexity page's suggested prune point for ``labels`` (word or speaker), its curve computed
    when missing; None with a line saying why when there is none."""
    try:
        curve = current_convexity(fs.key)[labels]
        return suggest_prune_point(curve.scores, float(st.session_state.cx_fraction))
    except LabError as exc:
        st.warning(f"No convexity suggestion: {one_line(exc)}")
        return None


def picker_section(stored: StoredPlans, fs: Any) -> PruningPlan | None:
    """The plan to look at: the convexity top-p, a detected block's plan, or a typed one."""
    table = stored.table
    n_layers = table.redundancy.n_layers
    source = st.radio("Plan", SOURCES, key="pl_source", horizontal=True)
    try:
        if source == "convexity top-p":
            if not st.session_state.get("pl_use_curve"):
                st.caption(
                    "The suggestion is the Convexity page's prune point at its k, precision and "
                    "fraction (its curve is computed here if it is not stored)."
                )
                if not st.button("Use the convexity suggestion", key="pl_curve_btn"):
                    return None
                st.session_state["pl_use_curve"] = True
            p = _suggested(fs, str(table.options.get("labels", "word")))
            if p is None:
                return None
            return PruningPlan.top(p, n_layers)
        if source == "detected block":
            blocks = table.redundancy.blocks
            if not blocks:
                st.caption("No detected block to pick.")
                return None
            labels = [f"layers {b.first}-{b.last}: drop {b.first + 1}-{b.last}" for b in blocks]
            if len(blocks) > 1:
                labels.append("all blocks together")
            pick = st.selectbox(
                "Block", range(len(labels)), format_func=lambda i: labels[i], key="pl_block"
            )
            dropped = table.redundancy.dropped if pick == len(blocks) else blocks[pick].dropped
            return PruningPlan.drop(dropped, n_layers)
        text = st.text_input("Plan, e.g. 'drop 3-4' or 'keep 1-2, 5-12'", key="pl_custom")
        return parse_plan(text, n_layers) if text.strip() else None
    except LabError as exc:
        st.error(one_line(exc))
        return None


def plans_section(stored: StoredPlans, fs: Any, plan: PruningPlan, request: PlansRequest) -> None:
    """Plans keeping as many layers as ``plan``: parameters, retraining-free scores, fine-tuned accuracy,
    cost ratio; a plan the table lacks can be scored (stored as a table of its own)."""
    table = stored.table
    if all(s.plan != plan for s in table.plans):
        extra = replace(request, extra=(plan.kept,))
        found = read_plans_table(fs, extra)
        if found is None:
            st.caption(f"{plan.describe()} is not in the table yet.")
            work = background_tasks().get(_work_key(fs, extra))
            if work is not None:
                watch(_work_key(fs, extra), work)
                return
            show_outcome()
            if st.button(f"Score {plan.describe()} without retraining", key="pl_score_extra"):
                background_tasks()[_work_key(fs, extra)] = start_plans_work(fs.info, extra, fs)
                st.rerun()
            return
        stored = found
        table = found.table
    info = fs.info
    task = "words" if table.options.get("labels") == "word" else "speakers"
    rows = plan_rows(stored, plan, info.model_key, task)
    frame = pd.DataFrame(
        [
            {
                "plan": ("▶ " if r.picked else "") + r.plan.describe(),
                "kind": r.kind,
                "layers": r.plan.size,
                "parameters": f"{r.parameters / 1e6:.2f} M",
                **{f"{probe} (vs full)": cell for probe, cell in r.scores.items()},
                "fine-tuned test acc.": r.finetuned,
                "cost (pruned / full)": r.cost_ratio,
            }
            for r in rows
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    first = table.plans[0]
    st.caption(
        f"Retraining-free: {', '.join(table.probes)} probes fitted on {first.n_train} train clips, "
        f"tested on {first.n_test}; {table.interval}. Fine-tuned: the newest finished fine-tune of this "
        "model, task and plan; cost: batch-1 inference latency from the newest side-by-side benchmark. "
        + " ".join(captions([stored.provenance]))
    )


def launch_section(plan: PruningPlan) -> None:
    """Links that open the Fine-tune and Benchmarks pages with the plan filled in."""
    cols = st.columns(2)
    for col, (url, label) in zip(cols, launch_links(plan).items(), strict=True):
        with col:
            st.link_button(label, url)


def main() -> None:
    """The page: features, table settings, the map, the picker, plans of equal size, launch links."""
    init_state(FORM_DEFAULTS)
    st.title("Pruning plans")
    st.caption(
        "Cut after the convexity peak, or drop a block of near-identical layers? Plans of equal size side "
        "by side: accuracy without retraining (frozen pruned encoder + probes), and where runs exist, "
        "fine-tuned accuracy and cost."
    )
    fs = source_section()
    if fs is None:
        return
    try:
        request = request_section()
    except LabError as exc:
        st.error(one_line(exc))
        return
    stored = table_section(fs, request)
    if stored is None:
        return
    plan = picker_section(stored, fs)
    map_section(stored, plan.dropped if plan is not None else ())
    if plan is None:
        return
    plans_section(stored, fs, plan, request)
    launch_section(plan)


main()
