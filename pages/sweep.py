"""Prune sweep: launch a background sweep (suggested, full and chosen points), watch each point, read the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core import runs as run_store
from core.errors import LabError
from core.geometry.prune_point import choose_prune_points
from core.models.registry import MODELS
from core.runs import jobs
from core.runs.executors import submit_run
from core.runs.views import read_json, sweep_view
from pages import common
from pages.run_on import run_on

OTHER = {"word": "speaker", "speaker": "word"}


def launch_form() -> None:
    """The sweep's settings and the button that submits it as a background job."""
    models = common.offline_models() or [common.DEFAULT_MODEL]
    with st.form("sw_form"):
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
        others = c.multiselect(
            "Other prune points",
            list(range(1, n_layers)),
            default=[1] if n_layers > 1 else [],
            key="sw_points",
            help="Always swept: the suggested point and the full model.",
        )
        d, e, f, g = st.columns(4)
        epochs = d.number_input("Epochs", 1, 50, 3, key="sw_epochs")
        lr = e.number_input("Learning rate", 1e-6, 1e-2, 5e-4, format="%.0e", key="sw_lr")
        batch = f.number_input("Batch size", 1, 256, 16, key="sw_batch")
        fraction = g.slider("Threshold rule: fraction of the max", 0.5, 1.0, 0.95, key="sw_frac")
        executor = run_on("sw")
        go_button = st.form_submit_button(
            "Start sweep", type="primary", icon=":material/play_arrow:"
        )
    st.caption(
        "Model selection on the validation split, scores on the test split. For speakers the split is "
        "per speaker (unseen clips of seen speakers, as in the paper); for words it is by speaker "
        "(unseen speakers). The prune point is suggested from the pretrained convexity on the train split."
    )
    if go_button and executor is not None:
        config = {
            "model": model,
            "dataset": st.session_state.get("dataset", "sample"),
            "root": st.session_state.get("root") or None,
            "task": task,
            "points": ["suggested", "full", *sorted(int(p) for p in others)],
            "fraction": float(fraction),
            "epochs": int(epochs),
            "lr": float(lr),
            "batch_size": int(batch),
            "eval_split": "validation",
            "test_split": "test",
        }
        try:
            run = submit_run("sweep", config, executor)
        except (LabError, ValueError, OSError) as exc:
            st.error(f"Could not start the sweep: {common.one_line(exc)}")
        else:
            st.session_state["sw_run"] = Path(run).name
            st.success(f"Sweep {Path(run).name} started in the background.")


def point_progress(run: Path, epochs: int) -> list[dict[str, Any]]:
    """One row per prune point started so far: its state, epoch and the last accuracy it reported."""
    rows = []
    for sub in sorted(run.glob("p*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else 0):
        if not sub.is_dir() or not sub.name[1:].isdigit():
            continue
        result = read_json(sub / "result.json")
        metrics = run_store.read_metrics_file(sub / "metrics.jsonl")
        evals = [m for m in metrics if m.get("kind") == "eval"]
        last = metrics[-1] if metrics else {}
        done_epochs = len(evals)
        frac = (
            1.0
            if result
            else (
                max(done_epochs, (last.get("epoch") or 1) - 1 + (last.get("epoch_progress") or 0))
            )
            / max(1, epochs)
        )
        rows.append(
            {
                "prune point": int(sub.name[1:]),
                "state": "done" if result else "training",
                "progress": min(1.0, float(frac)),
                "epoch": f"{done_epochs}/{epochs}",
                "validation accuracy": evals[-1]["accuracy"] if evals else None,
                "test accuracy": (result or {}).get("test_accuracy"),
            }
        )
    return rows


def result_figure(view: dict[str, Any]) -> go.Figure:
    """Convexity of the task's and the other labels (pretrained), test accuracy and cost per prune point."""
    relevant = "word" if view["task"] == "words" else "speaker"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    styles = {relevant: ("#2563eb", "solid"), OTHER[relevant]: ("#94a3b8", "dot")}
    for name, (colour, dash) in styles.items():
        curve = (view.get("pretrained") or {}).get(name)
        if curve:
            fig.add_trace(
                go.Scatter(
                    x=list(range(len(curve["scores"]))),
                    y=curve["scores"],
                    error_y={"type": "data", "array": curve.get("sems") or []},
                    mode="lines+markers",
                    name=f"{name} convexity (pretrained{', task' if name == relevant else ''})",
                    line={"color": colour, "dash": dash, "width": 3},
                ),
                secondary_y=False,
            )
    rows = view["rows"]
    xs = [r["prune_point"] for r in rows]
    acc = [
        r["test_accuracy"] if r.get("test_accuracy") is not None else r["accuracy"] for r in rows
    ]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=acc,
            mode="lines+markers",
            name="fine-tuned test accuracy",
            line={"color": "#10b981", "width": 3},
            marker={"size": 13, "symbol": "diamond"},
        ),
        secondary_y=False,
    )
    cost = [r.get("train_step_seconds") for r in rows]
    cost_name = "train step (s)"
    if any(c is None for c in cost):
        cost, cost_name = [r["params_total"] / 1e6 for r in rows], "parameters (M)"
    fig.add_trace(
        go.Bar(x=xs, y=cost, name=cost_name, marker={"color": "rgba(245,158,11,0.35)"}, width=0.35),
        secondary_y=True,
    )
    fig.update_yaxes(range=[0, 1.05], title_text="convexity / accuracy", secondary_y=False)
    fig.update_yaxes(title_text=cost_name, secondary_y=True, rangemode="tozero")
    fig.update_xaxes(dtick=1)
    return common.style(fig, height=460, x_title="prune point p = hidden state")


def rule_lines(fig: go.Figure, view: dict[str, Any]) -> str | None:
    """Mark both rules' points on the plot; returns the rules' explanation."""
    relevant = "word" if view["task"] == "words" else "speaker"
    curve = (view.get("pretrained") or {}).get(relevant)
    if not curve:
        return None
    choice = choose_prune_points(curve["scores"], curve.get("sems"), view.get("fraction") or 0.95)
    fig.add_vline(
        x=choice.threshold_point,
        line={"color": "#ef4444", "dash": "dash", "width": 2},
        annotation_text=f"threshold rule p = {choice.threshold_point}",
        annotation_position="top left",
    )
    fig.add_vline(
        x=choice.local_peak,
        line={"color": "#8b5cf6", "dash": "dashdot", "width": 2},
        annotation_text=f"local peak p = {choice.local_peak}",
        annotation_position="bottom right",
    )
    return choice.explanation(f"{relevant} labels")


def show_run(run_id: str) -> None:
    """Status, per-point progress and (once rows exist) the result plot of one sweep run."""
    run = jobs.run_dir(run_id)
    status = run_store.status(run_id)
    cfg = status.config
    state = status.label
    st.markdown(
        f"**{run.name}**: {state} · {cfg.get('model')} · task {cfg.get('task')} · points "
        f"{', '.join(map(str, cfg.get('points', [])))}"
    )
    if status.error:
        st.error(" ".join(status.error.split()))
    if status.active and st.button("Cancel sweep", icon=":material/stop:", key="sw_cancel"):
        jobs.cancel(run_id, timeout=5.0)  # the worker stops within its grace, whatever its phase
        st.rerun(scope="app")
    progress = point_progress(run, int(cfg.get("epochs") or 1))
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
    elif state in jobs.ACTIVE:
        st.caption("Measuring the pretrained convexity to find the suggested point...")
    view = sweep_view(run)
    if view is None:
        return
    fig = result_figure(view)
    text = rule_lines(fig, view)
    common.show(fig, key="sw_plot")
    if text:
        st.info(text, icon=":material/lightbulb:")
    st.caption(
        "Read it: a rule was right if the test accuracy at its point is within a couple of points of the "
        "full model's; the bars show what each point costs."
    )


common.init_state()
st.title("Prune sweep")
st.caption(
    "Fine-tune one model at several prune points (the suggested one, the full model and any others) as a "
    "background job; each point is a complete fine-tuning run. Progress survives a page reload."
)
launch_form()
sweeps = [r for r in run_store.list_runs() if r.kind == "sweep"]
if not sweeps:
    st.caption("No sweep yet.")
else:
    ids = [r.run_id for r in sweeps]
    current = st.session_state.get("sw_run")
    chosen = st.selectbox(
        "Sweep run", ids, index=ids.index(current) if current in ids else 0, key="sw_pick"
    )
    active = next(r for r in sweeps if r.run_id == chosen).active

    @st.fragment(run_every=2.0 if active else None)
    def live() -> None:
        show_run(chosen)

    live()
