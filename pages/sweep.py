"""Prune sweep: launch a background sweep (suggested, full and chosen points), watch each point, read the result."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st

from core import runs as run_store
from core.data import ClipSource
from core.errors import LabError, TrainingError
from core.models import MODELS
from core.runs import (
    RunState,
    folders,
    format_seconds,
    lifecycle,
    submit_run,
    sweep_points,
    sweep_run_view,
    sweep_runs,
    sweep_view,
)
from core.training import DataSelection, Optimiser, SweepConfig, check_trainable
from pages.parts.cached import feature_set, offline_models
from pages.parts.costs import sweep_cost_figure, sweep_result_figure, sweep_rule_text
from pages.parts.figures import show
from pages.parts.messages import one_line
from pages.parts.run_on import run_on, run_on_defaults
from pages.parts.run_plan import PlanChoice, plan_field
from pages.parts.state import DEFAULT_MODEL, init_state

LEARNING_RATES = [1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3]
# the form's values, kept in the session while another page is shown (None: set from the model)
FORM_DEFAULTS = {
    "sw_model": None,
    "sw_task": "speakers",
    "sw_points": None,
    "sw_epochs": 3,
    "sw_lr": 5e-4,
    "sw_batch": 16,
    "sw_frac": 0.95,
    "sw_train_clips": 0,
    "sw_eval_clips": 0,
    "sw_test_clips": 0,
}


def data_source() -> tuple[str | None, ClipSource]:
    """(the features' model, the clips' source: dataset, folder and rules): what the sweep trains
    on. Without a chosen feature set: no model, and the Setup choice in this session."""
    state = st.session_state
    key = state.get("feature_key")
    if key is not None:
        try:
            info = feature_set(key).info
            check_trainable(info.model_key, info.dataset)
            return info.model_key or None, info.source
        except TrainingError as exc:  # imported features: the sweep cannot train on them
            st.info(f"{one_line(exc)}. This sweep uses the model below and the Setup dataset.")
        except LabError:
            pass
    return None, ClipSource(str(state.get("dataset", "sample")), state.get("root") or None)


def _same_config(a: SweepConfig, b: SweepConfig | None) -> bool:
    """Whether a stored sweep's settings ``b`` are ``a``'s (an identical launch), but for the
    weights' pin it records at launch."""
    return b is not None and replace(b, model_identity=a.model_identity) == a


def _submit(config: dict[str, Any], executor: Any) -> None:
    """Start the sweep; the view below then shows this very run."""
    try:
        run = submit_run("sweep", config, executor)
    except LabError as exc:
        st.error(f"Could not start the sweep: {one_line(exc)}")
        return
    st.session_state["sw_pick"] = Path(run).name
    st.session_state.pop("sw_pending", None)
    st.success(f"Sweep {Path(run).name} started in the background.")


@dataclass(frozen=True)
class _Target:
    """What the sweep prunes: the model, the task and the extra prune points chosen."""

    model: str
    task: str
    others: list[int]
    n_layers: int


@dataclass(frozen=True)
class _Training:
    """How each point is fine-tuned, and the threshold rule's fraction."""

    epochs: int
    lr: float
    batch: int
    fraction: float


@dataclass(frozen=True)
class _Clips:
    """How many clips of each split the sweep uses (0: the whole split)."""

    train: int
    validation: int
    test: int


def _model_choices(features_model: str | None) -> list[str]:
    """The models the form offers (the features' own model first), with the chosen one kept valid."""
    state = st.session_state
    models = offline_models() or [DEFAULT_MODEL]
    if features_model and features_model not in models:
        models = [features_model, *models]  # the features' own model (a local folder, a hub id)
    if state.get("sw_model") not in models:
        state["sw_model"] = models[0]
    return models


def _target_row(models: list[str]) -> _Target:
    """The form's first row: model, task and the other prune points (valid for the chosen model)."""
    state = st.session_state
    a, b, c = st.columns(3)
    model = a.selectbox("Model", models, key="sw_model")
    task = b.radio(
        "Task",
        ["speakers", "words"],
        horizontal=True,
        key="sw_task",
        help="Speakers is where pruning pays for Whisper: speaker convexity peaks early.",
    )
    n_layers = MODELS[model].n_layers if model in MODELS else 12
    choices = list(range(1, n_layers))
    if state.get("sw_points") is None:
        state["sw_points"] = [1] if n_layers > 1 else []
    state["sw_points"] = [p for p in state["sw_points"] if p in choices]
    others = c.multiselect(
        "Other prune points",
        choices,
        key="sw_points",
        help="Always swept: the suggested point and the full model.",
    )
    return _Target(model, task, others, n_layers)


def _training_row() -> _Training:
    """The form's second row: epochs, learning rate, batch size and the threshold rule's fraction."""
    d, e, f, g = st.columns(4)
    epochs = d.number_input("Epochs", 1, 50, key="sw_epochs")
    lr = e.select_slider(
        "Learning rate", LEARNING_RATES, key="sw_lr", format_func=lambda v: f"{v:.0e}"
    )
    batch = f.number_input("Batch size", 1, 256, key="sw_batch")
    fraction = g.slider("Threshold rule: fraction of the max", 0.5, 1.0, key="sw_frac")
    return _Training(int(epochs), float(lr), int(batch), float(fraction))


def _clips_row() -> _Clips:
    """The form's third row: how many training, validation and test clips to use."""
    h, i, j = st.columns(3)
    train_clips = h.number_input(
        "Training clips (0 = whole train split)", 0, 100000, step=35, key="sw_train_clips"
    )
    eval_clips = i.number_input(
        "Validation clips (selection; 0 = whole split)",
        0,
        100000,
        step=35,
        key="sw_eval_clips",
        help="Clips of the validation split scored every epoch to pick each point's checkpoint.",
    )
    test_clips = j.number_input(
        "Test clips (0 = whole test split)",
        0,
        100000,
        step=35,
        key="sw_test_clips",
        help="Clips of the test split each point's chosen checkpoint is scored on.",
    )
    return _Clips(int(train_clips), int(eval_clips), int(test_clips))


def _data_caption(source: ClipSource) -> str:
    """The line under the form saying which clips the sweep reads and how it splits them."""
    return (
        f"Data: {source.dataset}"
        + (f" in {source.root}" if source.root else "")
        + (f", speaker rule {source.speaker_regex}" if source.speaker_regex else "")
        + ". Model selection on the validation split, scores on the test split. For speakers the split "
        "is per speaker (unseen clips of seen speakers, as in the paper); for words it is by speaker "
        "(unseen speakers). The prune point is suggested from the pretrained convexity on the train split."
    )


def _sweep_config(
    source: ClipSource, target: _Target, plan: PlanChoice, training: _Training, clips: _Clips
) -> SweepConfig:
    """The SweepConfig the form's values describe: suggested, full, chosen points, then the plan."""
    planned = [plan.text] if plan.text is not None else []
    return SweepConfig(
        model=target.model,
        data=DataSelection(
            source,
            task=target.task,
            eval_split="validation",
            test_split="test",
            max_train_clips=clips.train or None,
            max_eval_clips=clips.validation or None,
            max_test_clips=clips.test or None,
        ),
        optimiser=Optimiser(epochs=training.epochs, lr=training.lr, batch_size=training.batch),
        points=["suggested", "full", *sorted(int(p) for p in target.others), *planned],
        fraction=training.fraction,
    )


def _launch(config: SweepConfig, executor: Any) -> None:
    """Submit the sweep, unless an identical one is queued or running: then ask first (and show it)."""
    state = st.session_state
    twins = [r for r in sweep_runs() if r.active and _same_config(config, r.settings)]
    if twins:  # the view shows the identical sweep (a double click's first sweep) meanwhile
        state["sw_pending"] = {"config": config.to_dict(), "twin": twins[0].run_id}
        state["sw_pick"] = twins[0].run_id
    else:
        _submit(config.to_dict(), executor)


def _confirm_twin(pending: dict[str, Any], executor: Any) -> None:
    """Ask whether to start a sweep identical to one already queued or running, or watch that one."""
    state = st.session_state
    st.warning(
        f"An identical sweep is already queued or running: {pending['twin']}. Start another one?"
    )
    y, n = st.columns(2)
    if y.button("Start another identical sweep", key="sw_confirm"):
        _submit(pending["config"], executor)
    if n.button("No, watch the one running", key="sw_decline"):
        state["sw_pick"] = pending["twin"]
        state.pop("sw_pending", None)
        st.rerun()


def launch_form() -> None:
    """The sweep's settings and the button that submits it as a background job (never on Enter)."""
    features_model, source = data_source()
    models = _model_choices(features_model)
    with st.form("sw_form", enter_to_submit=False):
        target = _target_row(models)
        plan = plan_field("sw_plan", target.n_layers, "Also a pruning plan (optional)")
        training = _training_row()
        clips = _clips_row()
        executor = run_on("sw")
        go_button = st.form_submit_button(
            "Start sweep", type="primary", icon=":material/play_arrow:"
        )
    st.caption(_data_caption(source))
    if go_button and executor is not None and plan.error is None:
        _launch(_sweep_config(source, target, plan, training, clips), executor)
    pending = st.session_state.get("sw_pending")
    if pending and executor is not None:
        _confirm_twin(pending, executor)


def progress_rows(run_id: str) -> list[dict[str, Any]]:
    """One row per prune point started so far, from the one progress estimator (core.runs.records)."""
    rows = []
    for pt in sweep_points(run_id):
        if pt.state == "final evaluation":
            left = "final evaluation..."
        elif pt.state == "done":
            left = "done"
        else:
            left = format_seconds(pt.remaining_s)
        rows.append(
            {
                "prune point": pt.prune_point,
                "layers kept": pt.point_label,
                "state": pt.state,
                "progress": pt.fraction,
                "epoch": f"{pt.epoch}/{pt.epochs}",
                "time left": left,
                "validation accuracy (selection)": pt.validation_accuracy,
                "test accuracy": pt.test_accuracy,
            }
        )
    return rows


def show_run(run_id: str) -> None:
    """Status, per-point progress and (once rows exist) the result plots of one sweep run."""
    run = folders.run_dir(run_id)
    status = run_store.status(run_id)
    about = sweep_run_view(status)
    queued = about.state == RunState.QUEUED
    pr = run_store.progress(run_id)
    clock = (
        f"queued for {format_seconds(pr.queued_s)}"
        if queued
        else f"{format_seconds(pr.elapsed_s)} elapsed"
    )
    st.markdown(
        f"**{run.name}**: {about.label} · {about.data} · {about.model} · task {about.task} · points "
        f"{', '.join(about.points)} · {clock}"
    )
    place = run_store.queue_place(run_id) if queued else None
    if place is not None:
        st.info(f"Queued: {place.text()}.", icon=":material/hourglass_top:")
    if status.error:
        st.error(" ".join(status.error.split()))
    if status.active and st.button("Cancel sweep", icon=":material/stop:", key="sw_cancel"):
        lifecycle.cancel(
            run_id, timeout=5.0
        )  # the worker stops within its grace, whatever its phase
        st.rerun(scope="app")
    if about.state in (RunState.CANCELLED, RunState.FAILED) and st.button(
        "Resume sweep",
        icon=":material/play_arrow:",
        key="sw_resume",
        help="Continue in the same folder: finished points are kept, the point in progress "
        "continues from its last epoch checkpoint.",
    ):
        try:
            lifecycle.resume(run_id)
        except LabError as exc:
            st.error(f"Could not resume: {one_line(exc)}")
        else:
            st.rerun(scope="app")
    progress = progress_rows(run_id)
    if progress:
        st.dataframe(
            progress,
            hide_index=True,
            column_config={
                "progress": st.column_config.ProgressColumn(
                    "progress", min_value=0.0, max_value=1.0
                )
            },
            key="sw_progress",
        )
    elif status.active:
        st.caption("Measuring the pretrained convexity to find the suggested point...")
    view = sweep_view(run)
    if view is None:
        return
    fig = sweep_result_figure(view)
    text = sweep_rule_text(view)
    show(fig, key="sw_plot")
    if text:
        st.info(text, icon=":material/lightbulb:")
    cost = sweep_cost_figure(view)
    if cost is not None:
        show(cost, key="sw_cost")
        st.caption(
            "Cost of each point: its own benchmark timed the full and the pruned model side by side "
            "(bar: median pruned / full over repeats, whisker: min-max; grey: repeats disagreed)."
        )
    st.caption(
        "Read it: a rule was right if the test accuracy at its point is within a couple of points of "
        "the full model's; the cost chart shows what each point saves."
    )


def main() -> None:
    """The page: the launch form, then the chosen sweep (live while it runs)."""
    init_state(FORM_DEFAULTS | run_on_defaults("sw"))
    st.title("Prune sweep")
    st.caption(
        "Fine-tune one model at several prune points (the suggested one, the full model and any others) as a "
        "background job; each point is a complete fine-tuning run. Progress survives a page reload."
    )
    launch_form()
    sweeps = sweep_runs()
    if not sweeps:
        st.caption("No sweep yet.")
    else:
        ids = [r.run_id for r in sweeps]
        if st.session_state.get("sw_pick") not in ids:
            st.session_state["sw_pick"] = ids[0]
        by_id = {r.run_id: r for r in sweeps}
        chosen = st.selectbox(
            "Sweep run",
            ids,
            key="sw_pick",
            format_func=lambda i: by_id[i].picker_label,
        )
        active = by_id[chosen].active

        @st.fragment(run_every=2.0 if active else None)
        def live() -> None:
            show_run(chosen)

        live()


main()
