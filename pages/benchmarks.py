"""Benchmarks: full vs pruned runs side by side, cost benchmarks, the prune sweep and other criteria's points."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core import runs as run_store
from core.geometry.criteria import compare_prune_points
from core.models.registry import MODELS
from core.runs.views import BackgroundTask, finished_results, list_benchmarks, sweep_view
from core.training.grid import read_grid_tables
from pages import common

COLOURS = {"full": "#64748b", "pruned": "#3b82f6"}
RUN_METRICS = [  # (label, unit, getter on result.json)
    ("accuracy", "fraction", lambda r: r.get("best_accuracy")),
    ("parameters (total)", "count", lambda r: (r.get("params") or {}).get("total")),
    ("parameters (trainable)", "count", lambda r: (r.get("params") or {}).get("trainable")),
    ("training time", "s", lambda r: r.get("train_seconds")),
    ("epoch time (median)", "s", lambda r: r.get("epoch_seconds_median")),
]

common.init_state()
state = st.session_state
st.title("Benchmarks")
st.caption(
    "Finished runs compared side by side; cost measured by `core.training.benchmark`; the prune sweep."
)
export: dict[str, Any] = {}


def _ratio(full: Any, pruned: Any) -> float | None:
    """pruned / full, or None."""
    try:
        return float(pruned) / float(full) if full else None
    except (TypeError, ValueError):
        return None


def _bars(rows: list[dict[str, Any]], key: str) -> None:
    """One small bar plot (full vs pruned) per metric, ratio in each title."""
    rows = [r for r in rows if r["full"] is not None and r["pruned"] is not None]
    if not rows:
        return
    cols = min(4, len(rows))
    n_rows = math.ceil(len(rows) / cols)
    titles = [
        f"{r['metric']}" + (f" (x{r['ratio']:.2f})" if r["ratio"] is not None else "") for r in rows
    ]
    fig = make_subplots(rows=n_rows, cols=cols, subplot_titles=titles)
    for i, r in enumerate(rows):
        for name in ("full", "pruned"):
            fig.add_trace(
                go.Bar(
                    x=[name],
                    y=[r[name]],
                    marker_color=COLOURS[name],
                    name=name,
                    showlegend=False,
                    hovertemplate=f"{r['metric']} {name}: %{{y:.4g}} {r['unit']}<extra></extra>",
                ),
                row=i // cols + 1,
                col=i % cols + 1,
            )
    fig.update_annotations(font_size=12)
    common.show(common.style(fig, height=260 * n_rows, legend=False), key=key)


# ------------------------------------------------------------------------------------------------
st.subheader("Full vs pruned")
finished = finished_results()
full_runs = {f["id"]: f for f in finished if not f["pruned"]}
pruned_runs = {f["id"]: f for f in finished if f["pruned"]}
if not full_runs or not pruned_runs:
    st.info(
        "Needs one finished full and one finished pruned fine-tune (or a sweep): start them on the "
        "Prune & fine-tune page."
    )
    st.page_link("pages/finetune.py", label="Prune & fine-tune", icon=":material/content_cut:")
    comparison: list[dict[str, Any]] = []
else:
    c1, c2 = st.columns(2)
    full_id = c1.selectbox(
        "Full model run",
        list(full_runs),
        key="bm_full",
        format_func=lambda k: full_runs[k]["label"],
    )
    pruned_id = c2.selectbox(
        "Pruned model run",
        list(pruned_runs),
        key="bm_pruned",
        format_func=lambda k: pruned_runs[k]["label"],
    )
    fr, pr = full_runs[full_id]["result"], pruned_runs[pruned_id]["result"]
    if fr.get("model") != pr.get("model") or fr.get("task") != pr.get("task"):
        st.warning("The two runs differ in model or task: the comparison is not like for like.")
    comparison = [
        {
            "metric": name,
            "unit": unit,
            "full": get(fr),
            "pruned": get(pr),
            "ratio": _ratio(get(fr), get(pr)),
        }
        for name, unit, get in RUN_METRICS
    ]
    benches = [
        b
        for b in list_benchmarks()
        if b["data"].get("model") == pr.get("model")
        and int(b["data"].get("prune_point", -1)) == int(pr.get("prune_point", -2))
    ]
    if benches:
        bench = benches[0]
        st.caption(f"Cost rows from benchmark {bench['id']} ({bench['data'].get('device_name')}).")
        for row in bench["data"]["rows"]:
            if row["metric"].startswith("params"):
                continue
            comparison.append({**row, "metric": row["metric"].replace("_", " ")})
    else:
        st.caption(
            "No cost benchmark of this model and prune point yet: run one below for latency, "
            "throughput and memory."
        )
    st.dataframe(pd.DataFrame(comparison), hide_index=True)
    _bars(comparison, "bm_bars")
export["full_vs_pruned"] = comparison

# ------------------------------------------------------------------------------------------------
st.subheader("Cost benchmark")
models = list(MODELS)
default_model = next(iter(pruned_runs.values()))["result"]["model"] if pruned_runs else state.model
r1, r2, r3 = st.columns([2, 1, 1])
bm_model = r1.selectbox(
    "Model",
    models,
    index=models.index(default_model) if default_model in models else 0,
    key="bm_model",
)
bm_point = r2.number_input("Prune point", 1, MODELS[bm_model].n_layers, value=1, key="bm_point")
bm_repeats = r3.number_input("Timed repeats", 1, 20, value=3, key="bm_repeats")
tasks = common.background_tasks()
task_name = f"benchmark {bm_model} p={int(bm_point)}"
if st.button("Run benchmark", icon=":material/speed:"):
    current = tasks.get(task_name)
    if current is not None and current.state == "running":
        st.toast("That benchmark is already running.")
    else:
        from core.runs.views import run_benchmark_to_folder

        tasks[task_name] = BackgroundTask(
            task_name,
            lambda m=bm_model, p=int(bm_point), r=int(bm_repeats): run_benchmark_to_folder(
                m, p, repeats=r, warmup=1, infer_batch=16, train_batch=8
            ),
        )
watched = tasks.get(task_name)


@st.fragment(run_every=1.0 if watched is not None and watched.state == "running" else None)
def benchmark_status() -> None:
    """Status line of the benchmark thread; polls while it runs (the page stays usable)."""
    task = common.background_tasks().get(task_name)
    if task is None:
        return
    if task.state == "running":
        st.info(f"{task.name}: running for {task.seconds:.0f} s (in a background thread)...")
    elif task.state == "done":
        st.success(f"{task.name}: done in {task.seconds:.0f} s, saved to {task.result}.")
    else:
        st.error(f"{task.name} failed: {task.error}")
    if task.state != "running" and watched is not None and watched.state == "running":
        st.rerun(scope="app")  # show the new benchmark in the lists


benchmark_status()
saved = list_benchmarks()
if saved:
    by_bench = {b["id"]: b for b in saved}
    pick = st.selectbox("Saved benchmarks", list(by_bench), key="bm_saved")
    data = by_bench[pick]["data"]
    st.caption(
        f"{data.get('model')} pruned at p = {data.get('prune_point')} of {data.get('n_layers')} on "
        f"{data.get('device_name')}; median of {data.get('repeats')} repeats; memory: "
        f"{data.get('memory_method')}."
    )
    st.dataframe(pd.DataFrame(data["rows"]), hide_index=True)
    _bars(data["rows"], "bm_saved_bars")
    export["benchmark"] = {"id": pick, "rows": data["rows"]}

# ------------------------------------------------------------------------------------------------
st.subheader("Prune sweep")
sweeps = [r for r in run_store.list_runs() if r.kind == "sweep"]
views = {r.run_id: v for r in sweeps if (v := sweep_view(run_store.run_dir(r.run_id))) is not None}
sweep: dict[str, Any] | None = None
if not views:
    st.caption(
        "No finished sweep yet (`python -m core sweep ...` fine-tunes one model at several prune "
        "points and benchmarks each)."
    )
else:
    sweep_id = st.selectbox("Sweep run", list(views), key="bm_sweep")
    sweep = views[sweep_id]
    relevant = "word" if sweep["task"] == "words" else "speaker"
    fig = go.Figure()
    pre = (sweep.get("pretrained") or {}).get(relevant)
    if pre:
        fig.add_trace(
            go.Scatter(
                x=list(range(len(pre["scores"]))),
                y=pre["scores"],
                error_y={"type": "data", "array": pre.get("sems") or [], "visible": True},
                mode="lines+markers",
                name=f"pretrained {relevant} convexity",
                line={"color": "#94a3b8", "width": 3, "dash": "dot"},
            )
        )
    rows = sweep["rows"]
    fig.add_trace(
        go.Scatter(
            x=[r["prune_point"] for r in rows],
            y=[r["accuracy"] for r in rows],
            mode="lines+markers",
            name="fine-tuned accuracy",
            line={"color": "#10b981", "width": 3},
            marker={"size": 12},
        )
    )
    if sweep.get("suggested") is not None:
        fig.add_vline(
            x=sweep["suggested"],
            line={"color": "#ef4444", "dash": "dash", "width": 2},
            annotation_text=f"suggested p = {sweep['suggested']}",
        )
    fig.update_yaxes(range=[0, 1.05])
    common.style(
        fig, height=420, x_title="prune point p / hidden state", y_title="accuracy / convexity"
    )
    common.show(fig, key="bm_sweep_plot")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    export["sweep"] = {"run": sweep_id, **{k: v for k, v in sweep.items() if k != "benchmarks"}}

# ------------------------------------------------------------------------------------------------
st.subheader("Other layer-selection criteria")
fs = common.current_features()
if fs is not None:
    common.features_caption(fs)
    label_set = st.segmented_control("Labels", ["word", "speaker"], default="word", key="bm_labels")
    label_set = label_set or "word"
    k = int(state.cx_k)
    if common.has_criteria(fs.key, label_set, k) or st.button(
        "Compare criteria", icon=":material/analytics:", key="bm_criteria"
    ):
        results = common.criteria_results(fs.key, label_set, k)
        curves = common.convexity_curves(
            fs.key,
            k,
            None if state.cx_exact else int(state.cx_budget),
            not (state.cx_fast and not state.cx_exact),
        )
        table = compare_prune_points(
            results, {label_set: curves[label_set]}, float(state.cx_fraction)
        )
        acc = {r["prune_point"]: r["accuracy"] for r in (sweep or {}).get("rows", [])}
        for row in table:
            row["sweep accuracy at layer"] = acc.get(row["layer"])
            row["parameters"] = json.dumps(row["parameters"])
        st.dataframe(pd.DataFrame(table), hide_index=True)
        st.caption(
            "The first row is the convexity suggestion; sweep accuracy is shown where the selected "
            "sweep fine-tuned that prune point."
        )
        export["criteria"] = table

# ------------------------------------------------------------------------------------------------
st.subheader("Paper grid")  # issue 12: tables written by `python -m core grid`
grids = read_grid_tables()
if not grids:
    st.caption(
        "No grid yet: `python -m core grid --models ... --executor ray` (README: Running on a cluster)."
    )
else:
    grid = st.selectbox("Grid", grids, format_func=lambda g: f"{g.grid_id} ({g.n_done}/{g.n_cells} cells, {g.executor}, {g.created})", key="bm_grid")  # fmt: skip
    st.dataframe(pd.DataFrame(grid.records()), hide_index=True)
    st.caption("Accuracy: mean ± sample std over the seeds that finished (n). Ratios: pruned / full, "
               "from benchmarks that measured both side by side in one process.")  # fmt: skip
    export["grid"] = grid.to_dict()

# ------------------------------------------------------------------------------------------------
st.subheader("Export")
e1, e2 = st.columns(2)
e1.download_button(
    "Full vs pruned (CSV)",
    pd.DataFrame(export.get("full_vs_pruned") or []).to_csv(index=False),
    "full_vs_pruned.csv",
    "text/csv",
    icon=":material/table:",
)
e2.download_button(
    "Everything shown (JSON)",
    json.dumps(export, indent=1, default=str),
    "benchmarks.json",
    "application/json",
    icon=":material/data_object:",
)
