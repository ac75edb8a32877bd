"""Compare: overlay stored convexity curves (models, datasets, fine-tuned runs, label sets); share by link."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.errors import LabError
from core.results import export
from core.results.bundle import export_bundle, import_bundle
from core.results.compare import CURVE_KINDS, class_difference, prune_table, series_of
from core.results.runs import store_all_run_curves
from core.results.store import list_results
from pages import figures
from pages.messages import one_line
from pages.series_view import series_section
from pages.state import init_state

AXES = {"relative": "relative depth (0 = input, 1 = last layer)", "absolute": figures.LAYER_AXIS}
BARS = {"se": "standard error", "spread": "authors' spread", "none": "none"}

st.title("Compare stored results")
init_state()

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

series = [
    s
    for e in list_results()
    if e.kind in CURVE_KINDS
    for s in series_of(e.key, e.kind, e.data, e.provenance)
]
if not series:
    st.info(
        "No stored curves yet: compute some on the Convexity page, with `python -m core convexity ...`, "
        "or import a bundle above."
    )
    st.stop()
by_id = {s.id: s for s in series}

# Linkable state: query parameters seed the widgets once per session, then follow them.
if "cmp_loaded" not in st.session_state:
    st.session_state.cmp_loaded = True
    q = st.query_params
    st.session_state.cmp_curves = [i for i in q.get_all("curve") if i in by_id] or list(by_id)[:2]
    st.session_state.cmp_axis = q.get("axis") if q.get("axis") in AXES else "relative"
    st.session_state.cmp_bars = q.get("bars") if q.get("bars") in BARS else "se"
    try:
        st.session_state.cmp_fraction = min(1.0, max(0.5, float(q.get("fraction", 0.95))))
    except ValueError:
        st.session_state.cmp_fraction = 0.95

picked = st.multiselect(
    "Curves", list(by_id), format_func=lambda i: by_id[i].label(), key="cmp_curves"
)
c1, c2, c3 = st.columns([1.3, 1.3, 1])
with c1:
    axis = st.radio("Layer axis", list(AXES), format_func=AXES.get, key="cmp_axis", horizontal=True)
with c2:
    bars = st.radio("Error bars", list(BARS), format_func=BARS.get, key="cmp_bars", horizontal=True)
with c3:
    fraction = st.slider("Prune at fraction of max", 0.50, 1.00, step=0.01, key="cmp_fraction")
st.query_params.from_dict(
    {"curve": picked, "axis": axis, "bars": bars, "fraction": f"{fraction:.2f}"}
)
chosen = [by_id[i] for i in picked]
if not chosen:
    st.info("Pick one or more curves.")
    st.stop()

relative = axis == "relative"
provenance = [s.provenance for s in chosen if s.provenance is not None]
caption_lines = export.captions(provenance)
entry_keys = list(dict.fromkeys(s.entry_key for s in chosen))
colours = dict(
    zip(entry_keys, figures.palette(len(entry_keys)), strict=True)
)  # one colour per result
lines = []
for s in chosen:
    err = s.bars(bars)
    dash = (
        "dash"
        if "(pretrained)" in s.label_set
        else ("dot" if s.label_set.startswith("speaker") else None)
    )
    hover = [
        f"{s.label()}<br>hidden state {layer}<br>convexity {score:.3f}"
        for layer, score in zip(s.layers, s.scores, strict=True)
    ]
    lines.append(
        figures.Curve(
            s.label(),
            s.x(relative),
            s.scores,
            err=err,
            colour=colours[s.entry_key],
            dash=dash,
            hover=hover,
        )
    )
fig = figures.curve_figure(
    lines, height=480, x_title=AXES[axis], integer_x=not relative, caption=caption_lines
)
if relative:
    fig.update_xaxes(range=[-0.03, 1.03])
figures.show(fig, key="cmp_curves_plot", config=figures.figure_config("compare", fig))

exact = [s.label() for s in chosen if s.exact]
notes = []
if len(exact) == len(chosen):
    notes.append("every curve is exact (every ordered pair scored, no sampling error)")
elif exact:
    notes.append(
        f"exact (every ordered pair scored): {'; '.join(exact)}; the others are sampled estimates"
    )
else:
    notes.append("every curve is a sampled estimate")
if bars == "se":
    notes.append(
        "error bars: standard error of the estimate" + (" (0 for exact curves)" if exact else "")
    )
elif bars == "spread":
    notes.append(
        "error bars: the authors' spread, std of pair scores / sqrt(points), mean over classes"
    )
if relative:
    notes.append(
        "relative depth = hidden state / layers, so models of different depth share the axis"
    )
notes.append("one colour per stored result; speaker curves dotted, pretrained curves dashed")
st.caption("; ".join(notes) + ".")

st.subheader("Peaks and suggested prune points")
rows = prune_table(chosen, fraction)
st.dataframe(pd.DataFrame(rows), hide_index=True, key="cmp_table")

with_classes = [s for s in chosen if s.per_class]
if len(with_classes) >= 2:
    st.subheader("Per-class difference")
    ids = [s.id for s in with_classes]
    h1, h2 = st.columns(2)
    a_id = h1.selectbox("A", ids, index=0, format_func=lambda i: by_id[i].label(), key="cmp_a")
    b_id = h2.selectbox("B", ids, index=1, format_func=lambda i: by_id[i].label(), key="cmp_b")
    classes, x, z, resampled = class_difference(by_id[a_id], by_id[b_id])
    if not classes:
        st.info("A and B share no classes.")
    else:
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
        x_title = AXES["relative"] if resampled else figures.LAYER_AXIS
        figures.style(
            heat,
            height=max(320, 16 * len(classes) + 90),
            x_title=x_title,
            y_title="class",
            legend=False,
        )
        if not resampled:
            figures.integer_axis(heat, x, pad=0.5)
        pair = [f"A = {by_id[a_id].label()}", f"B = {by_id[b_id].label()}"]
        heat.update_layout(title={"text": "A − B per class", "x": 0, "xanchor": "left"})
        sources = [s.provenance for s in (by_id[a_id], by_id[b_id]) if s.provenance is not None]
        export.add_caption(heat, pair + export.captions(sources))
        figures.show(heat, key="cmp_heatmap", config=figures.figure_config("compare-classes", heat))
        st.caption(
            "Convexity of A minus B per class (blue: A higher)."
            + (" The depths differ: B is interpolated at A's relative depths." if resampled else "")
        )

st.subheader("Download")
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
    for s in chosen
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
d2.download_button(
    "Curves (JSON)",
    json.dumps(
        export.json_with_provenance({"curves": long_rows, "prune_points": rows}, provenance),
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


def _bundle() -> bytes:
    """The selected curves' stored results as a bundle (built on click)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = export_bundle(list(dict.fromkeys(s.entry_key for s in chosen)), Path(tmp) / "b.zip")
        return path.read_bytes()


d4.download_button(
    "Results bundle (zip)",
    _bundle,
    "results-bundle.zip",
    "application/zip",
    icon=":material/archive:",
)
with d5:
    figures.image_format_picker()

series_section()
