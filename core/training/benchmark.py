"""Cost of a full vs a pruned classifier, measured side by side in one process.

For any model and prune point: parameters (total, trainable with the conv front-end frozen), training
time per optimizer step (forward + backward + AdamW, batch ``train_batch``) and the estimate per epoch
(median step x steps per epoch), inference latency at batch 1 and throughput at ``infer_batch``, and
peak memory of a training step and of an inference batch.

Method: inputs are seeded random 1 s waveforms, preprocessed once (feature extraction is not timed).
Each timing is preceded by ``warmup`` untimed repeats; the figure is the median of ``repeats`` timed
repeats. On CUDA every timed region is bracketed by ``torch.cuda.synchronize()`` and peak memory is
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (bytes above what was allocated
before). On CPU peak memory is the peak of the running sum of
tensor allocations minus frees in op order, as recorded by ``torch.profiler`` with
``profile_memory=True`` (bytes of tensors alive above those alive before: activations, gradients,
optimizer state). Neither tracemalloc (it does not see torch's allocator) nor the RSS delta (the
allocator keeps freed blocks after the warm-up, so the delta reads ~0) measure this. Full and pruned models are measured alternately per repeat, so machine-load drift affects
both alike. Output: rows ``metric, unit, full, pruned, ratio`` (ratio = pruned / full), saved as JSON
and CSV by :func:`save_benchmark`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.io.atomic import atomic_write_bytes, atomic_write_json

__all__ = ["benchmark", "benchmark_rows", "save_benchmark"]


def _peak_memory(device: torch.device, fn: Callable[[], Any]) -> int | None:
    """Peak memory (bytes) used by one call of ``fn`` on ``device``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - before)
    return _cpu_tensor_peak(fn)


def _cpu_tensor_peak(fn: Callable[[], Any]) -> int:
    """Peak bytes of CPU tensors alive during ``fn`` above those alive before (torch profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    running = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += int(event.self_cpu_memory_usage)  # allocations positive, frees negative
        peak = max(peak, running)
    return peak


def _timed(device: torch.device, fn: Callable[[], Any]) -> float:
    """Seconds for one call of ``fn`` (synchronised on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


class _Subject:
    """One classifier prepared for timing: model, optimizer and fixed input batches."""

    def __init__(self, clf: nn.Module, enc: Any, waves: np.ndarray, train_batch: int, bf16: bool):
        from core.models.classifier import autocast as _autocast
        from core.models.classifier import model_inputs as _model_inputs

        self.clf, self.enc, self.device = clf, enc, enc.device
        self.autocast = lambda: _autocast(self.device, bf16)
        self.train_inputs = _model_inputs(enc, waves[:train_batch])
        self.one_input = _model_inputs(enc, waves[:1])
        self.infer_inputs = _model_inputs(enc, waves)
        n_labels = int(clf.config.num_labels)
        self.targets = torch.arange(train_batch, device=self.device) % n_labels
        params = [p for p in clf.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=1e-5)

    def train_step(self) -> None:
        self.clf.train()
        with self.autocast():
            logits = self.clf(**self.train_inputs).logits.float()
        loss = nn.functional.cross_entropy(logits, self.targets)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def infer(self, inputs: dict[str, torch.Tensor]) -> None:
        self.clf.eval()
        with self.autocast():
            self.clf(**inputs)


def benchmark(
    model: str | os.PathLike,
    prune_point: int,
    *,
    n_labels: int = 35,
    train_batch: int = 8,
    infer_batch: int = 32,
    warmup: int = 2,
    repeats: int = 5,
    n_train_clips: int | None = None,
    freeze_front_end: bool = True,
    device: str | None = None,
    bf16: bool = True,
    seed: int = 0,
    whisper_input: str = "trimmed",
) -> dict[str, Any]:
    """Measure full vs pruned (at ``prune_point``) classifiers of ``model``; returns meta + rows."""
    from core.models.classifier import build_classifier
    from core.models.classifier import freeze_front_end as freeze
    from core.models.pruning import count_parameters

    labels = [f"class{i}" for i in range(n_labels)]
    subjects: dict[str, _Subject] = {}
    params: dict[str, dict[str, int]] = {}
    rng = np.random.default_rng(seed)
    waves = (0.1 * rng.standard_normal((max(infer_batch, train_batch), 16000))).astype(np.float32)
    n_layers = None
    for name, p in (("full", None), ("pruned", prune_point)):
        clf, enc = build_classifier(
            model, labels, p, whisper_input=whisper_input, seed=seed, device=device
        )
        if freeze_front_end:
            freeze(clf)
        if name == "full":
            n_layers = enc.n_layers
        params[name] = count_parameters(clf)
        subjects[name] = _Subject(clf, enc, waves, train_batch, bf16)
    dev = subjects["full"].device

    step_t: dict[str, list[float]] = {"full": [], "pruned": []}
    lat_t: dict[str, list[float]] = {"full": [], "pruned": []}
    thr_t: dict[str, list[float]] = {"full": [], "pruned": []}
    for _ in range(warmup):
        for s in subjects.values():
            s.train_step()
            s.infer(s.one_input)
            s.infer(s.infer_inputs)
    for _ in range(repeats):  # alternate full/pruned so load drift hits both
        for name, s in subjects.items():
            step_t[name].append(_timed(dev, s.train_step))
            lat_t[name].append(_timed(dev, lambda s=s: s.infer(s.one_input)))
            thr_t[name].append(_timed(dev, lambda s=s: s.infer(s.infer_inputs)))
    mem_train = {n: _peak_memory(dev, s.train_step) for n, s in subjects.items()}
    mem_infer = {
        n: _peak_memory(dev, lambda s=s: s.infer(s.infer_inputs)) for n, s in subjects.items()
    }

    steps_per_epoch = math.ceil(n_train_clips / train_batch) if n_train_clips else None
    med = {
        k: {n: float(np.median(v[n])) for n in v}
        for k, v in (("step", step_t), ("lat", lat_t), ("thr", thr_t))
    }
    values: list[tuple[str, str, Any, Any]] = [
        ("params_total", "count", params["full"]["total"], params["pruned"]["total"]),
        ("params_trainable", "count", params["full"]["trainable"], params["pruned"]["trainable"]),
        ("params_transformer", "count", params["full"]["transformer"], params["pruned"]["transformer"]),
        ("train_step_seconds", "s", med["step"]["full"], med["step"]["pruned"]),
    ]  # fmt: skip
    if steps_per_epoch:
        values.append(
            (
                "train_epoch_seconds_est",
                "s",
                med["step"]["full"] * steps_per_epoch,
                med["step"]["pruned"] * steps_per_epoch,
            )
        )
    values += [
        ("inference_latency_b1_seconds", "s", med["lat"]["full"], med["lat"]["pruned"]),
        (
            f"inference_throughput_b{infer_batch}",
            "clips/s",
            infer_batch / med["thr"]["full"],
            infer_batch / med["thr"]["pruned"],
        ),
        ("peak_memory_train_bytes", "bytes", mem_train["full"], mem_train["pruned"]),
        ("peak_memory_infer_bytes", "bytes", mem_infer["full"], mem_infer["pruned"]),
    ]
    rows = []
    for metric, unit, full, pruned in values:
        ratio = pruned / full if full and pruned is not None and full is not None else None
        rows.append(
            {"metric": metric, "unit": unit, "full": full, "pruned": pruned, "ratio": ratio}
        )
    return {
        "model": str(model),
        "n_layers": n_layers,
        "prune_point": int(prune_point),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "train_batch": train_batch,
        "infer_batch": infer_batch,
        "warmup": warmup,
        "repeats": repeats,
        "steps_per_epoch": steps_per_epoch,
        "memory_method": "cuda max_memory_allocated"
        if dev.type == "cuda"
        else "torch.profiler CPU tensor memory, peak above baseline",
        "raw_seconds": {"train_step": step_t, "latency_b1": lat_t, "throughput_batch": thr_t},
        "rows": rows,
    }


def benchmark_rows(result: dict[str, Any]) -> str:
    """The rows as a fixed-width text table, for a terminal."""
    lines = [f"{'metric':34} {'full':>14} {'pruned':>14} {'ratio':>7}"]
    for r in result["rows"]:

        def fmt(v: Any) -> str:
            if v is None:
                return "n/a"
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"

        ratio = "n/a" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(f"{r['metric']:34} {fmt(r['full']):>14} {fmt(r['pruned']):>14} {ratio:>7}")
    return "\n".join(lines)


def save_benchmark(result: dict[str, Any], directory: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``benchmark.json`` and ``benchmark.csv`` (rows) atomically into ``directory``."""
    directory = Path(directory)
    jpath = atomic_write_json(directory / "benchmark.json", result)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["metric", "unit", "full", "pruned", "ratio"])
    writer.writeheader()
    writer.writerows(result["rows"])
    cpath = atomic_write_bytes(directory / "benchmark.csv", buf.getvalue().encode())
    return jpath, cpath
