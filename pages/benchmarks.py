"""Benchmarks: full vs pruned runs side by side, cost benchmarks, the prune sweep and other criteria's points."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import runs as run_store
from core.errors import LabError
from core.geometry import compare_prune_points
from core.models import MODELS
from core.runs import (
    BETTER,
    FinishedRun,
    RunState,
    SweepView,
    compare_runs,
    export_provenance,
    finished_results,
    format_seconds,
    lifecycle,
    list_benchmarks,
    sweep_view,
    worker,
)
from core.training import (
    BenchmarkConfig,
    BenchmarkResult,
    BenchmarkRow,
    human_value,
    ratio_text,
    read_grid_tables,
)
from pages.parts.cached import criteria_results, current_convexity, has_criteria
from pages.parts.costs import ratio_bars, sweep_cost_figure, sweep_result_figure
from pages.parts.feature_choice import current_features, features_caption
from pages.parts.figures import show, style
from pages.parts.messages import one_line
from pages.parts.run_plan import plan_field
from pages.parts.state import init_state

DEFAULTS = BenchmarkConfig(model="", prune_point=1)  # the CLI's defaults, one dataclass for both


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


def ratio_figure(rows: list[BenchmarkRow]) -> go.Figure:
    """pruned / full per quantity with its min-max over repeats; the dashed line is 'no change'."""
    rows = [r for r in rows if r.ratio is not None and not math.isnan(r.ratio)]
    bars = ratio_bars(
        [r.label for r in rows],
        [r.ratio for r in rows],
        [r.ratio_min if r.ratio_min is not None else r.ratio for r in rows],
        [r.ratio_max if r.ratio_max is not None else r.ratio for r in rows],
        [r.reliable for r in rows],
        horizontal=True,
    )
    fig = go.Figure(bars.bar)
    fig.add_vline(x=1.0, line={"dash": "dash", "color": "#ef4444"})
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(**bars.axis)
    for note in bars.notes:
        fig.add_annotation(**note)
    return style(
        fig,
        height=60 + 26 * len(rows),
        x_title="pruned / full (bar: median, whisker: min-max over repeats)",
        legend=False,
    )


def launch_benchmark(cfg: BenchmarkConfig) -> None:
    """Validate ``cfg`` and start it as a background job (its own process), unless it already runs."""
    state = st.session_state
    spec = MODELS.get(cfg.model)
    try:
        cfg.check(spec.n_layers if spec is not None else None)
    except LabError as exc:
        st.error(one_line(exc))
        return
    same = [
        r
        for r in run_store.list_runs()
        if r.kind == "benchmark" and r.active and r.config == cfg.to_dict()
    ]
    if same:
        state["bm_run"] = same[0].run_id
        st.info(f"That benchmark is already {same[0].label}: {same[0].run_id}.")
        return
    try:
        run = lifecycle.submit("benchmark", cfg.to_dict())
    except LabError as exc:
        st.error(f"Could not start the benchmark: {one_line(exc)}")
        return
    state["bm_run"] = run.name
    st.toast(f"Benchmark {run.name} started in the background.")


def comparison_section(export: dict[str, Any]) -> list[FinishedRun]:
    """Two finished runs side by side: accuracies, settings that differ, training times as facts.
    Returns the finished pruned runs (the cost form's default model comes from them)."""
    st.subheader("Full vs pruned runs")
    finished = finished_results()
    full_runs = {f.id: f for f in finished if not f.pruned}
    pruned_runs = {f.id: f for f in finished if f.pruned}
    export["full_vs_pruned"] = []
    if not full_runs or not pruned_runs:
        st.info(
            "Needs one finished full and one finished pruned fine-tune (or a sweep): start them on "
            "the Prune & fine-tune page."
        )
        st.page_link("pages/finetune.py", label="Prune & fine-tune", icon=":material/content_cut:")
        return list(pruned_runs.values())
    c1, c2 = st.columns(2)
    full_id = c1.selectbox(
        "Full model run", list(full_runs), key="bm_full", format_func=lambda k: full_runs[k].label
    )
    pruned_id = c2.selectbox(
        "Pruned model run",
        list(pruned_runs),
        key="bm_pruned",
        format_func=lambda k: pruned_runs[k].label,
    )
    comparison = compare_runs(full_runs[full_id], pruned_runs[pruned_id])
    export["full_vs_pruned"] = comparison.export_rows()
    st.table(pd.DataFrame([r.table_row() for r in comparison.rows]).set_index("quantity"))
    st.caption(comparison.facts)
    if comparison.differences:
        st.warning(
            "The two runs differ in: " + "; ".join(comparison.differences) + ". Not like for like."
        )
    st.markdown("**Training wall time** (separate runs at different moments: facts, not a ratio)")
    st.table(pd.DataFrame([t.table_row() for t in comparison.times]).set_index("run"))
    st.caption("For a cost ratio, run the cost benchmark below: it times both models side by side.")
    return list(pruned_runs.values())


def cost_form(pruned: list[FinishedRun]) -> None:
    """The cost benchmark's model, prune point (or plan) and repeats, and the button that starts it."""
    state = st.session_state
    models = list(MODELS)
    default_model = pruned[0].result.model if pruned else state.model
    if state.get("bm_model") not in models:
        state["bm_model"] = default_model if default_model in models else models[0]
    r1, r2, r3 = st.columns([2, 1, 1])
    bm_model = r1.selectbox("Model", models, key="bm_model")
    bm_layers = MODELS[bm_model].n_layers
    # no max_value: a point beyond this model's depth is refused in words, never clamped to the last
    bm_point = r2.number_input(
        "Prune point", min_value=1, step=1, key="bm_point", help=f"1..{bm_layers}"
    )
    bm_repeats = r3.number_input("Repeats", 2, 50, key="bm_repeats")
    plan = plan_field("bm_plan", bm_layers)
    bm_cfg = BenchmarkConfig(
        model=bm_model,
        prune_point=None if plan.text is not None else int(bm_point),
        plan=plan.text,
        repeats=int(bm_repeats),
    )
    st.caption(
        f"Settings (the same defaults as `python -m core benchmark`): training batch "
        f"{bm_cfg.train_batch}, inference batch {bm_cfg.infer_batch}, {bm_cfg.warmup} warm-up "
        f"rounds, {bm_cfg.repeats} timed repeats, {bm_cfg.timing_threads} torch thread(s). It runs "
        "as a background job in its own process, not inside this server; on a small machine the "
        "browser and the server still share its CPUs, which the ratios (both models timed side by "
        "side) withstand better than absolute times."
    )
    if st.button(
        "Run benchmark", icon=":material/speed:", key="bm_go", disabled=plan.error is not None
    ):
        launch_benchmark(bm_cfg)


def _status_line(run_id: str) -> bool:
    """One watched benchmark's bar (queued: what it waits for); False once it has ended."""
    current = run_store.status(run_id)
    if not current.active:
        return False
    pr = run_store.progress(run_id)
    if current.state == RunState.QUEUED:
        place = run_store.queue_place(run_id)
        where = (
            place.text() if place is not None else f"waiting {format_seconds(pr.queued_s)} to start"
        )
        st.progress(0.0, text=f"{run_id}: queued, {where}")
    else:
        done = f"{pr.epoch}/{pr.epochs} rounds" if pr.epochs else "loading models"
        left = (
            f", about {format_seconds(pr.total_remaining_s)} left"
            if pr.total_remaining_s is not None
            else ""
        )
        st.progress(
            pr.epoch_fraction or 0.0,
            text=f"{run_id}: {current.label} for {format_seconds(pr.elapsed_s or 0)} in its own "
            f"process; {pr.phase or 'starting'} ({done}){left}",
        )
    if st.button("Cancel", key=f"bm_cancel_{run_id}", icon=":material/stop:"):
        lifecycle.cancel(run_id, timeout=worker.cancel_wait())
        return False
    return True


def benchmark_jobs() -> None:
    """The benchmark jobs running or queued, polled every second; the page reruns when one ends."""
    state = st.session_state
    bench_runs = [r for r in run_store.list_runs() if r.kind == "benchmark"]
    watching = [r.run_id for r in bench_runs if r.active]
    if state.get("bm_run") and state["bm_run"] not in watching:
        finished_now = next((r for r in bench_runs if r.run_id == state["bm_run"]), None)
        if finished_now is not None and finished_now.state == RunState.DONE:
            state["bm_show_next"] = state.pop("bm_run")

    @st.fragment(run_every=1.0 if watching else None)
    def benchmark_status() -> None:
        """Progress of the benchmark jobs that were running when the page ran."""
        ended = [run_id for run_id in watching if not _status_line(run_id)]
        if ended:
            st.rerun(scope="app")

    benchmark_status()
    for r in bench_runs:
        if r.state == RunState.FAILED and r.run_id == state.get("bm_run"):
            st.error(f"Benchmark {r.run_id} failed: {' '.join((r.error or '?').split())}")


def saved_benchmarks(export: dict[str, Any]) -> None:
    """A saved benchmark's table and ratio chart (the one that just finished, else the newest)."""
    state = st.session_state
    saved = list_benchmarks()
    if not saved:
        return
    by_bench = {b.id: b for b in saved}
    if state.get("bm_show_next") in by_bench:  # a benchmark that just finished
        state["bm_saved"] = state.pop("bm_show_next")
    if state.get("bm_saved") not in by_bench:
        state["bm_saved"] = next(iter(by_bench))
    pick = st.selectbox("Saved benchmarks", list(by_bench), key="bm_saved")
    try:
        result = BenchmarkResult.from_dict(by_bench[pick].data)
    except LabError as exc:
        st.warning(f"Benchmark {pick}: {one_line(exc)}")
        return
    ctx = result.context
    st.caption(
        f"{result.model}: full ({result.n_layers} layers) vs pruned {result.pruned_words}, "
        f"measured side by side: {result.repeats} interleaved repeats after {result.warmup} "
        f"warm-up, batches {result.train_batch} (training) / {result.infer_batch} (inference), on "
        f"{ctx.device_name} ({ctx.torch_threads} threads of {ctx.cpu_count} CPUs), "
        f"{ctx.load_text()}, {ctx.started_at}, code {result.code_version or 'not recorded'}."
    )
    if result.unreliable:
        st.warning("Unreliable: " + result.reliability_text())
    st.table(benchmark_table(result).set_index("quantity"))
    show(ratio_figure(list(result.rows)), key="bm_ratio_plot")
    export["benchmark"] = {"id": pick, "run": by_bench[pick].run_id, **result.to_dict()}


def cost_section(export: dict[str, Any], pruned: list[FinishedRun]) -> None:
    """The cost benchmark: its form, the jobs in progress and the saved benchmarks."""
    st.subheader("Cost benchmark")
    cost_form(pruned)
    benchmark_jobs()
    saved_benchmarks(export)


def sweep_section(export: dict[str, Any]) -> SweepView | None:
    """A finished sweep's accuracy over its pretrained convexity, its cost per point and its table."""
    st.subheader("Prune sweep")
    sweeps = [r for r in run_store.list_runs() if r.kind == "sweep"]
    views = {
        r.run_id: v for r in sweeps if (v := sweep_view(run_store.run_dir(r.run_id))) is not None
    }
    if not views:
        st.caption(
            "No finished sweep yet (`python -m core sweep ...` fine-tunes one model at several "
            "prune points and benchmarks each)."
        )
        return None
    sweep_id = st.selectbox("Sweep run", list(views), key="bm_sweep")
    sweep = views[sweep_id]
    show(sweep_result_figure(sweep), key="bm_sweep_plot")
    cost_fig = sweep_cost_figure(sweep)
    if cost_fig is not None:
        show(cost_fig, key="bm_sweep_cost")
        st.caption(
            "Cost: each point's own benchmark, full and pruned timed side by side (bar: median "
            "pruned / full over repeats, whisker: min-max; grey: repeats disagreed)."
        )
    st.dataframe(pd.DataFrame(sweep.table()), hide_index=True)
    export["sweep"] = {
        "run": sweep_id,
        "model": sweep.model,
        "task": sweep.task,
        "seed": sweep.seed,
        "suggested": sweep.suggested,
        "fraction": sweep.fraction,
        "rows": sweep.table(),
        "benchmarks": [r.benchmark_id for r in sweep.rows if r.benchmark_id],
    }
    return sweep


def criteria_section(export: dict[str, Any], sweep: SweepView | None) -> None:
    """Other layer-selection criteria's points beside the convexity suggestion and the sweep."""
    st.subheader("Other layer-selection criteria")
    fs = current_features()
    if fs is None:
        return
    features_caption(fs)
    labels = st.segmented_control("Labels", ["word", "speaker"], default="word", key="bm_labels")
    labels = labels or "word"
    k = int(st.session_state.cx_k)
    if not has_criteria(fs.key, labels, k) and not st.button(
        "Compare criteria", icon=":material/analytics:", key="bm_criteria"
    ):
        return
    results = criteria_results(fs.key, labels, k)
    curves = current_convexity(fs.key)
    table = compare_prune_points(
        results, {labels: curves[labels]}, float(st.session_state.cx_fraction)
    )
    acc = {r.prune_point: r.headline.accuracy for r in (sweep.top_rows if sweep else ())}
    for row in table:
        row["sweep test accuracy at layer"] = acc.get(row["layer"])
        row["parameters"] = json.dumps(row["parameters"])
    st.dataframe(pd.DataFrame(table), hide_index=True)
    st.caption(
        "The first row is the convexity suggestion; the sweep's test accuracy is shown where the "
        "selected sweep fine-tuned that prune point."
    )
    export["criteria"] = table


def grid_section(export: dict[str, Any]) -> None:
    """The paper grid's tables that ``python -m core grid`` wrote to the results store."""
    st.subheader("Paper grid")
    grids = {g.key: g for g in read_grid_tables()}
    if not grids:
        st.caption(
            "No grid yet: `python -m core grid --models ... --executor ray` (README: Running on a "
            "cluster)."
        )
        return
    key = st.selectbox(
        "Grid",
        list(grids),
        key="bm_grid",
        format_func=lambda k: (
            f"{grids[k].table.grid_id} ({grids[k].table.n_done}/{grids[k].table.n_cells} cells, "
            f"{grids[k].table.executor}, {grids[k].table.created})"
        ),
    )
    grid = grids[key]
    st.dataframe(pd.DataFrame(grid.table.records()), hide_index=True)
    st.caption(
        "Accuracy: mean ± sample std over the seeds that finished (n). Ratios: pruned / full, "
        "from benchmarks that measured both side by side in one process. "
        f"Stored result {key[:12]}: {grid.provenance.caption()}"
    )
    export["grid"] = {**grid.table.to_dict(), "provenance": grid.provenance.to_dict()}


def export_section(export: dict[str, Any]) -> None:
    """Everything shown, as CSV (the comparison) and JSON (every section, with provenance)."""
    st.subheader("Export")
    e1, e2 = st.columns(2)
    # built on click (callables): no per-run media file that a rerun from the status fragment could
    # drop; no rerun on click (on_click="ignore"): a run started by the click would clear the
    # session's message queue, and with it the file's answer, leaving the button spinning until the
    # browser gives up (3 min)
    e1.download_button(
        "Full vs pruned (CSV)",
        lambda: pd.DataFrame(export.get("full_vs_pruned") or []).to_csv(index=False),
        "full_vs_pruned.csv",
        "text/csv",
        icon=":material/table:",
        on_click="ignore",
    )
    e2.download_button(
        "Everything shown (JSON)",
        lambda: json.dumps(export, indent=1, default=str),
        "benchmarks.json",
        "application/json",
        icon=":material/data_object:",
        on_click="ignore",
    )


def main() -> None:
    """The page: comparison, cost benchmark, sweep, other criteria, grid, export."""
    # the cost form's last entered values, kept in the session while another page is shown
    init_state({"bm_model": None, "bm_point": 1, "bm_repeats": DEFAULTS.repeats})
    st.title("Benchmarks")
    st.caption(
        "Accuracy of finished runs side by side (test accuracy is the headline; validation accuracy "
        "chose the checkpoint). Costs only from the benchmark, which measures both models "
        "interleaved in one process of its own (run times of separate runs are facts, never ratios)."
    )
    export: dict[str, Any] = {"provenance": export_provenance()}
    pruned = comparison_section(export)
    cost_section(export, pruned)
    sweep = sweep_section(export)
    criteria_section(export, sweep)
    grid_section(export)
    export_section(export)


main()
