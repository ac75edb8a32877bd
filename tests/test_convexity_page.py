"""The Convexity page and what it is built from: the statistics job (detached worker, cost-weighted
progress, Cancel, errors to the asking session only), prune-point stability at the chosen fraction,
the class heatmap's labels and order, plot heights, and titled exports with every block's provenance."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from core.data.imported import import_features
from core.geometry.options import ConvexityOptions, StatisticsOptions
from core.geometry.synthetic import speaker_population

APP = "../app.py"


@pytest.fixture
def cache(private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from pages.parts.cached import results_memory

    results_memory().clear()
    monkeypatch.setattr("pages.parts.cached.STATS_RESAMPLES", 3)  # small and quick; same code path
    monkeypatch.setattr("pages.parts.cached.STATS_PERMUTATIONS", 2)
    monkeypatch.setattr("pages.parts.cached.STATS_SEEDS", 1)
    return private_cache


def imported(tmp_path: Path, name: str, speakers: int = 8):
    """A cached feature set of synthetic speakers x 6 words x 2 takes."""
    d = speaker_population(speakers, takes=2, seed=0).draw(np.random.default_rng(0))
    x, words, spk = d.features, d.words, d.speakers
    np.save(tmp_path / f"{name}.npy", x)
    with (tmp_path / f"{name}.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["word", "speaker", "path"])
        for i, (a, b) in enumerate(zip(words, spk, strict=True)):
            w.writerow([f"w{a}", f"s{b}", f"clip{i}.wav"])
    return import_features(tmp_path / f"{name}.npy", tmp_path / f"{name}.csv", name=name)


def page(key: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["feature_key"] = key
    at.session_state["cx_precision"] = "exact"
    for name, value in state.items():
        at.session_state[name] = value
    at.run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception, at.exception
    return at


def chart(at: AppTest, key_part: str) -> dict:
    for c in at.get("plotly_chart"):
        if key_part in c.proto.id:
            return json.loads(c.proto.spec)
    raise AssertionError(f"no chart {key_part!r}")


def text(at: AppTest) -> str:
    kinds = ("markdown", "caption", "warning", "error", "info")
    return "\n".join(e.value for kind in kinds for e in at.get(kind))


def wait(key: str, timeout: float = 120.0):
    from pages.parts.cached import statistics_status

    deadline = time.monotonic() + timeout
    while True:
        status = statistics_status(key, ("word", "speaker"), 10, "exact")
        if (status is not None and not status.active) or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


# ---------------------------------------------------------------- the job, without a page


def test_plan_weights_parts_by_cost_and_the_job_estimate_uses_them():
    from core.geometry.curve_statistics import PHASE_COST, statistics_plan
    from core.results.statistics_job import JobStatus

    plan = statistics_plan(5, 10, 20, 3, 2)
    assert plan.n_steps == 5 * (1 + 3 + 2 * 20 * 2) == 420
    # the first 5 steps (curve and chance) are 1.5x a curve layer; the 400 sub-sample steps 0.23x
    assert plan.units == pytest.approx(5 * PHASE_COST["curve_and_chance"] + 15 + 400 * 0.23)
    # after the curve and chance (14 s): a step count says 1/84 done, the weighted work 7.5/114.5
    status = JobStatus("running", started=0.0, units_done=7.5, units_total=plan.units)
    left = status.remaining_s(now=14.0)
    assert left == pytest.approx(14.0 * (plan.units - 7.5) / 7.5)
    assert left < 14.0 * (420 - 5) / 5 / 3  # far from the step count's estimate
    assert "about 3 min" in status.text(now=14.0)


def test_reported_units_add_up_to_the_plan(tmp_path: Path):
    from core.geometry.curve_statistics import curve_statistics
    from core.results.kinds import resample_units

    fs = imported(tmp_path, "units")
    names = ["word", "speaker"]
    seen: list[tuple[float, float]] = []
    curve_statistics(
        fs.features,
        {n: fs.labels(n) for n in names},
        resample_units(fs, names),
        ConvexityOptions(k=5, target_se=0.02),
        StatisticsOptions(n_permutations=2, n_resamples=2, n_seeds=1),
        on_units=lambda d, t: seen.append((d, t)),
    )
    done, total = seen[-1]
    assert done == pytest.approx(total) and all(d <= t + 1e-9 for d, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_job_runs_in_a_worker_process_and_cancel_stops_it(cache: Path, tmp_path: Path):
    from core.results.kinds import statistics_key
    from core.results.statistics_job import StatisticsJob, cancel_job, read_job, start_job
    from core.results.store import load_result

    fs = imported(tmp_path, "job")
    options = StatisticsOptions(n_permutations=2, n_resamples=2, n_seeds=0)
    convexity = ConvexityOptions(k=5, target_se=0.02)
    job = StatisticsJob(fs.key, ("word", "speaker"), options, convexity)
    status = start_job(job, owner="me")
    assert status.active and status.pid
    deadline = time.monotonic() + 120
    while read_job(job).active and time.monotonic() < deadline:
        time.sleep(0.2)
    done = read_job(job)
    assert done.state == "done" and done.owner == "me" and done.fraction() == 1.0, done
    assert load_result(statistics_key(fs, ["word", "speaker"], convexity, options)) is not None

    more = options.with_(n_resamples=200, n_seeds=5)
    big = StatisticsJob(fs.key, ("word", "speaker"), more, convexity)
    running = start_job(big, owner="me")
    time.sleep(1.0)
    cancelled = cancel_job(big)
    assert cancelled.state == "cancelled"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            Path(f"/proc/{running.pid}").stat()
            state = Path(f"/proc/{running.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the worker still runs after Cancel")
    assert read_job(big).state == "cancelled"
    assert load_result(statistics_key(fs, ["word", "speaker"], convexity, more)) is None


def test_choice_keeps_the_chance_level_when_half_samples_cannot_be_drawn(tmp_path: Path):
    from core.results.statistics_job import statistics_choice

    fs = imported(tmp_path, "four", speakers=4)
    options = StatisticsOptions(n_permutations=10, n_resamples=20, n_seeds=3)
    choice = statistics_choice(fs, ("word", "speaker"), options)
    assert choice.options.n_permutations == 10 and choice.options.n_resamples == 0
    assert list(choice.missing) == ["word"]
    assert "no population interval" in choice.missing["word"]
    assert "\n" not in choice.missing["word"]
    assert choice.estimate_s(2.0) == pytest.approx(choice.units * 2.0 / choice.n_layers)


# ---------------------------------------------------------------- views and figures


def _curves(tmp_path: Path):
    from core.results.kinds import stored_convexity

    fs = imported(tmp_path, "views")
    options = ConvexityOptions(k=5, max_pairs_per_class=None)
    curves = stored_convexity(fs, {"word": fs.words, "speaker": fs.speakers}, options)
    return fs, curves


def test_class_table_orders_as_named_and_the_heatmap_labels_every_class(
    private_cache: Path, tmp_path: Path
):
    from core.results.convexity_view import class_table
    from pages.parts.figures import class_heatmap

    _, curves = _curves(tmp_path)
    by_name = class_table(curves["speaker"], 2, "name")
    assert list(by_name.classes) == sorted(by_name.classes, key=str.casefold)
    by_score = class_table(curves["speaker"], 2, "score at prune point")
    at_p = by_score.z()[:, list(by_score.layers).index(2)]
    assert list(at_p) == sorted(at_p, reverse=True)
    fig = class_heatmap(by_name)
    assert list(fig.layout.yaxis.tickvals) == list(by_name.classes)  # every class labelled
    assert fig.layout.yaxis.autorange == "reversed"  # the first row at the top
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d"
    area = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert area >= 14 * len(by_name.classes)


def test_curve_plot_keeps_its_area_with_bands_prune_points_and_caption():
    from core.results.export import LEGEND_ROW, standalone
    from pages.parts.figures import PLOT_HEIGHT, Curve, convexity_figure

    layers = [0, 1, 2, 3, 4]
    curves = [
        Curve("word (70 classes)", layers, [0.2, 0.5, 0.8, 0.9, 0.85]),
        Curve("speaker (24 classes)", layers, [0.6, 0.5, 0.3, 0.2, 0.2]),
    ]
    bands = [
        (f"chance ({n})", layers, np.full(5, 0.1), np.full(5, 0.02), None)
        for n in ("word", "speaker")
    ]
    caption = ["model whisper-tiny.en · data sample, 2520 clips · k=10 · " * 3]
    fig = convexity_figure(
        curves, bands=bands, prune_points={"word": (3, None), "speaker": (1, None)}, caption=caption
    )
    area = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert area >= PLOT_HEIGHT
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d"  # integer layers
    n_entries = sum(1 for t in fig.data if t.showlegend is not False)
    assert fig.layout.margin.t >= LEGEND_ROW * ((n_entries + 1) // 2)  # every legend row has room
    out = standalone(fig, caption, title="Graph convexity per layer")
    area = out.layout.height - out.layout.margin.t - out.layout.margin.b
    assert area >= 420
    assert out.layout.title.yref == "container" and out.layout.title.y == 1
    assert out.layout.margin.t >= 44 + LEGEND_ROW * ((n_entries + 1) // 2)  # title, then legend


def test_exports_are_titled_with_run_settings_provenance_and_statistics(
    private_cache: Path, tmp_path: Path
):
    from core.results import export
    from core.results.convexity_view import run_settings
    from core.results.kinds import convexity_entry, decode_curves, statistics_entry

    fs = imported(tmp_path, "exports")
    labels = {"word": fs.words, "speaker": fs.speakers}
    convexity = ConvexityOptions(k=5, target_se=0.02)
    entry, _ = convexity_entry(fs, labels, convexity)
    curves = decode_curves(entry.data)
    options = StatisticsOptions(n_permutations=2, n_resamples=2, n_seeds=0)
    stats_entry, _ = statistics_entry(fs, ["word", "speaker"], convexity, options)
    from core.geometry.curve_statistics import CurveStatistics

    stats = CurveStatistics.from_dict(stats_entry.data)
    settings = run_settings(curves)
    assert "layer" not in settings and "n_shortest_path_trees" not in settings
    assert settings["layers"] == list(range(fs.features.shape[1]))
    doc = export.convexity_document(
        "Graph convexity per layer",
        {"key": fs.key},
        settings,
        curves,
        entry.provenance,
        prune_points={"word": 2},
        stats=stats,
        stats_provenance=stats_entry.provenance,
    )
    assert doc["title"] == "Graph convexity per layer"
    assert doc["provenance"]["feature_key"] == fs.key
    assert doc["statistics"]["provenance"]["feature_key"] == fs.key
    assert doc["statistics"]["settings"]["n_permutations"] == 2
    rows = export.curve_rows(curves, stats)
    table = list(csv.DictReader(io.StringIO(_csv(rows))))
    layer_rows = [r for r in table if not r["class"]]
    assert {"chance", "interval_low", "interval_high"} <= set(table[0])
    assert all(r["chance"] and r["interval_high"] for r in layer_rows)
    of = {r["labels"]: r["interval_of"] for r in layer_rows}
    assert of == {
        "word": "other speakers, same count",
        "speaker": "same speakers, other recordings",
    }
    assert all(r["other_speakers_half_high"] for r in layer_rows if r["labels"] == "speaker")
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], name="word"))
    html = export.figure_html(fig, ["caption"], "convexity", "Graph convexity per layer")
    assert "<title>Graph convexity per layer</title>" in html


def _csv(rows: list[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_csv(index=False)


# ---------------------------------------------------------------- the page


@pytest.mark.slow  # ~25 s
def test_page_statistics_follow_the_fraction_and_origin_is_told_once(cache: Path, tmp_path: Path):
    fs = imported(tmp_path, "page")
    at = page(fs.key)
    assert "computed now and stored" in text(at)
    at.run()
    assert "computed now and stored" not in text(at)
    assert "loaded from the results store" in text(at)
    assert any("Takes about" in c.value for c in at.caption)  # the cost, before starting
    bars = at.selectbox(key="cx_bars")  # its own column, labelled, options short enough to show
    assert bars.label == "Error bars" and bars.proto.label_visibility.value == 0
    assert max(len(o) for o in bars.options) <= 20
    next(b for b in at.button if b.label == "Chance level and population intervals").click().run()
    assert not at.exception, at.exception
    assert wait(fs.key).state == "done"
    at.run()
    assert "threshold at 95%" in text(at)
    at.slider(key="cx_fraction").set_value(0.8).run()
    assert not at.exception, at.exception
    body = text(at)
    assert "threshold at 80%" in body and "threshold at 95%" not in body


@pytest.mark.slow  # ~20 s
def test_four_speakers_still_get_the_chance_level_and_errors_stay_with_their_session(
    cache: Path, tmp_path: Path
):
    from core.results.statistics_job import JobStatus
    from pages.parts.cached import statistics_job

    fs = imported(tmp_path, "four", speakers=4)
    at = page(fs.key)
    assert "no population interval" in text(at).lower()
    next(b for b in at.button if b.label == "Chance level").click().run()
    assert wait(fs.key).state == "done"
    at.run()
    names = [t["name"] for t in chart(at, "cx_curve")["data"]]
    assert "chance (word)" in names and "chance (speaker)" in names
    assert "no population interval" in text(at).lower()

    # a failed job's error reaches the session that started it, not another one
    at2 = page(fs.key, cx_k=9, _session_id="session-two")
    job = statistics_job(fs.key, ("word", "speaker"), 9, "exact")
    job.folder.mkdir(parents=True, exist_ok=True)
    failed = JobStatus("failed", owner="session-two", error="boom in one line")
    (job.folder / "status.json").write_text(json.dumps(failed.to_dict()))
    at2.run()
    assert "boom in one line" in text(at2)
    at3 = page(fs.key, cx_k=9)  # a new session that never clicked
    assert "boom in one line" not in text(at3)
