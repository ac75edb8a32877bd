"""Convexity: per-layer graph convexity of word and speaker labels, per-class heatmap, prune point, export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import LabError
from core.geometry.criteria import compare_prune_points
from core.geometry.prune_point import choose_prune_points
from core.results import export
from core.results.compare import class_scores, is_exact, spread_bars
from core.results.precision import PRESETS
from pages import cached, figures
from pages.feature_choice import current_features, features_caption
from pages.messages import one_line

# This page's own controls (the shared k, precision and fraction are in pages.state).
DEFAULTS = {
    "cx_heat": "word",
    "cx_bars": "standard error",
    "cx_sort": "score at prune point",
    "cr_labels": "word",
    "cr_on": False,
}
COLOURS = figures.LABEL_COLOURS


def _precision_note(name: str, curve) -> str:
    """'word: exact' or 'speaker: ± 0.0041 at most (2 of 5 layers exact)'."""
    if is_exact(curve):
        return f"{name}: exact"
    n_exact = sum(curve.exact)
    return f"{name}: ± {float(np.max(curve.sems)):.4f} at most ({n_exact} of {len(curve.exact)} layers exact)"


def _stability_text(name: str, st_: object) -> str:
    """One line per rule: point, margin, distribution, stable or not."""
    parts = []
    for rule in (st_.threshold, st_.local_peak):
        margin = f"margin {rule.margin:+.3f}"
        if rule.margin_before is not None:
            margin += f"; layer {rule.point - 1} misses the bar by {rule.margin_before:.3f}"
        flag = "stable" if rule.stable else "**moves: not a fact**"
        parts.append(f"{rule.rule} p = {rule.point} ({margin}): {rule.summary()}, {flag}")
    return f"**{name}** prune-point stability (threshold at {st_.fraction:.0%}): " + " · ".join(
        parts
    )


def statistics_section() -> None:
    """Prune-point stability and chance levels when stored; else the button that computes them
    in the background, with progress and time remaining."""
    if stats is not None:
        for name in curves:
            s_ = stats.sets.get(name)
            if s_ is None or s_.stability is None:
                continue
            text = _stability_text(name, s_.stability)
            (st.caption if s_.stability.stable else st.warning)(text)
        return
    work = cached.statistics_work(fs.key, names, int(k), str(precision))
    if work is None or work.finished:
        if work is not None and work.error:
            st.error(f"Curve statistics failed: {work.error}")
        elif work is not None and work.result is None:
            st.error("Curve statistics stopped without a result (see the server log).")
        if st.button(
            "Chance level and population intervals",
            icon=":material/insights:",
            key="cx_stats_go",
            help=f"{cached.STATS_PERMUTATIONS} label permutations (sharing the curve's trees), "
            f"{cached.STATS_RESAMPLES} half-samples of the speakers (words) and of each speaker's "
            f"clips (speakers), {cached.STATS_SEEDS} estimator seeds; runs in the background and "
            "is stored.",
        ):
            cached.start_statistics(fs.key, names, int(k), str(precision))
            st.rerun()
        return
    statistics_progress(work)


@st.fragment(run_every=1.0)
def statistics_progress(work: object) -> None:
    """Progress of the running curve statistics; reruns the page when they are stored."""
    if work.finished:
        st.rerun(scope="app")
    st.progress(work.fraction(), text=work.text())


st.title("Graph convexity per layer")
fs = current_features(DEFAULTS)
if fs is None:
    st.stop()
features_caption(fs)
n_layers = fs.n_layers

c1, c2, c3, c4 = st.columns([1, 1.1, 1.3, 1.1])
with c1:
    k = st.slider(
        "k (neighbours)", 1, 30, key="cx_k", help="kNN graph: each clip's k nearest clips."
    )
with c2:
    precision = st.select_slider(
        "Precision",
        list(PRESETS),
        key="cx_precision",
        help="Standard error to reach per layer score (sources are added until it is met; every "
        "pair is scored when that is cheaper), the authors' 5,000 sampled pairs per class, or every pair.",
    )
with c4:
    fraction = st.slider(
        "Prune at fraction of max",
        0.50,
        1.00,
        step=0.01,
        key="cx_fraction",
        help="Suggested prune point p: the first hidden state >= 1 reaching this fraction of the maximum.",
    )

with c3:
    refresh = st.button(
        "Recompute",
        icon=":material/refresh:",
        help="Compute again even though a stored result exists.",
    )
try:
    curves, prov, from_store = cached.convexity_result(
        fs.key, int(k), str(precision), refresh=refresh
    )
except LabError as exc:
    st.error(f"Cannot compute convexity: {one_line(exc)}")
    st.stop()
missing = cached.missing_label_sets(fs)
exact_result = all(is_exact(c) for c in curves.values())
caption_lines = export.captions([prov])

layers = list(next(iter(curves.values())).layers)
names = tuple(curves)
found = cached.stored_curve_statistics(fs.key, names, int(k), str(precision))
stats, stats_prov = found if found is not None else (None, None)
choices = {name: choose_prune_points(c.scores, c.sems, fraction) for name, c in curves.items()}
prune = {name: choice.threshold_point for name, choice in choices.items()}

m = st.columns(4)
for i, (name, curve) in enumerate(curves.items()):
    best = int(np.nanargmax(curve.scores))
    m[2 * i].metric(
        f"max {name} convexity",
        f"{curve.scores[best]:.3f}",
        help=f"at hidden state {best}",
    )
    m[2 * i + 1].metric(
        f"prune point ({name})",
        f"p = {prune[name]}",
        help=choices[name].explanation(f"{name} labels"),  # both rules, and why
    )

bar_options = [
    "none" if exact_result else "standard error",
    "population interval",
    "authors' spread",
]
if st.session_state.get("cx_bars") not in bar_options:
    st.session_state.cx_bars = bar_options[0]
with c4:  # beside the other controls: the main chart stays above the fold on a projector
    bars = st.selectbox(  # one row whatever the labels: the chart stays above the fold
        "Error bars",
        bar_options,
        key="cx_bars",
        format_func=lambda option: f"error bars: {option}",
        label_visibility="collapsed",
        help="Standard error of the sampled estimate of these clips' exhaustive score (0 for an exact "
        "result); the population interval: where the curve would lie for other clips and speakers "
        f"({cached.STATS_RESAMPLES} half-samples, docs/reading-plots.md); or the authors' spread "
        "bar: per class the std of pair scores / sqrt(points), averaged over classes. The spread "
        "describes how pair scores vary, not how uncertain the score is.",
    )
bar_kind = {
    "standard error": "SE",
    "authors' spread": "spread",
    "population interval": "population interval",
}.get(bars)


def _population_bar(name: str) -> np.ndarray | None:
    """Half-width of the stored population interval of a label set (None when not computed)."""
    if stats is None or name not in stats.sets or stats.sets[name].interval is None:
        return None
    iv = stats.sets[name].interval
    return np.asarray(iv.high) - np.asarray(iv.score)


lines = []
for name, curve in curves.items():
    bar = {
        "standard error": curve.sems,
        "authors' spread": spread_bars(curve),
        "population interval": _population_bar(name),
    }.get(bars)
    hover = [
        f"{name}<br>hidden state {x}<br>convexity {y:.3f}"
        + ("" if bar is None else f" ± {b:.3f} ({bar_kind})")
        for x, y, b in zip(
            layers, curve.scores, bar if bar is not None else curve.sems, strict=True
        )
    ]
    lines.append(
        figures.Curve(
            f"{name} ({len(curve.results[0].per_class)} classes)",
            layers,
            curve.scores,
            err=bar,
            colour=COLOURS[name],
            hover=hover,
        )
    )
fig = figures.curve_figure(lines, height=300)  # above the fold at 1024 x 768
if stats is not None:  # chance levels as dashed bands: exact mean +- 2 sd of permuted estimates
    for name in curves:
        chance = stats.sets[name].chance if name in stats.sets else None
        if chance is not None:
            figures.add_band(
                fig,
                f"chance ({name})",
                chance.layers,
                np.asarray(chance.mean),
                2 * np.asarray(chance.std),
                COLOURS[name],
            )
for name in curves:  # prune points as legend entries: two labels at one layer never collide
    fig.add_trace(
        go.Scatter(
            x=[prune[name], prune[name]],
            y=[0, 1.05],
            mode="lines",
            name=f"prune point ({name}): p = {prune[name]}",
            line={"color": COLOURS[name], "dash": "dash", "width": 2},
            hoverinfo="name",
        )
    )
figures.fixed_legend(fig)
final_ln = bool(fs.meta.get("final_layer_norm"))
if final_ln:
    fig.add_annotation(
        x=n_layers,
        y=0.02,
        yref="paper",
        text="incl. final LayerNorm",
        showarrow=False,
        yanchor="bottom",
        xanchor="right",
    )
export.add_caption(fig, caption_lines)
figures.show(fig, key="cx_curve", config=figures.figure_config("convexity", fig))
if missing:
    st.caption(" ".join(f"{why.capitalize()}." for why in missing.values()))

settings = next(iter(curves.values())).results[0].settings
if bars == "population interval" and stats is not None:
    level = next(iter(stats.sets.values())).interval.level
    bar_note = (
        f"error bars: {level:.0%} population interval, where the curve would lie for other clips "
        f"and speakers ({stats.settings['n_resamples']} half-samples: "
        + "; ".join(
            f"{n} {stats.settings['scheme'][n].removeprefix('half-samples: ')}"
            for n in curves
            if n in stats.settings["scheme"]
        )
        + ")"
    )
elif bars == "population interval":
    bar_note = "no error bars: the population interval is not computed yet (button below)"
elif bars == "authors' spread":
    bar_note = (
        "error bars: the authors' spread, std of pair scores / sqrt(points), mean over classes"
    )
elif exact_result:
    bar_note = "no error bars"
else:
    bar_note = "error bars: standard error of the sampled estimate of the exhaustive score"

se_note = (
    "exact (exhaustive): every ordered pair scored, no sampling error"
    if exact_result
    else "; ".join(_precision_note(n, c) for n, c in curves.items())
)
origin = "loaded from the results store" if from_store else "computed now and stored"
notes = [f"k = {k}", se_note, bar_note, "layer score = mean over classes", origin]
excluded = {n: c.results[0].n_excluded_classes for n, c in curves.items()}
if any(excluded.values()):
    notes.append(
        "classes with fewer than 2 clips have no pairs and are excluded: "
        + ", ".join(f"{v} {n}" for n, v in excluded.items() if v)
    )
if final_ln:
    notes.append(f"Whisper applies a final LayerNorm to hidden state {n_layers} only")
if stats is not None:
    chance_n = stats.settings["n_permutations"]
    notes.append(
        "dashed bands: chance level, the exact mean over label permutations (class sizes kept) "
        f"± 2 sd of {chance_n} permuted estimates (estimator noise included: errs wide)"
    )
st.caption("; ".join(notes) + ".")
statistics_section()

st.subheader("Per-class convexity")
h1, h2 = st.columns([1, 3])
with h1:
    which = st.segmented_control("Classes", list(curves), key="cx_heat")
    which = which if which in curves else next(iter(curves))
    order = st.radio("Sort classes by", ["score at prune point", "name"], key="cx_sort")
curve = curves[which]
per_class = class_scores(curve)
classes = list(per_class)
z = np.array([per_class[c] for c in classes]).reshape(len(classes), len(layers))
# each class's own standard error per layer (NaN where the layer lacks the class)
sems = {str(c): {} for c in classes}
for i, r in enumerate(curve.results):
    for c, v in r.per_class.items():
        sems[str(c)][i] = v.sem
se = np.array([[sems[c].get(i, np.nan) for i in range(len(layers))] for c in classes])
if order != "name":
    col = layers.index(prune[which])
    rank = np.argsort(np.nan_to_num(z[:, col], nan=-1.0), kind="stable")
    classes = [classes[i] for i in rank]
    z, se = z[rank], se[rank]
class_exact = is_exact(curve)
heat = go.Figure(
    go.Heatmap(
        z=z,
        x=layers,
        y=classes,
        customdata=se,
        zmin=0,
        zmax=1,
        colorscale="Viridis",
        colorbar={"title": {"text": "convexity"}},
        hovertemplate=f"{which} %{{y}}<br>hidden state %{{x}}<br>convexity %{{z:.3f}}"
        + ("" if class_exact else " ± %{customdata:.3f} (this class's SE)")
        + "<extra></extra>",
    )
)
heat.update_yaxes(type="category", tickfont={"size": 11})
figures.style(
    heat,
    height=max(320, 16 * len(classes) + 90),
    x_title=figures.LAYER_AXIS,
    y_title=which,
    legend=False,
)
figures.integer_axis(heat, layers, pad=0.5)
if class_exact:
    heat_note = f"{which} classes: exact (every ordered pair scored)"
else:
    worst = float(np.nanmax(se)) if np.isfinite(se).any() else float("nan")
    heat_note = (
        f"{which} classes: sampled estimates; the precision setting is the layer average's SE, "
        f"each class's own SE is larger (up to ± {worst:.3f} here; on hover)"
    )
export.add_caption(heat, [heat_note, *caption_lines])
with h2:
    figures.show(
        heat, key="cx_heatmap", config=figures.figure_config(f"convexity-{which}-classes", heat)
    )

st.subheader("Compare with other layer-selection criteria")
st.caption(
    "Each curve is scaled to [0, 1] over the layers so their shapes compare; the table lists the prune "
    "point each criterion proposes under its documented rule (core/geometry/criteria.py)."
)
q1, q2 = st.columns([1, 3])
with q1:
    task = st.segmented_control("Task labels", list(curves), key="cr_labels")
    task = task if task in curves else next(iter(curves))
    show_criteria = st.toggle(
        "Compute the criteria",
        key="cr_on",
        help="Linear probe, kNN accuracy, CKA, mutual kNN, block influence, angular distance "
        "(the linear probe takes a while).",
    )
if show_criteria:
    results, criteria_prov = cached.criteria_with_provenance(fs.key, task, int(k))
    criteria_lines = export.captions([criteria_prov, prov])
    curve_names = [n for n, r in results.items() if r.kind == "curve"]
    with q1:
        shown = st.pills(
            "Show", curve_names, selection_mode="multi", default=curve_names, key="cr_shown"
        )

    def scaled(values: np.ndarray) -> np.ndarray:
        """Min-max scaling over layers (NaN kept) so curves of different units share an axis."""
        lo, hi = np.nanmin(values), np.nanmax(values)
        return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)

    criteria_curves = [
        figures.Curve(
            f"graph convexity ({task})", layers, scaled(curves[task].scores), colour=COLOURS[task]
        )
    ] + [
        figures.Curve(
            name.replace("_", " "),
            layers,
            scaled(np.asarray(results[name].values, dtype=float)),
            width=2,
        )
        for name in shown or []
    ]
    norm = figures.curve_figure(
        criteria_curves, height=380, y_title="scaled to [0, 1]", caption=criteria_lines
    )
    with q2:
        figures.show(norm, key="cr_curves", config=figures.figure_config("criteria", norm))
    matrices = [(n, r) for n, r in results.items() if r.kind == "matrix"]
    for col, (name, res) in zip(st.columns(max(1, len(matrices))), matrices, strict=False):
        mat = go.Figure(
            go.Heatmap(
                z=np.asarray(res.values, dtype=float),
                x=layers,
                y=layers,
                colorscale="Viridis",
                colorbar={"title": {"text": name.replace("_", " ")}},
            )
        )
        figures.style(
            mat, height=380, x_title=figures.LAYER_AXIS, y_title="hidden state", legend=False
        )
        figures.integer_axis(mat, layers, pad=0.5)
        figures.integer_axis(mat, layers, axis="y", pad=0.5)
        export.add_caption(mat, criteria_lines, width=60)
        with col:
            st.caption(f"{name.replace('_', ' ')} (layer x layer): {res.rule_text}")
            figures.show(
                mat, key=f"cr_{name}", config=figures.figure_config(f"criteria-{name}", mat)
            )
    table = compare_prune_points(results, {task: curves[task]}, fraction)
    st.dataframe(pd.DataFrame(table)[["criterion", "layer", "rule"]], hide_index=True)

st.subheader("Download")
records = [r for c in curves.values() for r in c.to_records()]
frame = pd.DataFrame(records)
payload = {
    "features": fs.meta.get("key"),
    "model": fs.meta.get("model_key"),
    "describe": fs.meta.get("describe"),
    "settings": {**settings, "fraction": fraction, "exact": exact_result},
    "prune_points": prune,
    "curves": {
        n: {"layers": layers, "scores": c.scores.tolist(), "sems": c.sems.tolist()}
        for n, c in curves.items()
    },
    "records": records,
}
if stats is not None:
    payload["statistics"] = stats.to_dict()
d1, d2, d3, d4 = st.columns(4)
d1.download_button(
    "Numbers (CSV)",
    export.csv_with_provenance(frame.to_csv(index=False), [prov]),
    "convexity.csv",
    "text/csv",
    icon=":material/table:",
)
d2.download_button(
    "Numbers (JSON)",
    json.dumps(export.json_with_provenance(payload, [prov]), indent=1, default=str),
    "convexity.json",
    "application/json",
    icon=":material/data_object:",
)
d3.download_button(
    "Figure (HTML)",
    lambda: export.figure_html(fig, caption_lines, "convexity", "Graph convexity per layer"),
    "convexity.html",
    "text/html",
    icon=":material/image:",
)  # built on click; plotly.js inlined, so it opens offline
with d4:
    figures.image_format_picker()
