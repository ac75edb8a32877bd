"""Full vs pruned benchmark: typed result, files, spread over interleaved repeats, the unreliable flag.

Structure only: timings are never asserted (the benchmark is a script; its figures go in reports).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import torch

from core.errors import Cancelled, LabError
from core.training.benchmark import (
    BenchmarkContext,
    BenchmarkFormatError,
    BenchmarkResult,
    BenchmarkRow,
    benchmark,
    benchmark_rows,
    ratio_spread,
    run_benchmark,
    save_benchmark,
)
from core.training.configs import BenchmarkConfig
from tests.helpers.tiny_assets import make_trainable_wav2vec2

METRICS = [
    "params_total",
    "params_trainable",
    "params_transformer",
    "train_step_seconds",
    "train_epoch_seconds_est",
    "inference_latency_b1_seconds",
    "inference_throughput_b8",
    "memory_weights_bytes",
    "memory_optimizer_bytes",
    "peak_memory_train_bytes",
    "peak_memory_infer_bytes",
    "memory_infer_total_bytes",
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """One torch thread: steadier timings on a shared 2-core machine."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer trainable wav2vec2 on disk."""
    return make_trainable_wav2vec2(tmp_path_factory.mktemp("bm") / "m", layers=3)


def _run(model: Path, *, timing_hook=None, **kw) -> BenchmarkResult:
    settings = {"prune_point": 1, "n_labels": 4, "train_batch": 4, "infer_batch": 8, "warmup": 1}
    cfg = BenchmarkConfig(model=str(model), device="cpu", **{**settings, **kw})
    return benchmark(model, cfg, timing_hook=timing_hook)


def test_a_plan_is_benchmarked_against_the_full_model_and_named(tiny_model: Path) -> None:
    """The pruned side keeps the plan's layers (not the top ones) and every output names the plan."""
    res = _run(tiny_model, prune_point=None, plan="drop 2", repeats=1, warmup=0)
    assert res.plan == "drop 2" and res.prune_point == 2 and res.n_layers == 3
    assert res.row("params_transformer").ratio == pytest.approx(2 / 3, rel=1e-6)
    assert "pruned to drop 2 (2 layers)" in benchmark_rows(res)
    assert BenchmarkResult.from_dict(json.loads(json.dumps(res.to_dict()))) == res
    with pytest.raises(LabError, match="not both"):
        BenchmarkConfig(model="m", prune_point=1, plan="drop 2").check(3)


def test_benchmark_result_is_typed_and_saved(tiny_model: Path, tmp_path: Path) -> None:
    res = _run(tiny_model, repeats=2, n_train_clips=40)
    assert [r.metric for r in res.rows] == METRICS
    assert res.n_layers == 3 and res.prune_point == 1 and res.steps_per_epoch == 10
    assert all(r.label and "_" not in r.label for r in res.rows)  # human names
    assert res.row("params_total").pruned < res.row("params_total").full
    assert 0 < res.row("params_transformer").ratio < 0.4  # 1 of 3 layers
    assert res.row("params_trainable").full < res.row("params_total").full  # front-end frozen
    # memory split: pruning's saving shows in the weights (counted, not timed)
    weights = res.row("memory_weights_bytes")
    assert weights.reliable and 0 < weights.pruned < weights.full
    assert res.row("peak_memory_train_bytes").pruned < res.row("peak_memory_train_bytes").full
    assert res.row("memory_optimizer_bytes").pruned < res.row("memory_optimizer_bytes").full
    for metric in ("train_step_seconds", "inference_latency_b1_seconds", "inference_throughput_b8"):
        row = res.row(metric)
        assert row.ratio_min <= row.ratio <= row.ratio_max
        assert row.full > 0 and row.pruned > 0
    for timing in ("train_step", "latency_b1", "throughput_batch"):
        assert [len(v) for v in res.raw_seconds[timing].values()] == [2, 2]
    assert res.context.cpu_count >= 1 and len(res.context.load_before) == 3

    jpath, cpath = save_benchmark(res, tmp_path / "out")
    again = BenchmarkResult.from_dict(json.loads(jpath.read_text()))
    assert again == res  # JSON round trip is lossless
    with open(cpath) as fh:
        table = list(csv.DictReader(fh))
    assert [t["metric"] for t in table] == METRICS
    text = benchmark_rows(res)
    assert "training step" in text and " MB" in text and " M" in text and "load" in text


def test_ratio_spread_flags_repeats_that_disagree() -> None:
    steady = ratio_spread([1.0, 1.1, 0.9], [0.5, 0.56, 0.44])
    assert steady.reliable and steady.low == pytest.approx(0.488, abs=1e-3)
    assert steady.median == pytest.approx(0.5)
    straddle = ratio_spread([1.0, 1.0, 1.0], [0.6, 0.7, 1.3])  # median 0.7, one repeat says > 1
    assert not straddle.reliable and "1.0" in straddle.note
    drift = ratio_spread([1.0, 1.0, 1.0], [0.2, 0.3, 0.9])  # all < 1 but 4.5x apart
    assert not drift.reliable and "x0.20-0.90" in drift.note  # what was measured
    assert "load" not in drift.note  # a cause is not claimed from the ratios alone
    assert not ratio_spread([1.0], [0.5]).reliable  # one repeat has no spread


def _context(before: float, during: tuple[float, ...], after: float) -> BenchmarkContext:
    return BenchmarkContext(
        device="cpu",
        device_name="cpu",
        torch_threads=1,
        cpu_count=2,
        load_before=(before, 0.0, 0.0),
        load_after=(after, 0.0, 0.0),
        started_at="2026-01-01T00:00:00+00:00",
        seconds=10.0,
        load_during=during,
    )


def _unreliable_result(ctx: BenchmarkContext) -> BenchmarkResult:
    s = ratio_spread([1.0, 1.0, 1.0], [0.15, 0.3, 2.68])
    row = BenchmarkRow(
        "inference_throughput_b32",
        "inference throughput (batch 32)",
        "clips/s",
        100.0,
        30.0,
        s.median,
        s.low,
        s.high,
        False,
        s.reliable,
        s.note,
    )
    return BenchmarkResult(
        model="m",
        n_layers=4,
        prune_point=1,
        train_batch=8,
        infer_batch=32,
        warmup=2,
        repeats=3,
        steps_per_epoch=None,
        memory_method="-",
        context=ctx,
        rows=(row,),
    )


def test_unreliable_names_the_measured_spread_and_blames_load_only_if_it_changed() -> None:
    """'x0.17 (0.15-2.68) ... the machine's load (0.5)' blamed a load that never moved."""
    steady = _unreliable_result(_context(0.5, (0.5, 0.6, 0.5), 0.6)).reliability_text()
    assert "x0.15-2.68" in steady
    assert "Load steady (0.5-0.6" in steady and "does not explain" in steady
    assert "quieter" not in steady
    rising = _unreliable_result(_context(0.5, (1.2, 2.4, 3.0), 3.1)).reliability_text()
    assert "x0.15-2.68" in rising and "Load rose 0.5 -> 3.1 during the run" in rising
    spike = _context(0.5, (3.0, 0.6), 0.6)  # rose and fell back: the samples show it
    assert spike.load_changed and "ranged 0.5-3.0" in spike.load_text()
    assert BenchmarkContext.from_dict(spike.to_dict()) == spike


def test_cli_page_and_sweep_share_one_set_of_benchmark_defaults() -> None:
    """The page's thread ran 3 repeats, 1 warm-up, batch 16 while the CLI ran 5, 2, 32: one dataclass."""
    from core.cli.main import build_parser
    from core.cli.options import config_from_args

    args = build_parser().parse_args(["benchmark", "--model", "m", "--prune", "2"])
    assert config_from_args(BenchmarkConfig, args) == BenchmarkConfig(model="m", prune_point=2)
    assert BenchmarkConfig(model="m", prune_point=2).timing_threads == 1


def test_out_of_range_prune_point_is_refused_in_words() -> None:
    with pytest.raises(LabError, match=r"prune point 9 is out of range .* 1\.\.4"):
        BenchmarkConfig(model="whisper-tiny.en-offline", prune_point=9).check(4)
    BenchmarkConfig(model="m", prune_point=4).check(4)


def test_benchmark_reports_progress_per_round_and_stops_when_asked(tiny_model: Path) -> None:
    rows: list[dict] = []
    cfg = BenchmarkConfig(
        model=str(tiny_model),
        prune_point=1,
        n_labels=4,
        train_batch=4,
        infer_batch=8,
        warmup=1,
        repeats=2,
        device="cpu",
    )
    res = run_benchmark(cfg, on_progress=rows.append)
    assert [(r["phase"], r["done"], r["total"]) for r in rows] == [
        ("warm-up", 0, 3),
        ("warm-up", 1, 3),
        ("timing", 2, 3),
        ("timing", 3, 3),
    ]
    assert len(res.context.load_during) == 2 and res.timing_threads == 1 and res.code_version
    with pytest.raises(Cancelled):
        run_benchmark(cfg, should_stop=lambda: True)


@pytest.mark.slow
def test_injected_slowdown_in_one_repeat_is_flagged(tiny_model: Path) -> None:
    """Machine load in one repeat (a sleep inside the pruned model's timed step) must not pass silently."""
    seen: list[tuple[str, str, int]] = []

    def busy_machine(side: str, timing: str, repeat: int) -> None:
        seen.append((side, timing, repeat))
        if (side, timing, repeat) == ("pruned", "train_step", 1):
            time.sleep(1.0)

    res = _run(tiny_model, repeats=3, timing_hook=busy_machine)
    # interleaved: each repeat times full then pruned for every measurement
    assert seen[:6] == [
        ("full", "train_step", 0),
        ("pruned", "train_step", 0),
        ("full", "latency_b1", 0),
        ("pruned", "latency_b1", 0),
        ("full", "throughput_batch", 0),
        ("pruned", "throughput_batch", 0),
    ]
    step = res.row("train_step_seconds")
    assert res.raw_seconds["train_step"]["pruned"][1] >= 1.0
    assert not step.reliable and step.note
    assert step.ratio_max > step.ratio  # the slowed repeat is the max, the median resists it
    assert step in res.unreliable
    assert step.better is None  # an unreliable ratio names no winner
    assert "UNRELIABLE" in benchmark_rows(res)


def test_older_benchmark_files_are_refused_in_one_line() -> None:
    old = {"model": "m", "rows": [{"metric": "params_total", "full": 1, "pruned": 1, "ratio": 1}]}
    with pytest.raises(BenchmarkFormatError, match="older version"):
        BenchmarkResult.from_dict(old)
