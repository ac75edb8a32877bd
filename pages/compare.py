"""Compare: overlay stored convexity curves (models, datasets, fine-tuned runs, label sets); share by link."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import LabError
from core.geometry import chance_normalised, paired_difference
from core.results import (
    CURVE_KINDS,
    CurveSeries,
    StatisticsMatch,
    class_difference,
    comparability_note,
    default_curves,
    export,
    export_bundle,
    import_bundle,
    list_results,
    picker_labels,
    prune_table,
    same_clips,
    series_of,
    statistics_by_curve,
    store_all_run_curves,
)
from pages.parts import figures
from pages.parts.compare_size import equal_size_section
from pages.parts.messages import one_line
from pages.parts.series_view import series_section
from pages.parts.state import init_state

AXES = {"relative": "relative depth (0 = input, 1 = last layer)", "absolute": figures.LAYER_AXIS}
BARS = {
    "se": "standard error",
    "interval": "population interval",
    "half": "half the speakers",
    "spread": "authors' spread",
    "none": "none",
}


@dataclass(frozen=True)
class Choice:
    """What the controls chose: the curves (after the chance-normalised filter) and how to draw them."""

    chosen: list[CurveSeries]
    axis: str
    bars: str
    fraction: float
    show_chance: bool
    normalised: bool
    with_chance: list[CurveSeries]


def import_section() -> None:
    """Import a results bundle, or store every fine-tuning run's curves."""
    with st.expander("Import a results bundle or fine-tuning runs", icon=":material/upload:"):
        upload = st.file_uploader(
            "Results bundle (.zip from export-results)", type=["zip"], key="cmp_upload"
        )
        i1, i2 = st.columns(2)
        if upload is not None and i1.button("Import bundle", icon=":material/move_to_inbox:"):
            try:
                keys = import_bundle(upload.getvalue())
                st.success(f"Imported {len(keys)} result(s): {', '.join(k[:8] for k in keys)}")
            except LabError as exc:
                st.error(f"Bundle rejected: {one_line(exc)}")
        if i2.button("Add fine-tuning runs' curves", icon=":material/model_training:"):
            st.success(
                f"{len(store_all_run_curves())} run(s) with pretrained vs fine-tuned curves stored"
            )


def seed_from_link(series: list[CurveSeries]) -> None:
    """Linkable state: query parameters seed the widgets once per session, then follow them."""
    if "cmp_loaded" in st.session_state:
        return
    by_id = {s.id: s for s in series}
    st.session_state.cmp_loaded = True
    q = st.query_params
    st.session_state.cmp_curves = [i for i in q.get_all("curve") if i in by_id] or default_curves(
        series
    )
    st.session_state.cmp_axis = q.get("axis") if q.get("axis") in AXES else "relative"
    st.session_state.cmp_bars = q.get("bars") if q.get("bars") in BARS else "se"
    try:
        st.session_state.cmp_fraction = min(1.0, max(0.5, float(q.get("fraction", 0.95))))
    except ValueError:
        st.session_state.cmp_fraction = 0.95


def stats_of(matches: dict, s: CurveSeries) -> StatisticsMatch | None:
    """The stored curve statistics of a curve's feature set and label set, or None."""
    if s.provenance is None:
        return None
    return matches.get((s.provenance.feature_key, s.label_set))


def controls(series: list[CurveSeries], labels: dict[str, str], matches: dict) -> Choice | None:
    """The curve picker, axis, error bars, prune fraction and the chance toggles (None: none picked)."""
    by_id = {s.id: s for s in series}
    picked = st.multiselect("Curves", list(by_id), format_func=labels.get, key="cmp_curves")
    c1, c2, c3 = st.columns([1.3, 1.3, 1])
    with c1:
        axis = st.radio(
            "Layer axis", list(AXES), format_func=AXES.get, key="cmp_axis", horizontal=True
        )
    with c2:
        bars = st.radio(
            "Error bars", list(BARS), format_func=BARS.get, key="cmp_bars", horizontal=True
        )
    with c3:
        fraction = st.slider("Prune at fraction of max", 0.50, 1.00, step=0.01, key="cmp_fraction")
    st.query_params.from_dict(
        {"curve": picked, "axis": axis, "bars": bars, "fraction": f"{fraction:.2f}"}
    )
    chosen = [by_id[i] for i in picked]
    if not chosen:
        st.info("Pick one or more curves.")
        return None
    with_chance = [
        s for s in chosen if (m := stats_of(matches, s)) is not None and m.stats.chance is not None
    ]
    t1, t2 = st.columns(2)
    show_chance = t1.toggle(
        "Chance band",
        value=True,
        key="cmp_chance",
        disabled=not with_chance,
        help="Graph convexity of the same features with labels permuted (class sizes kept), dashed: "
        "the exact mean over relabellings ± 2 sd of the permuted estimates (an upper bound of the "
        "spread). Computed with the Convexity page's 'Chance level and population "
        "intervals' or `python -m core convexity --chance K`.",
    )
    normalised = t2.toggle(
        "Chance-normalised",
        value=False,
        key="cmp_norm",
        disabled=not with_chance,
        help="(score - chance) / (1 - chance): 0 at chance, 1 at perfect convexity; curves with "
        "different numbers of classes or clips compare on this scale.",
    )
    note = comparability_note(chosen)
    if note:
        st.info(note, icon=":material/balance:")
    if normalised:
        dropped = [labels[s.id] for s in chosen if s not in with_chance]
        chosen = with_chance
        if dropped:
            st.caption(
                "Without a stored chance level (not shown normalised): " + "; ".join(dropped)
            )
    return Choice(chosen, axis, bars, float(fraction), show_chance, normalised, with_chance)


def stored_interval(matches: dict, s: CurveSeries, bars: str) -> Any:
    """The stored interval a bar choice asks for ("interval": the label set's own; "half": other
    speakers at half the count), or None."""
    m = stats_of(matches, s)
    if m is None or bars not in ("interval", "half"):
        return None
    return m.stats.interval if bars == "interval" else m.stats.other_speakers


def curves_section(c: Choice, matches: dict) -> tuple[go.Figure, list[str]]:
    """The overlaid curves (with chance bands) and the notes on how to read them."""
    relative = c.axis == "relative"
    provenance = [s.provenance for s in c.chosen if s.provenance is not None]
    caption_lines = export.captions(provenance)
    entry_keys = list(dict.fromkeys(s.entry_key for s in c.chosen))
    colours = dict(zip(entry_keys, figures.palette(len(entry_keys)), strict=True))
    lines = []
    for s in c.chosen:
        err = s.bars(c.bars)
        iv = stored_interval(matches, s, c.bars)
        if c.bars == "interval" and iv is not None and tuple(iv.layers) == tuple(s.layers):
            err = np.asarray(iv.high) - np.asarray(iv.score)
        if c.bars == "half" and iv is not None and not c.normalised:
            lines.append(
                figures.Curve(
                    f"{s.label()} · other speakers, half the count",
                    [layer / max(s.n_layers, 1) if relative else layer for layer in iv.layers],
                    np.asarray(iv.score),
                    err=np.asarray(iv.high) - np.asarray(iv.score),
                    colour=colours[s.entry_key],
                    dash="dot",
                    width=2,
                )
            )
        dash = (
            "dash"
            if "(pretrained)" in s.label_set
            else ("dot" if s.label_set.startswith("speaker") else None)
        )
        hover = [
            f"{s.label()}<br>hidden state {layer}<br>convexity {score:.3f}"
            for layer, score in zip(s.layers, s.scores, strict=True)
        ]
        y = s.scores
        if c.normalised:
            m = stats_of(matches, s)
            chance_at = dict(zip(m.stats.chance.layers, m.stats.chance.mean, strict=True))
            y = chance_normalised(s.scores, [chance_at.get(i, np.nan) for i in s.layers])
            err = None
        lines.append(
            figures.Curve(
                s.label(),
                s.x(relative),
                y,
                err=err,
                colour=colours[s.entry_key],
                dash=dash,
                hover=hover,
            )
        )
    fig = figures.curve_figure(
        lines,
        height=480,
        x_title=AXES[c.axis],
        y_title="chance-normalised convexity" if c.normalised else "graph convexity",
        y_range=None if c.normalised else (0, 1.05),
        integer_x=not relative,
        caption=caption_lines,
    )
    if c.show_chance and not c.normalised:
        for s in c.with_chance:
            if s not in c.chosen:
                continue
            ch = stats_of(matches, s).stats.chance
            at = dict(zip(ch.layers, zip(ch.mean, ch.std, strict=True), strict=True))
            mean = np.array([at.get(i, (np.nan, np.nan))[0] for i in s.layers])
            sd = np.array([at.get(i, (np.nan, np.nan))[1] for i in s.layers])
            figures.add_band(
                fig, f"chance · {s.label()}", s.x(relative), mean, 2 * sd, colours[s.entry_key]
            )
    if relative:
        fig.update_xaxes(range=[-0.03, 1.03])
    figures.show(fig, key="cmp_curves_plot", config=figures.figure_config("compare", fig))
    st.caption(reading_notes(c))
    return fig, caption_lines


def reading_notes(c: Choice) -> str:
    """How to read the curves: exactness, error bars, the axis, styles, chance bands."""
    exact = [s.label() for s in c.chosen if s.exact]
    notes = []
    if len(exact) == len(c.chosen):
        notes.append("every curve is exact (every ordered pair scored, no sampling error)")
    elif exact:
        notes.append(
            f"exact (every ordered pair scored): {'; '.join(exact)}; the others are sampled estimates"
        )
    else:
        notes.append("every curve is a sampled estimate")
    if c.bars == "se":
        notes.append(
            "error bars: standard error of the estimate"
            + (" (0 for exact curves)" if exact else "")
        )
    elif c.bars == "spread":
        notes.append(
            "error bars: the authors' spread, std of pair scores / sqrt(points), mean over classes"
        )
    elif c.bars == "interval":
        notes.append(
            "error bars: the stored 90% population interval where computed (words: other speakers, "
            "same count; speakers: same speakers, other recordings), none elsewhere"
        )
    elif c.bars == "half":
        notes.append(
            "thin dotted curves: speaker convexity of other speakers at half the count, with its "
            "90% interval (speaker curves with stored statistics only; docs/reading-plots.md)"
        )
    if c.axis == "relative":
        notes.append(
            "relative depth = hidden state / layers, so models of different depth share the axis"
        )
    notes.append("one colour per stored result; speaker curves dotted, pretrained curves dashed")
    if c.show_chance and c.with_chance and not c.normalised:
        notes.append(
            "thin dashed lines and bands: chance level, exact mean over label permutations ± 2 sd of "
            "the permuted estimates (estimator noise included: errs wide)"
        )
    if c.normalised:
        notes.append("y: (score - chance) / (1 - chance), no error bars")
    return "; ".join(notes) + "."


def pair_pickers(ids: list[str], labels: dict[str, str], keys: tuple[str, str]) -> tuple[str, str]:
    """Two curve pickers side by side, A the first and B the second of ``ids`` by default."""
    h1, h2 = st.columns(2)
    a_id = h1.selectbox("A", ids, index=0, format_func=labels.get, key=keys[0])
    b_id = h2.selectbox("B", ids, index=1, format_func=labels.get, key=keys[1])
    return a_id, b_id


def class_difference_section(c: Choice, labels: dict[str, str]) -> None:
    """A minus B per class and layer as a heatmap (curves with per-class scores only)."""
    with_classes = [s for s in c.chosen if s.per_class]
    if len(with_classes) < 2:
        return
    st.subheader("Per-class difference")
    by_id = {s.id: s for s in with_classes}
    a_id, b_id = pair_pickers(list(by_id), labels, ("cmp_a", "cmp_b"))
    diff = class_difference(by_id[a_id], by_id[b_id])
    classes, x, z = diff.classes, diff.x, diff.z
    if not classes:
        st.info("A and B share no classes.")
        return
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    heat = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=classes,
            zmid=0,
            zmin=-lim,
            zmax=lim,
            colorscale="RdBu",
            colorbar={"title": {"text": "A − B"}},
            hovertemplate="%{y}<br>%{x}<br>A − B %{z:.3f}<extra></extra>",
        )
    )
    heat.update_yaxes(type="category", tickfont={"size": 11})
    x_title = AXES["relative"] if diff.resampled else figures.LAYER_AXIS
    figures.style(
        heat,
        height=max(320, 16 * len(classes) + 90),
        x_title=x_title,
        y_title="class",
        legend=False,
    )
    if not diff.resampled:
        figures.integer_axis(heat, x, pad=0.5)
    pair = [f"A = {labels[a_id]}", f"B = {labels[b_id]}"]
    heat.update_layout(title={"text": "A − B per class", "x": 0, "xanchor": "left"})
    sources = [s.provenance for s in (by_id[a_id], by_id[b_id]) if s.provenance is not None]
    export.add_caption(heat, pair + export.captions(sources))
    figures.show(heat, key="cmp_heatmap", config=figures.figure_config("compare-classes", heat))
    st.caption(
        "Convexity of A minus B per class (blue: A higher)."
        + (
            " The depths differ: B is interpolated at A's relative depths."
            if diff.resampled
            else ""
        )
    )


def paired_section(
    c: Choice, matches: dict, labels: dict[str, str], caption_lines: list[str]
) -> list[dict[str, Any]]:
    """The paired difference of two curves with stored intervals on the same clips; its rows."""
    with_intervals = [
        s
        for s in c.chosen
        if (m := stats_of(matches, s)) is not None and m.stats.interval is not None
    ]
    if len(with_intervals) < 2:
        return []
    st.subheader("Paired difference")
    by_id = {s.id: s for s in with_intervals}
    pa, pb = pair_pickers(list(by_id), labels, ("cmp_pa", "cmp_pb"))
    sa, sb = by_id[pa], by_id[pb]
    ma, mb = stats_of(matches, sa), stats_of(matches, sb)
    if pa == pb:
        st.info("Pick two different curves.")
        return []
    if not same_clips(ma.provenance, mb.provenance):
        st.info(
            "A and B were computed on different clips: a paired difference needs the same clips "
            "(the same half-samples on both sides)."
        )
        return []
    try:
        diff = paired_difference(
            ma.stats.interval, mb.stats.interval, f"A ({sa.label_set})", f"B ({sb.label_set})"
        )
    except LabError as exc:
        st.info(f"No paired difference: {one_line(exc)}")
        return []
    centre = np.asarray(diff.difference)
    half = (np.asarray(diff.high) - np.asarray(diff.low)) / 2
    dfig = figures.curve_figure(
        [figures.Curve("A − B", list(diff.layers), centre, colour="#0f766e")],
        height=320,
        y_title="A − B (graph convexity)",
        y_range=None,
        caption=[f"A = {labels[pa]}", f"B = {labels[pb]}", *caption_lines],
    )
    figures.add_band(
        dfig, f"{diff.level:.0%} paired interval", list(diff.layers), centre, half, "#0f766e"
    )
    dfig.add_hline(y=0, line={"color": "grey", "width": 1})
    marked = [i for i, ex in zip(diff.layers, diff.excludes_zero, strict=True) if ex]
    if marked:
        dfig.add_scatter(
            x=marked,
            y=[centre[list(diff.layers).index(i)] for i in marked],
            mode="markers",
            marker={"symbol": "star", "size": 14, "color": "#0f766e"},
            name="interval excludes 0",
        )
    figures.show(dfig, key="cmp_paired", config=figures.figure_config("paired", dfig))
    st.markdown(f"**Verdict:** {diff.verdict}.")
    rows = [
        {
            "layer": i,
            "A − B": round(d, 4),
            "low": round(lo, 4),
            "high": round(hi, 4),
            "excludes 0": ex,
        }
        for i, d, lo, hi, ex in zip(
            diff.layers, diff.difference, diff.low, diff.high, diff.excludes_zero, strict=True
        )
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="cmp_paired_table")
    st.caption(
        f"{diff.level:.0%} paired interval from {diff.n_resamples} half-samples shared by "
        "both sides (the same units drawn for A and B, so noise they share cancels); "
        "centred on the full-data difference of the stored statistics' curves; starred "
        "where it excludes 0."
    )
    return rows


def downloads_section(
    c: Choice,
    matches: dict,
    fig: go.Figure,
    caption_lines: list[str],
    prune_rows: list[dict[str, Any]],
    paired_rows: list[dict[str, Any]],
) -> None:
    """The curves as CSV and JSON, the figure as HTML, the results as a bundle."""
    st.subheader("Download")
    provenance = [s.provenance for s in c.chosen if s.provenance is not None]
    long_rows = [
        {
            "curve": s.label(),
            "key": s.entry_key,
            "labels": s.label_set,
            "layer": layer,
            "relative_depth": layer / max(s.n_layers, 1),
            "score": float(score),
            "sem": float(sem),
            "exact": s.exact,
        }
        for s in c.chosen
        for layer, score, sem in zip(s.layers, s.scores, s.sems, strict=True)
    ]
    d1, d2, d3, d4, d5 = st.columns(5)
    d1.download_button(
        "Curves (CSV)",
        export.csv_with_provenance(pd.DataFrame(long_rows).to_csv(index=False), provenance),
        "compare.csv",
        "text/csv",
        icon=":material/table:",
    )
    chance = {
        s.id: stats_of(matches, s).stats.chance.to_dict() for s in c.with_chance if s in c.chosen
    }
    d2.download_button(
        "Curves (JSON)",
        json.dumps(
            export.json_with_provenance(
                {
                    "curves": long_rows,
                    "prune_points": prune_rows,
                    "chance": chance,
                    "paired": paired_rows,
                },
                provenance,
            ),
            indent=1,
        ),
        "compare.json",
        "application/json",
        icon=":material/data_object:",
    )
    d3.download_button(
        "Figure (HTML)",
        lambda: export.figure_html(fig, caption_lines, "compare", "Graph convexity per layer"),
        "compare.html",
        "text/html",
        icon=":material/image:",
    )
    keys = list(dict.fromkeys(s.entry_key for s in c.chosen))

    def bundle() -> bytes:
        """The selected curves' stored results as a bundle (built on click)."""
        with tempfile.TemporaryDirectory() as tmp:
            return export_bundle(keys, Path(tmp) / "b.zip").read_bytes()

    d4.download_button(
        "Results bundle (zip)",
        bundle,
        "results-bundle.zip",
        "application/zip",
        icon=":material/archive:",
    )
    with d5:
        figures.image_format_picker()


def main() -> None:
    """The page: import, pick and overlay stored curves, their differences, downloads, series."""
    st.title("Compare stored results")
    init_state()
    import_section()
    entries = list_results()
    series = [
        s
        for e in entries
        if e.kind in CURVE_KINDS
        for s in series_of(e.key, e.kind, e.data, e.provenance)
    ]
    if not series:
        st.info(
            "No stored curves yet: compute some on the Convexity page, with "
            "`python -m core convexity ...`, or import a bundle above."
        )
        return
    matches = statistics_by_curve(entries)
    seed_from_link(series)
    labels = picker_labels(series)
    choice = controls(series, labels, matches)
    if choice is not None:
        fig, caption_lines = curves_section(choice, matches)
        st.subheader("Peaks and suggested prune points")
        prune_rows = prune_table(choice.chosen, choice.fraction)
        st.dataframe(pd.DataFrame(prune_rows), hide_index=True, key="cmp_table")
        class_difference_section(choice, labels)
        paired_rows = paired_section(choice, matches, labels, caption_lines)
        equal_size_section(choice.chosen, labels, pair_pickers)
        downloads_section(choice, matches, fig, caption_lines, prune_rows, paired_rows)
    series_section()


main()
