"""Synthetic inputs for tests: feature sets, hypothesis point-set problems, saved benchmark results."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import strategies as st

from core.geometry.synthetic import synthetic_layers
from core.io.atomic import atomic_write_json
from core.training.benchmark import BenchmarkContext, BenchmarkResult, BenchmarkRow, ratio_spread

BENCHMARK_MODEL = "whisper-tiny.en-offline"  # 4 layers in the registry


def fake_features(layers: int = 4, n: int = 60, model: str = "model-a") -> SimpleNamespace:
    """Synthetic features (N, layers, 8) with a feature-set meta like core.data.features writes."""
    x, y = synthetic_layers(n, 3, 8, layers, seed=layers)
    meta = {
        "key": f"synthetic-{model}-{layers}",
        "model_key": model,
        "model_id": f"org/{model}",
        "weights": "params-sha256:" + "ab" * 32,
        "dataset": "synthetic",
        "n_clips": n,
        "selection": {"split": "all"},
        "dataset_fingerprint": "cd" * 32,
        "n_layers": layers - 1,
    }
    words = [f"w{c}" for c in y]
    speakers = [f"s{i % 4}" for i in range(n)]
    return SimpleNamespace(features=x, meta=meta, key=meta["key"], words=words, speakers=speakers)


@st.composite
def small_problems(draw):
    """Small point sets with integer grids (ties, duplicates), floats, 1-D data, singletons."""
    n = draw(st.integers(4, 22))
    d = draw(st.integers(1, 3))
    if draw(st.booleans()):
        coords = draw(st.lists(st.integers(0, 3), min_size=n * d, max_size=n * d))
        points = np.array(coords, dtype=np.float64).reshape(n, d)
    else:
        seed = draw(st.integers(0, 2**31 - 1))
        points = np.random.default_rng(seed).normal(size=(n, d))
    n_classes = draw(st.integers(2, 4))
    labels = draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    k = draw(st.integers(1, min(5, n - 1)))
    return points, labels, k


def has_two_classes(labels) -> bool:
    values, counts = np.unique(labels, return_counts=True)
    return int((counts >= 2).sum()) >= 2


def saved_benchmark(run: Path, load_during: tuple[float, ...]) -> None:
    s = ratio_spread([1.0, 1.0, 1.0], [0.15, 0.17, 2.68])
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
    ctx = BenchmarkContext(
        "cpu",
        "cpu",
        1,
        2,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        "2026-01-01T00:00:00+00:00",
        9.0,
        load_during,
    )
    res = BenchmarkResult(BENCHMARK_MODEL, 4, 1, 8, 32, 2, 3, None, "-", ctx, (row,))
    atomic_write_json(run / "benchmark.json", res.to_dict())
