"""Convexity: per-layer graph convexity of word and speaker labels, per-class heatmap, prune point, export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.data import FeatureInfo, FeatureSet
from core.errors import LabError
from core.geometry import (
    CRITERIA,
    INTERVAL_KINDS,
    ConvexityCurve,
    CurveStatistics,
    PrunePointChoice,
    choose_prune_points,
    compare_prune_points,
)
from core.results import (
    CLASS_ORDERS,
    PRESETS,
    Provenance,
    class_table,
    curve_seconds,
    export,
    format_seconds,
    is_exact,
    precision_note,
    run_settings,
    spread_bars,
    stability_text,
)
from pages.parts import cached, figures
from pages.parts.feature_choice import current_features, features_caption
from pages.parts.messages import one_line
from pages.parts.state import session_id

TITLE = "Graph convexity per layer"
# This page's own controls (the shared k, precision and fraction are in pages.parts.state).
DEFAULTS = {
    "cx_heat": "word",
    "cx_bars": "standard error",
    "cx_sort": CLASS_ORDERS[0],
    "cr_labels": "word",
    "cr_on": False,
}
COLOURS = figures.LABEL_COLOURS
INTERVAL_OF = INTERVAL_KINDS["other-speakers-half"].of
BAR_KINDS = {
    "standard error": "SE",
    "authors' spread": "spread",
    "population interval": "population interval",
    "half the speakers": "other speakers, half the count",
}
HALF_COUNT = "half the speakers"  # the "other speakers, half the count" interval


@dataclass(frozen=True)
class Controls:
    """The page's settings in this run."""

    k: int
    precision: str
    fraction: float
    refresh: bool


@dataclass(frozen=True)
class Shown:
    """What the page shows for one feature set and its controls."""

    info: FeatureInfo
    curves: dict[str, ConvexityCurve]
    provenance: Provenance
    from_store: bool
    missing: dict[str, str]  # label set -> why it has no curve
    stats: CurveStatistics | None
    stats_provenance: Provenance | None
    choices: dict[str, PrunePointChoice]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.curves)

    @property
    def layers(self) -> list[int]:
        return [int(i) for i in next(iter(self.curves.values())).layers]

    @property
    def prune(self) -> dict[str, int]:
        return {name: c.threshold_point for name, c in self.choices.items()}

    @property
    def exact(self) -> bool:
        return all(is_exact(c) for c in self.curves.values())

    @property
    def captions(self) -> list[str]:
        return export.captions([self.provenance])


def control_row() -> tuple[Controls, Any]:
    """k, precision, fraction, Recompute; and the column where the error-bar choice goes."""
    c1, c2, c3, c4, c5 = st.columns([1, 1.1, 1.1, 1.2, 1])
    with c1:
        k = st.slider(
            "k (neighbours)", 1, 30, key="cx_k", help="kNN graph: each clip's k nearest clips."
        )
    with c2:
        precision = st.select_slider(
            "Precision",
            list(PRESETS),
            key="cx_precision",
            help="Standard error to reach per layer score (sources are added until it is met; "
            "every pair is scored when that is cheaper), the authors' 5,000 sampled pairs per "
            "class, or every pair.",
        )
    with c3:
        fraction = st.slider(
            "Prune at fraction of max",
            0.50,
            1.00,
            step=0.01,
            key="cx_fraction",
            help="Suggested prune point p: the first hidden state >= 1 reaching this fraction of "
            "the maximum.",
        )
    with c5:
        st.write("")  # aligns the button with the sliders
        refresh = st.button(
            "Recompute",
            icon=":material/refresh:",
            help="Compute again even though a stored result exists.",
        )
    return Controls(int(k), str(precision), float(fraction), bool(refresh)), c4


def load_shown(fs: FeatureSet, controls: Controls) -> Shown | None:
    """The curves (stored, else computed), their statistics when stored, and prune points."""
    try:
        shown = cached.convexity_result(
            fs.key, controls.k, controls.precision, refresh=controls.refresh
        )
    except LabError as exc:
        st.error(f"Cannot compute convexity: {one_line(exc)}")
        return None
    curves = shown.curves
    found = cached.stored_curve_statistics(fs.key, tuple(curves), controls.k, controls.precision)
    stats, stats_prov = found if found is not None else (None, None)
    choices = {
        name: choose_prune_points(c.scores, c.sems, controls.fraction) for name, c in curves.items()
    }
    return Shown(
        fs.info,
        curves,
        shown.provenance,
        shown.from_store,
        cached.missing_label_sets(fs),
        stats,
        stats_prov,
        choices,
    )


def headline(shown: Shown) -> None:
    """Maximum convexity and suggested prune point per label set."""
    m = st.columns(4)
    for i, (name, curve) in enumerate(shown.curves.items()):
        best = int(np.nanargmax(curve.scores))
        m[2 * i].metric(
            f"max {name} convexity", f"{curve.scores[best]:.3f}", help=f"at hidden state {best}"
        )
        m[2 * i + 1].metric(
            f"prune point ({name})",
            f"p = {shown.prune[name]}",
            help=shown.choices[name].explanation(f"{name} labels"),  # both rules, and why
        )


def bar_choice(shown: Shown, where: Any) -> str:
    """The error-bar choice, in its own column with a visible label."""
    options = [
        "none" if shown.exact else "standard error",
        "population interval",
        HALF_COUNT,
        "authors' spread",
    ]
    if st.session_state.get("cx_bars") not in options:
        st.session_state.cx_bars = options[0]
    with where:
        return st.selectbox(
            "Error bars",
            options,
            key="cx_bars",
            help="Standard error of the sampled estimate of these clips' exhaustive score (0 for "
            "an exact result); the population interval: where the curve would lie for other "
            "speakers (words) or the same speakers with other recordings (speakers) "
            f"({cached.STATS_RESAMPLES} half-samples, docs/reading-plots.md); half the speakers: "
            "the other-speakers interval, speaker convexity of other sets of half as many speakers, drawn as its own "
            "dotted curve (speaker convexity moves with the number of speakers); or the authors' "
            "spread bar: per class the std of pair scores "
            "/ sqrt(points), averaged over classes. The spread describes how pair scores vary, "
            "not how uncertain the score is.",
        )


def population_bar(shown: Shown, name: str) -> np.ndarray | None:
    """Half-width of the stored population interval of a label set (None when not computed)."""
    s = None if shown.stats is None else shown.stats.sets.get(name)
    if s is None or s.interval is None:
        return None
    return np.asarray(s.interval.high) - np.asarray(s.interval.score)


def half_count(shown: Shown, name: str) -> Any:
    """The stored "other speakers, half the count" interval of a label set, or None."""
    s = None if shown.stats is None else shown.stats.sets.get(name)
    return None if s is None else s.other_speakers


def curve_plot(shown: Shown, bars: str) -> go.Figure:
    """The convexity curves with the chosen error bars, chance bands and prune points."""
    lines = []
    for name, curve in shown.curves.items():
        half = half_count(shown, name) if bars == HALF_COUNT else None
        if half is not None:
            lines.append(
                figures.Curve(
                    f"{name}, other speakers at half the count",
                    [int(i) for i in half.layers],
                    np.asarray(half.score),
                    err=np.asarray(half.high) - np.asarray(half.score),
                    colour=COLOURS[name],
                    dash="dot",
                    width=2,
                )
            )
        bar = {
            "standard error": curve.sems,
            "authors' spread": spread_bars(curve),
            "population interval": population_bar(shown, name),
        }.get(bars)
        hover = [
            f"{name}<br>hidden state {x}<br>convexity {y:.3f}"
            + ("" if bar is None else f" ± {b:.3f} ({BAR_KINDS[bars]})")
            for x, y, b in zip(
                curve.layers, curve.scores, bar if bar is not None else curve.sems, strict=True
            )
        ]
        lines.append(
            figures.Curve(
                f"{name} ({len(curve.results[0].per_class)} classes)",
                [int(i) for i in curve.layers],
                curve.scores,
                err=bar,
                colour=COLOURS[name],
                hover=hover,
            )
        )
    bands = []
    if shown.stats is not None:  # chance: exact mean +- 2 sd of permuted estimates
        for name in shown.curves:
            s = shown.stats.sets.get(name)
            if s is not None and s.chance is not None:
                bands.append(
                    (
                        f"chance ({name})",
                        s.chance.layers,
                        np.asarray(s.chance.mean),
                        2 * np.asarray(s.chance.std),
                        COLOURS[name],
                    )
                )
    info = shown.info
    return figures.convexity_figure(
        lines,
        bands=bands,
        prune_points={n: (p, COLOURS[n]) for n, p in shown.prune.items()},
        note="incl. final LayerNorm" if info.final_layer_norm else None,
        note_x=info.n_layers,
        caption=shown.captions,
    )


def bar_note(shown: Shown, bars: str) -> str:
    """What the error bars are (or why there are none)."""
    stats = shown.stats
    if bars == HALF_COUNT:
        halves = {n: iv for n in shown.curves if (iv := half_count(shown, n)) is not None}
        if not halves:
            return (
                "no other-speakers interval: it needs speaker labels with at least 8 speakers and "
                "the statistics computed (button below)"
            )
        return "; ".join(
            f"dotted: {name} at half the speakers, {iv.level:.0%} interval of {INTERVAL_OF}"
            for name, iv in halves.items()
        )
    if bars == "population interval":
        with_interval = [
            n for n in shown.curves if population_bar(shown, n) is not None and stats is not None
        ]
        if not with_interval:
            return "no error bars: the population interval is not computed" + (
                " for this data (below)" if stats is not None else " yet (button below)"
            )
        level = stats.sets[with_interval[0]].interval.level
        schemes = stats.settings["scheme"]
        guards = [
            f"{n}: {note}" for n in with_interval if (note := stats.sets[n].interval.guard_note())
        ]
        return (
            f"error bars: {level:.0%} population interval ({stats.settings['n_resamples']} "
            "half-samples): "
            + "; ".join(
                f"{n}: {stats.sets[n].interval.question or 'other clips'}, "
                f"{schemes[n].removeprefix('half-samples: ')}"
                for n in with_interval
                if schemes.get(n)
            )
            + "".join(f"; {g}" for g in guards)
        )
    if bars == "authors' spread":
        return (
            "error bars: the authors' spread, std of pair scores / sqrt(points), mean over classes"
        )
    if shown.exact:
        return "no error bars"
    return "error bars: standard error of the sampled estimate of the exhaustive score"


def curve_section(shown: Shown, controls: Controls, bars: str) -> go.Figure:
    """The curve plot and the line of notes under it."""
    fig = curve_plot(shown, bars)
    figures.show(fig, key="cx_curve", config=figures.figure_config("convexity", fig))
    if shown.missing:
        st.caption(" ".join(f"{why.capitalize()}." for why in shown.missing.values()))
    se_note = (
        "exact (exhaustive): every ordered pair scored, no sampling error"
        if shown.exact
        else "; ".join(precision_note(n, c) for n, c in shown.curves.items())
    )
    origin = "loaded from the results store" if shown.from_store else "computed now and stored"
    notes = [f"k = {controls.k}", se_note, bar_note(shown, bars), "layer score = mean over classes"]
    notes.append(origin)
    excluded = {n: c.results[0].n_excluded_classes for n, c in shown.curves.items()}
    if any(excluded.values()):
        notes.append(
            "classes with fewer than 2 clips have no pairs and are excluded: "
            + ", ".join(f"{v} {n}" for n, v in excluded.items() if v)
        )
    if shown.info.final_layer_norm:
        notes.append(
            f"Whisper applies a final LayerNorm to hidden state {shown.info.n_layers} only"
        )
    if shown.stats is not None and shown.stats.settings.get("n_permutations"):
        notes.append(
            "dashed bands: chance level, the exact mean over label permutations (class sizes "
            f"kept) ± 2 sd of {shown.stats.settings['n_permutations']} permuted estimates "
            "(estimator noise included: errs wide)"
        )
    st.caption("; ".join(notes) + ".")
    return fig


def statistics_section(shown: Shown, controls: Controls) -> None:
    """Prune-point stability (at the fraction chosen now) when stored, and what could not be
    computed; else the button with its expected cost, or the running job's progress and Cancel."""
    args = (shown.info.key, shown.names, controls.k, controls.precision)
    choice = cached.statistics_choice(*args)
    if shown.stats is not None:
        for name in shown.curves:
            s = shown.stats.sets.get(name)
            stability = None if s is None else s.stability_at(controls.fraction)
            if stability is not None:
                text = stability_text(name, stability)
                (st.caption if stability.stable else st.warning)(text)
        for why in choice.missing.values():
            st.caption(f"{why[0].upper()}{why[1:]}")
        return
    status = cached.statistics_status(*args)
    if status is not None and status.active:
        statistics_progress(*args)
        return
    mine = status is not None and status.owner == session_id()
    if mine and status.state == "failed":
        st.error(f"Curve statistics failed: {status.error}")
    elif mine and status.state == "cancelled":
        st.caption("Curve statistics cancelled; nothing was stored.")
    measured = curve_seconds(shown.curves)
    estimate = choice.estimate_s(measured)
    cost = (
        f"about {format_seconds(estimate)} on this machine at its load now: "
        f"{choice.units / max(choice.n_layers, 1):.0f}x the {measured:.1f} s the curves took"
        if estimate is not None
        else "several times the curves' own time"
    )
    parts = [f"{cached.STATS_PERMUTATIONS} label permutations (sharing the curve's trees)"]
    if choice.options.n_resamples:
        parts.append(
            f"{choice.options.n_resamples} half-samples of the speakers (words) and of each "
            "speaker's clips (speakers)"
        )
    parts.append(f"{cached.STATS_SEEDS} estimator seeds")
    b1, b2 = st.columns([1.2, 2])
    with b1:
        clicked = st.button(
            "Chance level and population intervals"
            if choice.options.n_resamples
            else "Chance level",
            icon=":material/insights:",
            key="cx_stats_go",
            help=", ".join(parts) + "; runs in a background process (Cancel stops it) and is "
            "stored.",
        )
    with b2:
        st.caption(f"Takes {cost}; runs in the background and can be cancelled.")
    for why in choice.missing.values():
        st.caption(f"{why[0].upper()}{why[1:]}")
    if clicked:
        cached.start_statistics(*args)
        st.rerun()


@st.fragment(run_every=1.0)
def statistics_progress(key: str, names: tuple[str, ...], k: int, precision: str) -> None:
    """Progress of the running curve statistics with time left from the measured rate, and Cancel;
    reruns the page when the job ends."""
    status = cached.statistics_status(key, names, k, precision)
    if status is None or not status.active:
        st.rerun(scope="app")
        return
    p1, p2 = st.columns([5, 1])
    p1.progress(status.fraction(), text=f"Chance level and population intervals: {status.text()}")
    if p2.button("Cancel", icon=":material/cancel:", key="cx_stats_cancel"):
        cached.cancel_statistics(key, names, k, precision)
        st.rerun(scope="app")


def class_section(shown: Shown) -> None:
    """Per-class convexity heatmap of one label set, every class labelled, in the chosen order."""
    st.subheader("Per-class convexity")
    h1, h2 = st.columns([1, 3])
    with h1:
        which = st.segmented_control("Classes", list(shown.curves), key="cx_heat")
        which = which if which in shown.curves else next(iter(shown.curves))
        order = st.radio(
            "Sort classes by",
            CLASS_ORDERS,
            key="cx_sort",
            format_func=lambda o: "name (A to Z)" if o == "name" else f"{o} (highest first)",
        )
    table = class_table(shown.curves[which], shown.prune[which], order)
    if table.exact:
        note = f"{which} classes: exact (every ordered pair scored)"
    else:
        note = (
            f"{which} classes: sampled estimates; the precision setting is the layer average's "
            f"SE, each class's own SE is larger (up to ± {table.largest_se():.3f} here; on hover)"
        )
    heat = figures.class_heatmap(table, [note, *shown.captions])
    with h2:
        figures.show(
            heat,
            key="cx_heatmap",
            config=figures.figure_config(f"convexity-{which}-classes", heat),
        )


def scaled(values: np.ndarray) -> np.ndarray:
    """Min-max scaling over layers (NaN kept) so curves of different units share an axis."""
    lo, hi = np.nanmin(values), np.nanmax(values)
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def criteria_section(shown: Shown, controls: Controls) -> None:
    """Other layer-selection criteria beside graph convexity, and the prune point each proposes."""
    st.subheader("Compare with other layer-selection criteria")
    st.caption(
        "Each curve is scaled to [0, 1] over the layers so their shapes compare; the table lists "
        "the prune point each criterion proposes under its documented rule "
        "(core/geometry/criteria.py)."
    )
    q1, q2 = st.columns([1, 3])
    with q1:
        task = st.segmented_control("Task labels", list(shown.curves), key="cr_labels")
        task = task if task in shown.curves else next(iter(shown.curves))
        on = st.toggle(
            "Compute the criteria",
            key="cr_on",
            help="; ".join(spec.description for spec in CRITERIA.values())
            + " (the linear probe takes a while).",
        )
    if not on:
        return
    results, criteria_prov = cached.criteria_with_provenance(shown.info.key, task, controls.k)
    lines = export.captions([criteria_prov, shown.provenance])
    names = [n for n, r in results.items() if r.kind == "curve"]
    with q1:
        picked = st.pills("Show", names, selection_mode="multi", default=names, key="cr_shown")
    layers = shown.layers
    curves = [
        figures.Curve(
            f"graph convexity ({task})",
            layers,
            scaled(shown.curves[task].scores),
            colour=COLOURS[task],
        )
    ] + [
        figures.Curve(
            name.replace("_", " "),
            layers,
            scaled(np.asarray(results[name].values, dtype=float)),
            width=2,
        )
        for name in picked or []
    ]
    norm = figures.fit_height(
        figures.curve_figure(curves, y_title="scaled to [0, 1]", caption=lines), 300
    )
    with q2:
        figures.show(norm, key="cr_curves", config=figures.figure_config("criteria", norm))
    matrices = [(n, r) for n, r in results.items() if r.kind == "matrix"]
    for start in range(0, len(matrices), 2):  # two per row: each keeps a readable width
        for col, (name, res) in zip(st.columns(2), matrices[start : start + 2], strict=False):
            mat = figures.criteria_matrix(name, res.values, layers, lines)
            with col:
                st.caption(f"**{name.replace('_', ' ')}** (layer x layer): {res.rule_text}")
                figures.show(
                    mat, key=f"cr_{name}", config=figures.figure_config(f"criteria-{name}", mat)
                )
    table = pd.DataFrame(
        compare_prune_points(results, {task: shown.curves[task]}, controls.fraction)
    )
    st.table(table[["criterion", "layer", "rule"]].set_index("criterion"))  # wraps the rule text


def download_section(shown: Shown, controls: Controls, fig: go.Figure) -> None:
    """CSV, JSON and HTML of the result, each titled and carrying every block's provenance."""
    st.subheader("Download")
    stats, provenance = shown.stats, [shown.provenance]
    if shown.stats_provenance is not None:
        provenance.append(shown.stats_provenance)
    settings = run_settings(shown.curves) | {"fraction": controls.fraction}
    info = shown.info
    doc = export.convexity_document(
        TITLE,
        {"key": info.key, "model": info.model_key, "describe": info.describe},
        settings,
        shown.curves,
        shown.provenance,
        prune_points=shown.prune,
        stats=stats,
        stats_provenance=shown.stats_provenance,
    )
    frame = pd.DataFrame(export.curve_rows(shown.curves, stats))
    d1, d2, d3, d4 = st.columns(4)
    d1.download_button(
        "Numbers (CSV)",
        f"# {TITLE}\n" + export.csv_with_provenance(frame.to_csv(index=False), provenance),
        "convexity.csv",
        "text/csv",
        icon=":material/table:",
    )
    d2.download_button(
        "Numbers (JSON)",
        json.dumps(doc, indent=1, default=str),
        "convexity.json",
        "application/json",
        icon=":material/data_object:",
    )
    d3.download_button(
        "Figure (HTML)",
        lambda: export.figure_html(fig, shown.captions, "convexity", TITLE),
        "convexity.html",
        "text/html",
        icon=":material/image:",
    )  # built on click; plotly.js inlined, so it opens offline
    with d4:
        figures.image_format_picker()


def main() -> None:
    """The page: controls, curves with statistics, classes, other criteria, downloads."""
    st.title(TITLE)
    fs = current_features(DEFAULTS)
    if fs is None:
        return
    features_caption(fs)
    controls, bar_column = control_row()
    shown = load_shown(fs, controls)
    if shown is None:
        return
    bars = bar_choice(shown, bar_column)
    fig = curve_section(shown, controls, bars)  # first: above the fold at 1024 x 768
    headline(shown)
    statistics_section(shown, controls)
    class_section(shown)
    criteria_section(shown, controls)
    download_section(shown, controls, fig)


main()
