"""Full vs pruned benchmark: table shape, files, and a pruned model that really is cheaper."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from core.training.benchmark import benchmark, benchmark_rows, save_benchmark
from tests.tiny_assets import make_trainable_wav2vec2

METRICS = {
    "params_total",
    "params_trainable",
    "params_transformer",
    "train_step_seconds",
    "train_epoch_seconds_est",
    "inference_latency_b1_seconds",
    "inference_throughput_b8",
    "peak_memory_train_bytes",
    "peak_memory_infer_bytes",
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """One torch thread: steadier timings on a shared 2-core machine."""
    torch.set_num_threads(1)


def test_benchmark_table_shape_and_files(tmp_path: Path) -> None:
    model = make_trainable_wav2vec2(tmp_path / "m", layers=3)
    res = benchmark(
        model, 1, n_labels=4, train_batch=4, infer_batch=8, warmup=1, repeats=2,
        n_train_clips=40, device="cpu",
    )  # fmt: skip
    rows = {r["metric"]: r for r in res["rows"]}
    assert set(rows) == METRICS
    assert res["n_layers"] == 3 and res["prune_point"] == 1
    assert rows["params_total"]["pruned"] < rows["params_total"]["full"]
    assert 0 < rows["params_transformer"]["ratio"] < 0.4  # 1 of 3 layers
    assert rows["params_trainable"]["full"] < rows["params_total"]["full"]  # conv front-end frozen
    for r in res["rows"]:
        if r["metric"].startswith(("train", "inference")):
            assert r["full"] > 0 and r["pruned"] > 0 and r["ratio"] > 0
    jpath, cpath = save_benchmark(res, tmp_path / "out")
    assert json.loads(jpath.read_text())["rows"] == json.loads(json.dumps(res["rows"]))
    with open(cpath) as fh:
        table = list(csv.DictReader(fh))
    assert [t["metric"] for t in table] == [r["metric"] for r in res["rows"]]
    assert "ratio" in benchmark_rows(res)


def test_pruned_is_faster_on_a_deeper_model(tmp_path: Path) -> None:
    model = make_trainable_wav2vec2(tmp_path / "deep", layers=8, hidden=64)
    res = benchmark(
        model, 1, n_labels=4, train_batch=4, infer_batch=8, warmup=1, repeats=5, device="cpu"
    )
    rows = {r["metric"]: r for r in res["rows"]}
    # 1 of 8 layers: medians of 5 alternating repeats; a generous bound tolerates a noisy shared host.
    assert rows["train_step_seconds"]["ratio"] < 0.8
    assert rows["inference_latency_b1_seconds"]["ratio"] < 0.8
    assert rows["inference_throughput_b8"]["ratio"] > 1.25
    # memory is counted, not timed: activations + gradients of 1 vs 8 layers
    assert (
        0
        < rows["peak_memory_train_bytes"]["pruned"]
        < 0.8 * rows["peak_memory_train_bytes"]["full"]
    )
    assert rows["peak_memory_infer_bytes"]["pruned"] > 0
