"""A fine-tuning run's geometry while it learns: layer x epoch heatmaps of both label sets and any
epoch's curves beside the pretrained ones (read from the run's convexity points)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.training import Trajectory, TrajectoryPoint, read_trajectory, run_about, trajectory_csv
from pages.parts.figures import (
    LABEL_COLOURS,
    Curve,
    curve_figure,
    integer_axis,
    layer_heatmaps,
    show,
)


def heatmap_figure(traj: Trajectory, relevant: str) -> go.Figure:
    """Convexity per hidden state (rows) and point of training (columns), one panel per label set."""
    names = sorted(traj.label_sets, key=lambda n: n != relevant)
    panels = {f"{n} labels{' (the task)' if n == relevant else ''}": traj.matrix(n) for n in names}
    positions = [p.position for p in traj.points]
    fig = layer_heatmaps(panels, positions, traj.layers, x_title="epoch (0 = pretrained)")
    if all(float(p).is_integer() for p in positions):  # whole epochs: no half-epoch ticks
        for col in range(1, len(panels) + 1):
            integer_axis(fig, positions, pad=0.5, row=1, col=col)
    return fig


def epoch_figure(traj: Trajectory, point: TrajectoryPoint) -> go.Figure:
    """The curves of one point of training (solid) and of the pretrained encoder (dashed)."""
    first = traj.points[0]
    curves = []
    for name in traj.label_sets:
        colour = LABEL_COLOURS.get(name)
        if name in first.curves and first is not point:
            c = first.curves[name]
            curves.append(
                Curve(f"{name} (pretrained)", c.layers, c.scores, colour=colour, dash="dash")
            )
        if name in point.curves:
            c = point.curves[name]
            label = "pretrained" if point.epoch == 0 else f"epoch {point.position:g}"
            curves.append(Curve(f"{name} ({label})", c.layers, c.scores, err=c.sems, colour=colour))
    return curve_figure(curves, height=360)


def _caption(traj: Trajectory) -> str:
    """What the points were measured on, and what measuring cost."""
    p = traj.points[-1]
    overhead = traj.overhead()
    cost = "" if overhead is None else f"; measuring took {100 * overhead:.0f}% of the epochs' time"
    return (
        f"Measured on the same {p.n_clips} clips of the selection split before the first step and after "
        f"every epoch (error bars: the estimator's design standard error of each score){cost}."
    )


def follow_latest(key: str, positions: list[float]) -> None:
    """Start the epoch slider ``key`` at the last epoch, and keep it there as epochs arrive unless the
    reader moved it to an earlier one."""
    state = st.session_state
    last_key = f"{key}_last"
    if state.get(key) not in positions or state.get(key) == state.get(last_key):
        state[key] = positions[-1]
    state[last_key] = positions[-1]


def show_trajectory(run: Path, key: str, relevant: str) -> None:
    """The trajectory section of a run's view (nothing when the run measured none)."""
    traj = read_trajectory(run)
    usable = [p for p in traj.points if p.curves]
    if not traj.points:
        return
    shown = Trajectory(tuple(usable), traj.epoch_seconds).label_sets if usable else ()
    absent = [n for n in LABEL_COLOURS if n not in shown]
    which = "both label sets" if not absent else ", ".join(f"{n} labels" for n in shown) or "none"
    st.markdown(f"**Convexity while training** (probe clips, {which})")
    for name in absent if usable else ():
        st.caption(
            f"No {name} curve: the probe clips have fewer than two {name} classes with two clips "
            "each."
        )
    if not usable:
        st.caption(
            f"No curve: {traj.points[-1].n_clips} probe clips are too few (more than 10, with two "
            "classes of two clips each, are needed)."
        )
        return
    traj = Trajectory(tuple(usable), traj.epoch_seconds)
    show(heatmap_figure(traj, relevant), key=f"{key}_heat")
    positions = [p.position for p in traj.points]
    chosen = positions[-1]
    if len(positions) > 1:
        follow_latest(f"{key}_epoch", positions)
        chosen = st.select_slider(
            "Curve of epoch",
            options=positions,
            format_func=lambda v: "0 (pretrained)" if v == 0 else f"{v:g}",
            key=f"{key}_epoch",
        )
    point = traj.points[int(np.argmin([abs(v - chosen) for v in positions]))]
    show(epoch_figure(traj, point), key=f"{key}_curve")
    st.caption(_caption(traj))
    st.download_button(
        "Convexity while training (CSV)",
        trajectory_csv(traj, run_about(run)),
        f"{run.name}-trajectory.csv",
        "text/csv",
        icon=":material/table:",
        key=f"{key}_csv",
    )
