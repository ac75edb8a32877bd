"""Home: what Convexity Lab does and for whom, the paper, the workflow, and how to read a convexity curve."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.data import SAMPLE_CURVES, ModelCurves
from pages.parts import figures
from pages.parts.cached import sample_curves
from pages.parts.state import init_state

PAPER = (
    "Dorszewski, Tětková, Hansen: *Convexity-based Pruning of Speech Representation Models*, "
    "arXiv:2408.11858 (2024)"
)


def curve_figure(model: ModelCurves, caption: str) -> go.Figure:
    """Word and speaker convexity per hidden state: error bars are standard errors; exact states
    (every pair scored, SE 0) are drawn as diamonds and say so on hover."""
    states = list(range(model.n_layers + 1))
    lines = []
    for name in ("word", "speaker"):
        curve = model.curve(name)
        hover = [
            f"state {i}: {s:.3f} " + ("(exact: every pair scored)" if e else f"± {se:.3f} (SE)")
            for i, (s, se, e) in enumerate(zip(curve.scores, curve.sems, curve.exact, strict=True))
        ]
        lines.append(
            figures.Curve(
                f"{name} labels" + (" (exact)" if curve.all_exact else " (± SE)"),
                states,
                list(curve.scores),
                err=list(curve.sems),
                colour=figures.LABEL_COLOURS[name],
                hover=hover,
                symbols=["diamond" if e else "circle" for e in curve.exact],
            )
        )
    return figures.curve_figure(lines, height=400, y_range=(0, 1.02), caption=[caption])


def intro_section() -> None:
    """What the tool does, for whom, and the paper."""
    st.title("Convexity Lab")
    st.markdown(
        "**Where in a speech model does a concept live, and how much of the model does a task need?** "
        "Convexity Lab measures, layer by layer, how *convex* the regions of a concept (a spoken word, a "
        "speaker) are in a transformer speech model's representations, suggests where the model can be cut "
        "off for a task, and then fine-tunes the full and the pruned model so you can see whether the "
        "smaller one holds up."
    )
    st.markdown(
        "For **students and lecturers** who want to see representation geometry on real audio, and for "
        "**researchers and engineers** who want a smaller, faster model for a speech task on their own data. "
        "Everything runs locally on a CPU: the bundled sample and the offline Whisper encoders need no "
        "network."
    )
    st.info(f"The method: {PAPER}.", icon=":material/menu_book:")


def workflow_section() -> None:
    """The four steps, each a link to its page."""
    st.header("The workflow in four steps")
    steps = (
        (
            "pages/setup.py",
            "1. Setup",
            ":material/tune:",
            "Pick a model and a dataset (the bundled sample works offline) and extract per-layer features.",
        ),
        (
            "pages/convexity.py",
            "2. Convexity",
            ":material/show_chart:",
            "See the word and speaker convexity curves and the suggested prune point for each task.",
        ),
        (
            "pages/sweep.py",
            "3. Prune sweep",
            ":material/content_cut:",
            "Fine-tune the full model and pruned ones (suggested point and others) in the background.",
        ),
        (
            "pages/benchmarks.py",
            "4. Benchmarks",
            ":material/leaderboard:",
            "Compare accuracy, parameters and speed of the full and the pruned models side by side.",
        ),
    )
    cols = st.columns(4)
    for col, (path, label, icon, text) in zip(cols, steps, strict=True):
        with col:
            st.page_link(path, label=label, icon=icon)
            st.caption(text)
    st.caption("New to graph convexity? The Learn page builds it up step by step on a 2-D toy.")
    st.page_link(
        "pages/learn.py", label="Learn: what graph convexity means", icon=":material/school:"
    )


def curve_section() -> None:
    """A real convexity curve of the bundled sample, and how to read it."""
    st.header("How to read a convexity curve")
    data = sample_curves(str(SAMPLE_CURVES))
    if isinstance(data, str):
        st.warning(f"{data} (see data/sample/README.md).")
    else:
        model = st.radio("Model", data.names, horizontal=True, key="home_model")
        curve = data.model(model)
        n_layers = curve.n_layers
        left, right = st.columns([3, 2])
        with left:
            figures.show(
                curve_figure(
                    curve,
                    f"{curve.describe} on the bundled sample, {curve.n_clips:,} clips · "
                    + data.provenance.replace("`", ""),
                ),
                key="home_curve",
                config=figures.figure_config("home-convexity"),
            )
            exact = all(curve.curve(n).all_exact for n in ("word", "speaker"))
            st.caption(
                f"**{curve.describe}** on the bundled sample ({curve.n_clips:,} clips: 35 words x 24 "
                "synthetic voices x 3 takes, noisy, Ogg/Opus; not Speech Commands). "
                + (
                    "Exact curves (diamonds): every pair scored, so no error bars. "
                    if exact
                    else "Error bars: standard errors of the sampled estimate; diamonds: exact states. "
                )
                + data.provenance
            )
        with right:
            word, speaker = curve.word.scores, curve.speaker.scores
            peak = max(range(n_layers + 1), key=lambda i: speaker[i])
            st.markdown(
                f"""
    - **x axis:** hidden state *i* of the encoder (0 = the input to the first transformer layer,
      {n_layers} = the last; Whisper's last state includes its final LayerNorm).
    - **y axis:** graph convexity: the share of shortest paths in the k-nearest-neighbour graph between
      two clips of one class that stay inside the class (1 = every path stays inside, near 1/classes =
      no structure).
    - **Word labels** (blue) rise with depth here, {word[0]:.2f} → {word[-1]:.2f}: the encoder was trained
      for speech recognition, so deeper layers group clips by what was said.
    - **Speaker labels** (pink) peak at hidden state {peak} ({speaker[peak]:.2f}) and fall to
      {speaker[-1]:.2f}: early layers keep who spoke, later ones discard it.
    - **The prune point** for a task is where its curve stops rising: layers after it add little for
      that task. Here the speaker curve suggests keeping {peak} layer{"s" if peak != 1 else ""} for
      speaker identification; the Prune sweep page tests whether the pruned model holds up.
    """
            )


def main() -> None:
    """The Home page."""
    init_state()
    intro_section()
    workflow_section()
    curve_section()


main()
