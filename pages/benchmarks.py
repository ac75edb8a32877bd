"""Benchmarks: full vs pruned runs side by side, cost benchmarks, the prune sweep and other criteria's points."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import runs as run_store
from core.errors import LabError
from core.geometry.criteria import compare_prune_points
from core.models.registry import MODELS
from core.runs.views import BackgroundTask, finished_results, list_benchmarks, read_json, sweep_view
from core.training.benchmark import BenchmarkResult, BenchmarkRow, human_value, ratio_text
from core.training.grid import read_grid_tables
from pages import common

# settings whose difference makes two runs' accuracies not like for like
SETTINGS = {
    "model": "model", "task": "task", "dataset": "dataset", "eval_split": "evaluation split",
    "max_train_clips": "training clips cap", "max_eval_clips": "evaluation clips cap", "seed": "seed",
    "split_seed": "split seed", "epochs": "epochs", "lr": "learning rate", "batch_size": "batch size",
    "whisper_input": "Whisper input",
}  # fmt: skip
BETTER = {"pruned": "pruned ✓", "full": "full ✓", None: ""}

common.init_state()
state = st.session_state
st.title("Benchmarks")
st.caption(
    "Accuracy of finished runs side by side; costs only from the benchmark, which measures both models "
    "interleaved in one process (run times of separate runs are facts, never ratios)."
)
export: dict[str, Any] = {}


def _run_config(f: dict[str, Any]) -> dict[str, Any]:
    """The fine-tune config of a finished result (its own folder, else the sweep's)."""
    for folder in (Path(f["path"]), Path(f["run"])):
        cfg = (read_json(folder / "config.json") or {}).get("config")
        if cfg:
            return cfg
    return {}


def _accuracy_rows(fr: dict[str, Any], pr: dict[str, Any]) -> list[dict[str, str]]:
    """Accuracy and parameter rows of two finished runs (measured once each: differences, counts)."""
    rows = []
    fa, pa = fr.get("best_accuracy"), pr.get("best_accuracy")
    if isinstance(fa, int | float) and isinstance(pa, int | float):
        diff = pa - fa
        rows.append(
            {
                "quantity": "accuracy (best epoch)",
                "full model": f"{fa:.1%}",
                "pruned model": f"{pa:.1%}",
                "pruned vs full": f"{diff * 100:+.1f} points",
                "better": BETTER["pruned" if diff > 0 else "full" if diff < 0 else None],
            }
        )
    for key, name in (("total", "parameters (total)"), ("trainable", "parameters (trained)")):
        f, p = (fr.get("params") or {}).get(key), (pr.get("params") or {}).get(key)
        if f and p:
            rows.append(
                {
                    "quantity": name,
                    "full model": human_value(f, "parameters"),
                    "pruned model": human_value(p, "parameters"),
                    "pruned vs full": f"x{p / f:.2f}",
                    "better": BETTER["pruned" if p < f else "full" if p > f else None],
                }
            )
    return rows


def _fact_rows(fr: dict[str, Any], pr: dict[str, Any], fc: dict, pc: dict) -> list[dict[str, str]]:
    """Training wall times of the two runs as facts with their context: never divided."""
    out = []
    for side, r, c in (("full model", fr, fc), ("pruned model", pr, pc)):
        secs, epoch = r.get("train_seconds"), r.get("epoch_seconds_median")
        out.append(
            {
                "run": side,
                "training time": human_value(secs, "s") if secs is not None else "n/a",
                "median epoch": human_value(epoch, "s") if epoch is not None else "n/a",
                "device": str(r.get("device", "not recorded")),
                "machine load": str(r.get("load", "not recorded")),
                "epochs": str(c.get("epochs", "?")),
            }
        )
    return out


def _settings_note(fr: dict, pr: dict, fc: dict, pc: dict) -> tuple[str, list[str]]:
    """What the accuracies were measured on, and the settings in which the two runs differ."""
    facts = (
        f"Accuracy on the {fr.get('eval_split', '?')} split: full model {fr.get('n_eval', '?')} "
        f"evaluation clips / {fr.get('n_train', '?')} training clips, seed {fc.get('seed', '?')}; "
        f"pruned model {pr.get('n_eval', '?')} / {pr.get('n_train', '?')}, seed {pc.get('seed', '?')}."
    )
    both = {**fc, **{k: v for k, v in fr.items() if k in ("eval_split", "n_train", "n_eval")}}
    other = {**pc, **{k: v for k, v in pr.items() if k in ("eval_split", "n_train", "n_eval")}}
    names = {**SETTINGS, "n_train": "training clips", "n_eval": "evaluation clips"}
    differ = [
        f"{label}: {both.get(k)} vs {other.get(k)}"
        for k, label in names.items()
        if k in both or k in other
        if both.get(k) != other.get(k)
    ]
    return facts, differ


def benchmark_table(result: BenchmarkResult) -> pd.DataFrame:
    """One table: quantity, full, pruned, ratio with its spread, the better side, a note."""
    return pd.DataFrame(
        [
            {
                "quantity": r.label,
                "full model": human_value(r.full, r.unit),
                "pruned model": human_value(r.pruned, r.unit),
                "pruned / full (min-max)": ratio_text(r),
                "better": BETTER[r.better] if r.reliable else "unreliable",
                "note": "" if r.reliable and r.note == "counted" else r.note,
            }
            for r in result.rows
        ]
    )


def _ratio_figure(rows: list[BenchmarkRow]) -> go.Figure:
    """pruned / full per quantity with its min-max over repeats; the dashed line is 'no change'."""
    rows = [r for r in rows if r.ratio is not None and not math.isnan(r.ratio)]
    fig = go.Figure(
        go.Bar(
            y=[r.label for r in rows],
            x=[r.ratio for r in rows],
            orientation="h",
            marker_color=["#94a3b8" if not r.reliable else "#3b82f6" for r in rows],
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [(r.ratio_max or r.ratio) - r.ratio for r in rows],
                "arrayminus": [r.ratio - (r.ratio_min or r.ratio) for r in rows],
            },
            hovertemplate="%{y}: x%{x:.2f}<extra></extra>",
        )
    )
    fig.add_vline(x=1.0, line={"dash": "dash", "color": "#ef4444"})
    fig.update_yaxes(autorange="reversed")
    return common.style(
        fig,
        height=60 + 26 * len(rows),
        x_title="pruned / full (bar: median, whisker: min-max)",
        legend=False,
    )


def _human_column(name: str) -> str:
    """A column name a person reads: spaces, units spelled out."""
    for suffix, unit in (("_seconds", " (s)"), ("_bytes", " (bytes)")):
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " ") + unit
    return name.replace("_", " ").replace("params", "parameters").replace("b1", "batch 1")


# ------------------------------------------------------------------------------------------------
st.subheader("Full vs pruned runs")
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
    fc, pc = _run_config(full_runs[full_id]), _run_config(pruned_runs[pruned_id])
    facts, differ = _settings_note(fr, pr, fc, pc)
    comparison = _accuracy_rows(fr, pr)
    st.table(pd.DataFrame(comparison).set_index("quantity"))
    st.caption(facts)
    if differ:
        st.warning("The two runs differ in: " + "; ".join(differ) + ". Not like for like.")
    st.markdown("**Training wall time** (separate runs at different moments: facts, not a ratio)")
    st.table(pd.DataFrame(_fact_rows(fr, pr, fc, pc)).set_index("run"))
    st.caption("For a cost ratio, run the cost benchmark below: it times both models side by side.")
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
bm_repeats = r3.number_input("Repeats", 2, 20, value=3, key="bm_repeats")
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
                m, p, repeats=r, warmup=1, infer_batch=16, train_batch=8, threads=1
            ),
        )
watched = tasks.get(task_name)
# a plain bool fixed at this script run: the task object itself changes state under the fragment
watched_was_running = watched is not None and watched.state == "running"


@st.fragment(run_every=1.0 if watched_was_running else None)
def benchmark_status() -> None:
    """Status line of the benchmark thread; polls while it runs, reruns the page when it ends."""
    task = common.background_tasks().get(task_name)
    if task is None:
        return
    if task.state == "running":
        st.info(f"{task.name}: running for {task.seconds:.0f} s (in a background thread)...")
        return
    if task.state == "done":
        st.success(f"{task.name}: done in {task.seconds:.0f} s.")
    else:
        st.error(f"{task.name} failed: {task.error}")
    if watched_was_running:  # it just finished: show the new result on the whole page
        if task.state == "done":
            state["bm_show_next"] = Path(str(task.result)).name
        st.rerun(scope="app")


benchmark_status()
saved = list_benchmarks()
if saved:
    by_bench = {b["id"]: b for b in saved}
    if state.get("bm_show_next") in by_bench:  # a benchmark that just finished
        state["bm_saved"] = state.pop("bm_show_next")
    if state.get("bm_saved") not in by_bench:
        state["bm_saved"] = next(iter(by_bench))
    pick = st.selectbox("Saved benchmarks", list(by_bench), key="bm_saved")
    try:
        result = BenchmarkResult.from_dict(by_bench[pick]["data"])
    except LabError as exc:
        st.warning(f"Benchmark {pick}: {common.one_line(exc)}")
    else:
        ctx = result.context
        st.caption(
            f"{result.model}: full ({result.n_layers} layers) vs pruned at p = {result.prune_point}, "
            f"measured side by side: {result.repeats} interleaved repeats after {result.warmup} warm-up, "
            f"on {ctx.device_name} ({ctx.torch_threads} threads of {ctx.cpu_count} CPUs), load "
            f"{ctx.load_before[0]:.1f} -> {ctx.load_after[0]:.1f}, {ctx.started_at}."
        )
        if result.unreliable:
            st.warning(
                "Repeats disagreed for: "
                + ", ".join(r.label for r in result.unreliable)
                + ". The machine's load changed during the benchmark: run it again when it is quieter."
            )
        st.table(benchmark_table(result).set_index("quantity"))
        common.show(_ratio_figure(list(result.rows)), key="bm_ratio_plot")
        export["benchmark"] = {"id": pick, **result.to_dict()}

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
    st.dataframe(pd.DataFrame(rows).rename(columns=_human_column), hide_index=True)
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
        curves = common.current_convexity(fs.key)
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
st.subheader("Paper grid")  # issue 12: tables `python -m core grid` writes to the results store
grids = {g.key: g for g in read_grid_tables()}
if not grids:
    st.caption(
        "No grid yet: `python -m core grid --models ... --executor ray` (README: Running on a cluster)."
    )
else:
    key = st.selectbox("Grid", list(grids), key="bm_grid", format_func=lambda k: (
        f"{grids[k].table.grid_id} ({grids[k].table.n_done}/{grids[k].table.n_cells} cells, "
        f"{grids[k].table.executor}, {grids[k].table.created})"))  # fmt: skip
    grid = grids[key]
    st.dataframe(pd.DataFrame(grid.table.records()), hide_index=True)
    st.caption("Accuracy: mean ± sample std over the seeds that finished (n). Ratios: pruned / full, "
               "from benchmarks that measured both side by side in one process. "
               f"Stored result {key[:12]}: {grid.provenance.caption()}")  # fmt: skip
    export["grid"] = {**grid.table.to_dict(), "provenance": grid.provenance.to_dict()}

# ------------------------------------------------------------------------------------------------
st.subheader("Export")
e1, e2 = st.columns(2)
# built on click (callables): no per-run media file that a rerun from the status fragment could drop
e1.download_button(
    "Full vs pruned (CSV)",
    lambda: pd.DataFrame(export.get("full_vs_pruned") or []).to_csv(index=False),
    "full_vs_pruned.csv",
    "text/csv",
    icon=":material/table:",
)
e2.download_button(
    "Everything shown (JSON)",
    lambda: json.dumps(export, indent=1, default=str),
    "benchmarks.json",
    "application/json",
    icon=":material/data_object:",
)
