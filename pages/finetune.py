"""Prune & fine-tune: pick a prune point from the convexity curve, launch background fine-tunes, watch them live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from core import runs as run_store
from core.data import ClipSource, FeatureSet, label_set
from core.errors import LabError
from core.geometry import suggest_prune_point
from core.models import MODELS, classifier_params_by_prune_point
from core.runs import FinetuneRunView, RunState, finetune_runs, lifecycle, run_metrics, submit_run
from core.training import (
    DataPlan,
    DataSelection,
    FinetuneConfig,
    Optimiser,
    check_run,
    check_trainable,
)
from pages.parts.cached import current_convexity, finetune_data_plan
from pages.parts.feature_choice import current_features, features_caption
from pages.parts.figures import show
from pages.parts.messages import model_error_line, one_line
from pages.parts.run_figures import convexity_figure, has_curves, metric_figure
from pages.parts.run_on import run_on, run_on_defaults
from pages.parts.run_plan import PlanChoice, plan_field
from pages.parts.state import init_state
from pages.parts.trajectory_view import show_trajectory

LRS = [1e-5, 3e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3]
BATCHES = [4, 8, 16, 32, 64]
SAMPLE = ClipSource()  # no features chosen: the sample set
PARAMS_COUNTED = "encoder + classification head for the task's {n} classes"


@dataclass(frozen=True)
class Training:
    """What a launch trains: the chosen features (None: none yet), their model, input and data."""

    features: FeatureSet | None
    model: str
    whisper_input: str
    source: ClipSource
    n_layers: int


@dataclass(frozen=True)
class Choice:
    """The form's task, the run's data plan (or why it is refused) and the convexity suggestion."""

    task: str
    plan: DataPlan | None
    refusal: str | None
    suggestion: int | None
    default_p: int


def training_source() -> Training:
    """The features chosen on Setup and what a run on them trains (stops the page when nothing can)."""
    state = st.session_state
    fs = current_features()
    if fs is None:
        model, whisper_input = str(state.model), str(state.whisper_input)
        return Training(None, model, whisper_input, SAMPLE, int(MODELS[model].n_layers))
    features_caption(fs)
    info = fs.info
    model = info.model_key or str(state.model)
    try:
        check_trainable(model, info.dataset)
    except LabError as exc:  # imported features: no encoder to fine-tune
        st.error(one_line(exc))
        st.page_link("pages/setup.py", label="Go to Setup", icon=":material/tune:")
        st.stop()
    try:
        source = info.source
    except LabError as exc:
        st.error(one_line(exc))
        st.stop()
    whisper_input = info.input_mode or str(state.whisper_input)
    return Training(fs, model, whisper_input, source, int(fs.n_layers))


def _keep_view(ids: dict[str, Any]) -> None:
    """Keep the shown run when the picker hands back a label of an earlier state (it says the run's
    state, so its text changes while the run id it starts with does not); else the newest run."""
    state = st.session_state
    shown = state.get("ft_view")
    if isinstance(shown, str) and shown not in ids and shown.split(" · ")[0] in ids:
        state["ft_view"] = shown.split(" · ")[0]
    if ids and state.get("ft_view") not in ids:
        state["ft_view"] = next(iter(ids))
    if "ft_view" in state:  # set by the script: the browser is sent the run's current label
        state["ft_view"] = state["ft_view"]


def _form_from_run(cfg: FinetuneConfig | None, n_layers: int) -> None:
    """Set the form to a run's settings (so the form and the run shown below agree)."""
    if cfg is None:
        return
    state = st.session_state
    values = {
        "ft_task": cfg.data.task,
        "ft_epochs": cfg.optimiser.epochs,
        "ft_lr": cfg.optimiser.lr,
        "ft_batch": cfg.optimiser.batch_size,
        "ft_train_clips": cfg.data.max_train_clips or 0,
        "ft_eval_clips": cfg.data.max_eval_clips or 0,
        "ft_test_clips": cfg.data.max_test_clips or 0,
        "ft_prune": cfg.prune_point or n_layers,  # None: the full model, p = L
        "ft_plan": cfg.plan or "",
    }
    valid = {
        "ft_task": lambda v: v in ("words", "speakers"),
        "ft_lr": lambda v: v in LRS,
        "ft_batch": lambda v: v in BATCHES,
        "ft_prune": lambda v: isinstance(v, int) and 1 <= v <= n_layers,
    }
    for key, value in values.items():
        if isinstance(value, int | float | str) and valid.get(key, lambda v: True)(value):
            state[key] = value


def _config(training: Training, task: str, p: int | str | None) -> dict[str, Any]:
    """The fine-tune config of the current choices on the features' data (``p``: a prune point, a
    plan's text, or None: the full model)."""
    state = st.session_state
    return FinetuneConfig(
        model=training.model,
        prune_point=p if isinstance(p, int) else None,
        plan=p if isinstance(p, str) else None,
        whisper_input=training.whisper_input,
        data=DataSelection(
            training.source,
            task=task,
            max_train_clips=int(state.ft_train_clips) or None,
            max_eval_clips=int(state.ft_eval_clips) or None,
            max_test_clips=int(state.ft_test_clips) or None,
        ),
        optimiser=Optimiser(
            epochs=int(state.ft_epochs),
            lr=float(state.ft_lr),
            batch_size=int(state.ft_batch),
            log_every=1,
        ),
    ).to_dict()


def settings_section(training: Training, form_from_run: bool) -> Choice:
    """Task, epochs, learning rate, batch size and clip caps; the data plan and the suggestion."""
    state = st.session_state
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    with c1:
        task = st.radio("Task", ["words", "speakers"], key="ft_task", horizontal=True)
    for name, first in (("ft_epochs", 1), ("ft_lr", LRS[0]), ("ft_batch", BATCHES[0])):
        state.setdefault(name, first)  # the widgets' own defaults, needed before they are drawn
    for name in ("ft_train_clips", "ft_eval_clips", "ft_test_clips"):
        state.setdefault(name, 0)
    plan, refusal = finetune_data_plan(_config(training, task, None))
    if refusal is not None:
        st.error(f"Cannot fine-tune on these features: {refusal}")
    suggestion: int | None = None
    fs = training.features
    if fs is not None and refusal is None:
        try:
            curves = current_convexity(fs.key)
            suggestion = suggest_prune_point(
                curves[label_set(task)].scores, float(state.cx_fraction)
            )
        except LabError as exc:
            st.warning(f"No convexity suggestion: {one_line(exc)}")
    default_p = suggestion if suggestion is not None else max(1, training.n_layers // 2)
    context = (fs.key if fs is not None else None, task, suggestion)
    if "_ft_context" in state and state["_ft_context"] != context and not form_from_run:
        state.ft_prune = default_p  # other features or task: their suggestion
    state["_ft_context"] = context
    if not isinstance(state.get("ft_prune"), int) or not 1 <= state.ft_prune <= training.n_layers:
        state.ft_prune = default_p
    with c2:
        st.number_input("Epochs", 1, 100, key="ft_epochs")
        st.select_slider("Learning rate", LRS, key="ft_lr", format_func=lambda v: f"{v:g}")
    with c3:
        st.select_slider("Batch size", BATCHES, key="ft_batch")
        st.number_input(
            "Training clips (0 = whole train split)", 0, 100000, step=35, key="ft_train_clips"
        )
    with c4:
        st.number_input(
            "Validation clips (selection; 0 = whole split)",
            0,
            100000,
            step=35,
            key="ft_eval_clips",
            help="Clips of the validation split scored every epoch to pick the best checkpoint.",
        )
        st.number_input(
            "Test clips (0 = whole test split)",
            0,
            100000,
            step=35,
            key="ft_test_clips",
            help="Clips of the test split the chosen checkpoint is scored on: the reported accuracy.",
        )
    return Choice(task, plan, refusal, suggestion, default_p)


def prune_point_section(training: Training, choice: Choice) -> int:
    """The prune point slider, the suggestion and the parameters it keeps; returns the point."""
    state = st.session_state
    n_layers, fs, suggestion = training.n_layers, training.features, choice.suggestion
    st.subheader("Prune point")
    prune_point = int(
        st.slider(
            "Prune point p (keep transformer layers 1..p)",
            1,
            n_layers,
            key="ft_prune",
            help="Defaults to the point where the task's pretrained convexity curve stops rising "
            f"(the Convexity page's rule and fraction). p = {n_layers} keeps every layer: the full model.",
        )
    )
    if choice.refusal is not None:
        hint = "No convexity suggestion either: it needs data a run could use."
    elif suggestion is not None and fs is not None:
        hint = (
            f"Convexity suggestion for {choice.task}: p = {suggestion} (fraction "
            f"{float(state.cx_fraction):.2f} of the maximum, on {fs.features.shape[0]} clips)."
        )
    elif fs is None:
        hint = "No convexity curve yet: extract features on Setup to get a suggestion."
    else:
        hint = "No convexity suggestion (see above): the slider starts in the middle."

    def use_suggestion() -> None:
        state.ft_prune = choice.default_p

    h1, h2 = st.columns([3, 1], vertical_alignment="center")
    h1.caption(hint + (" That is every layer: the full model." if suggestion == n_layers else ""))
    h2.button(
        "Use the suggestion",
        on_click=use_suggestion,
        disabled=suggestion is None or prune_point == suggestion,
    )
    _parameter_metrics(training, choice, prune_point)
    return prune_point


def _parameter_metrics(training: Training, choice: Choice, prune_point: int) -> None:
    """Parameters kept at ``prune_point`` against the full model (the run's own count)."""
    if choice.plan is None:
        return
    n_layers, plan = training.n_layers, choice.plan
    try:
        counts = classifier_params_by_prune_point(
            training.model, len(plan.classes), whisper_input=training.whisper_input
        )
    except LabError as exc:
        st.warning(f"Cannot count parameters of {training.model}: {model_error_line(exc)}")
        return
    if not counts:
        return
    is_full = prune_point == n_layers
    full, kept = counts[n_layers]["total"], counts[prune_point]["total"]
    m1, m2, m3 = st.columns(3)
    m1.metric(
        "parameters",
        f"{kept / 1e6:.2f} M",
        delta=None if is_full else f"{kept / full - 1:.0%} vs full model",
        delta_color="inverse",
        help=f"{kept:,} parameters: {PARAMS_COUNTED.format(n=len(plan.classes))} (full model: "
        f"{full:,}). The finished run and Benchmarks report the same count.",
    )
    m2.metric("layers kept", f"all {n_layers}" if is_full else f"{prune_point} of {n_layers}")
    m3.metric(
        "parameters saved",
        "none" if is_full else f"{1 - kept / full:.0%}",
        help=f"and about {1 - prune_point / n_layers:.0%} of the transformer compute per clip",
    )


def _same_settings(a: FinetuneConfig | None, b: dict[str, Any]) -> bool:
    """Whether a run's settings and a config describe the same run (unknown keys ignored)."""
    return a is not None and a.to_dict() == FinetuneConfig.from_dict(b).to_dict()


def _start(configs: list[dict[str, Any]], executor: Any) -> None:
    """Check every config, then start them; one toast naming the run shown below."""
    try:
        for cfg in configs:
            check_run(FinetuneConfig.from_dict(cfg))
    except LabError as exc:
        st.error(f"Cannot start the run: {model_error_line(exc)}")
        return
    started = []
    for cfg in configs:
        try:
            run = submit_run("finetune", cfg, executor)
        except LabError as exc:
            st.error(f"Cannot start the run: {model_error_line(exc)}")
            break
        started.append(run.name)
    if started:
        st.session_state["ft_view"] = started[-1]
        others = f" and {', '.join(started[:-1])}" if len(started) > 1 else ""
        st.toast(f"Started {started[-1]}{others}; showing {started[-1]}")


def _launch_buttons(
    n_layers: int, prune_point: int, refused: bool, plan: PlanChoice
) -> list[int | str | None]:
    """The launch buttons; what to start (a prune point, a plan's text, None: the full model), none
    unless clicked. A plan in the plan field takes the prune point's place."""
    b1, b2, b3 = st.columns(3)
    refused = refused or plan.error is not None
    pruned: int | str = prune_point
    if plan.plan is not None and not plan.plan.is_full:
        pruned = plan.plan.describe()
    elif prune_point == n_layers:
        full = b1.button(
            f"Fine-tune full model ({n_layers} layers)",
            type="primary",
            icon=":material/play_arrow:",
            disabled=refused,
        )
        b2.caption(f"p = {n_layers} keeps every layer: move the slider left to prune.")
        return [None] if full else []
    launch: list[int | str | None] = []
    what = f"p = {pruned}" if isinstance(pruned, int) else pruned
    if b1.button(
        f"Fine-tune pruned ({what})",
        type="primary",
        icon=":material/content_cut:",
        disabled=refused,
    ):
        launch = [pruned]
    if b2.button(
        f"Fine-tune full model ({n_layers} layers)", icon=":material/play_arrow:", disabled=refused
    ):
        launch = [None]
    if b3.button("Fine-tune both", icon=":material/compare_arrows:", disabled=refused):
        launch = [None, pruned]
    return launch


def launch_section(
    training: Training,
    choice: Choice,
    prune_point: int,
    plan: PlanChoice,
    runs: list[FinetuneRunView],
) -> bool:
    """Where to run, the launch buttons and the question before an identical run; True if one started."""
    state = st.session_state
    executor = run_on("ft")
    launch = _launch_buttons(training.n_layers, prune_point, choice.refusal is not None, plan)
    started = bool(launch)
    if launch and executor is not None:
        configs = [_config(training, choice.task, p) for p in launch]
        twins = [
            r.run_id
            for r in runs
            if r.active and any(_same_settings(r.settings, c) for c in configs)
        ]
        if twins:
            state["_ft_confirm"] = {"configs": configs, "twins": twins}
        else:
            state.pop("_ft_confirm", None)
            _start(configs, executor)
    pending = state.get("_ft_confirm")
    if pending:
        with st.container(border=True):
            st.warning(
                f"A run with exactly these settings is already queued or running: "
                f"{', '.join(pending['twins'])}. Start another identical run?"
            )
            y, n, _ = st.columns([1, 1, 2])
            if y.button("Start another", key="ft_confirm_yes"):
                state.pop("_ft_confirm", None)
                started = True
                _start(pending["configs"], executor)
            if n.button(f"Show {pending['twins'][0]}", key="ft_confirm_no"):
                state.pop("_ft_confirm", None)
                state["ft_view"] = pending["twins"][0]
                st.rerun()
    return started


def runs_section(runs: list[FinetuneRunView]) -> FinetuneRunView:
    """The table of every fine-tune, the run picker and a watch on the others; returns the shown run."""
    by_id = {r.run_id: r for r in runs}
    _keep_view(by_id)
    st.session_state["_ft_form_run"] = st.session_state["ft_view"]  # the form shows its settings
    with st.expander(f"All fine-tuning runs ({len(runs)})"):
        st.dataframe(
            [
                {
                    "run": r.run_id,
                    "state": r.label,
                    "data": r.data,
                    "task": r.task,
                    "prune point": r.prune_text,
                    "epochs": r.epochs,
                    "test accuracy": r.test_accuracy,
                    "test clips": r.n_test,
                    "validation accuracy (selection)": r.selection_accuracy,
                    "updated": r.updated_at,
                }
                for r in runs
            ],
            hide_index=True,
        )
    shown = st.selectbox(
        "Show run", list(by_id), key="ft_view", format_func=lambda i: by_id[i].picker_label
    )
    watched = {r.run_id: r.label for r in runs if r.active and r.run_id != shown}

    @st.fragment(run_every=2.0 if watched else None)
    def watch_others() -> None:
        """Rerun the page when a run not shown changes state, so the picker and the table say so."""
        if any(run_store.status(run_id).label != label for run_id, label in watched.items()):
            st.rerun(scope="app")

    watch_others()
    return by_id[shown]


def _time_metrics(run_id: str, state: RunState) -> None:
    """Elapsed training time and the estimate of what remains (this epoch and in total)."""
    pr = run_store.progress(run_id)
    if not state.active:
        if pr.seconds_per_epoch is not None:
            st.caption(
                f"{run_store.format_seconds(pr.seconds_per_epoch)} per epoch (median of finished epochs)."
            )
        return
    if state == RunState.QUEUED:
        st.metric("queued for", run_store.format_seconds(pr.queued_s))
        return
    t = st.columns(3)
    t[0].metric("elapsed", run_store.format_seconds(pr.elapsed_s))
    t[1].metric(f"left in epoch {pr.epoch or 1}", run_store.format_seconds(pr.epoch_remaining_s))
    t[2].metric(
        "left in total",
        run_store.format_seconds(pr.total_remaining_s),
        help="training only; each epoch's evaluation adds a little",
    )


def _finished(run_id: str) -> None:
    """A done run's test score and its convexity after fine-tuning beside the pretrained one."""
    res = run_store.result(run_id)
    if res is not None:
        st.success(
            f"{res.scored_split.capitalize()} accuracy {res.scored.accuracy:.3f} on "
            f"{res.scored.n} {res.scored_split} clips (the checkpoint of epoch {res.best_epoch}, "
            f"chosen on {res.eval_split}: {res.best_accuracy:.3f}, the selection metric); "
            f"{res.train_seconds:.0f} s of training; {res.params.total / 1e6:.2f} M parameters "
            f"({PARAMS_COUNTED.format(n=len(res.labels))})."
        )
    conv = run_store.convexity(run_id)
    if conv is None:
        return
    clips = f"{conv.n_clips} {conv.split or 'evaluation'}" if conv.n_clips else "evaluation"
    st.markdown(f"**Convexity after fine-tuning vs pretrained** (the same {clips} clips)")
    if has_curves(conv):
        show(convexity_figure(conv), key=f"ft_conv_{run_id}")
    else:
        st.caption(
            f"No curve: the {clips} clips are too few to measure convexity on (more than "
            "10 clips, with two classes of two clips each in a label set, are needed)."
        )


def _run_metrics_row(run_id: str, status: Any, split: str) -> None:
    """Status, epoch, optimizer step and the accuracy so far (the test accuracy once done)."""
    metrics = run_metrics(run_id)
    m = st.columns(4)
    m[0].metric("status", status.label)
    epochs = status.config.get("epochs", "?")
    m[1].metric("epoch", f"{status.epoch or 0} / {epochs}")
    resumes = metrics.resumes
    m[2].metric(
        "optimizer step",
        metrics.last_step,
        help="A resumed run continues from its last epoch checkpoint: the steps after it are redone, "
        "so the step steps back once"
        + (f" (resumed {len(resumes)}x, last at epoch {resumes[-1].epoch})." if resumes else "."),
    )
    res = run_store.result(run_id) if status.state == RunState.DONE else None
    if res is not None:
        m[3].metric(
            f"{res.scored_split} accuracy",
            f"{res.scored.accuracy:.3f}",
            help=f"The chosen checkpoint on {res.scored.n} {res.scored_split} clips"
            + (
                "" if res.test is not None else " (the selection split: this run has no test split)"
            ),
        )
    else:
        last = metrics.last_accuracy
        m[3].metric(
            f"{split} accuracy (selection)",
            "-" if last is None else f"{last:.3f}",
            help=f"Last epoch's accuracy on the {split} split, which picks the best checkpoint; "
            "the test accuracy comes when the run is done.",
        )


def live_section(run: FinetuneRunView) -> None:
    """Status, live curves and controls of the shown run; polls its files every 2 s while it is active."""

    @st.fragment(run_every=2.0 if run.active else None)
    def live_view() -> None:
        status = run_store.status(run.run_id)  # detects a dead worker
        state = RunState.of(status.state)
        split = run.selection_split if run.settings is None else run.settings.data.eval_split
        _run_metrics_row(run.run_id, status, split)
        _time_metrics(run.run_id, state)
        if state.active:
            c_a, c_b = st.columns([1, 4])
            if c_a.button("Cancel run", icon=":material/stop:", key=f"ft_cancel_{run.run_id}"):
                lifecycle.cancel(run.run_id, timeout=5.0)
                st.rerun(scope="app")
            place = run_store.queue_place(run.run_id) if state == RunState.QUEUED else None
            if place is not None:
                c_b.caption(f"queued: {place.text()}")
            else:
                c_b.caption(
                    "queued: waiting to start" if state == RunState.QUEUED else "training..."
                )
        metrics = run_metrics(run.run_id)
        if not metrics.empty:
            show(metric_figure(metrics, split), key=f"ft_live_{run.run_id}")
            st.caption(
                f"{len(metrics.train)} training points and {len(metrics.evals)} evaluations "
                "logged so far."
            )
        elif state.active:
            st.caption("Loading data and model: the first points appear after a few steps.")
        show_trajectory(run_store.run_dir(run.run_id), f"ft_traj_{run.run_id}", label_set(run.task))
        if status.label != run.label:
            st.rerun(scope="app")  # picker and table show the new state; final: no more polling
        _ending(run.run_id, status, state)

    live_view()


def _ending(run_id: str, status: Any, state: RunState) -> None:
    """A failed run's error and log, resume or restart; a done run's score and convexity."""
    if state == RunState.FAILED:
        st.error(f"Run failed: {status.error or 'no message'}")
        tail = run_store.log_tail(run_id)
        if tail:
            st.code(tail, language="text")
    if state in (RunState.FAILED, RunState.CANCELLED) and st.button(
        "Resume" if status.resumable else "Restart",
        icon=":material/replay:",
        key=f"ft_resume_{run_id}",
    ):
        try:  # resume continues this folder; restart is a new attempt in a new run folder
            if status.resumable:
                lifecycle.resume(run_id)
            else:
                st.session_state["ft_view"] = lifecycle.restart(run_id).run_id
        except LabError as exc:
            st.error(model_error_line(exc))
        st.rerun(scope="app")
    if state == RunState.DONE:
        _finished(run_id)


def main() -> None:
    """The page: the features, the form, the prune point, the launch, the runs and the shown run."""
    init_state(run_on_defaults("ft"))
    state = st.session_state
    st.title("Prune & fine-tune")
    st.caption(
        "Fine-tuning runs as a background job (its own process, cache folder `runs/`): leave or "
        "reload the page, it keeps going; come back to watch it or reopen it below. Each run picks "
        "its best epoch on the validation split (the selection metric) and reports that "
        "checkpoint's accuracy on the test split."
    )
    training = training_source()
    runs = finetune_runs()
    by_id = {r.run_id: r for r in runs}
    _keep_view(by_id)
    form_from_run = bool(runs) and state.get("_ft_form_run") != state["ft_view"]
    if form_from_run:  # a newly shown run: its settings
        state["_ft_form_run"] = state["ft_view"]
        _form_from_run(by_id[state["ft_view"]].settings, training.n_layers)
    choice = settings_section(training, form_from_run)
    prune_point = prune_point_section(training, choice)
    plan = plan_field("ft_plan", training.n_layers)
    if launch_section(training, choice, prune_point, plan, runs):
        runs = finetune_runs()  # a new run: list it below
    st.subheader("Runs")
    if not runs:
        st.caption("No fine-tuning runs yet.")
        return
    live_section(runs_section(runs))


main()
