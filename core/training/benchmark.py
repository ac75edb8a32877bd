"""Cost of a full vs a pruned classifier, measured side by side in one process, robust to a busy machine.

For any model and prune point: parameters, training time per optimizer step (forward + backward + AdamW,
batch ``train_batch``) and per epoch, inference latency at batch 1 and throughput at ``infer_batch``, and
memory split into weights, optimizer state and peak activations.

Method: inputs are seeded random 1 s waveforms, preprocessed once (feature extraction is not timed). Full and
pruned are warmed up, then timed *interleaved*: in every repeat each measurement is taken for the full model
and immediately after for the pruned one, so a change of machine load hits both sides of a pair alike. Each
ratio (pruned / full) is the median of the per-repeat ratios, reported with its min and max; it is flagged
unreliable when the repeats disagree: some say pruned is cheaper and some say dearer (their range straddles
1.0), or the largest ratio is more than twice the smallest. The 1-min load average is sampled before, after
every repeat and after, so a report names the load as a cause only when it was measured to change. Timing is done
here rather than with ``torch.utils.benchmark``: that times one statement at a time and cannot pair the two
models repeat by repeat, which is what makes the ratio robust.

Memory: weights are counted from parameters and buffers (exact); optimizer state from AdamW's moment
tensors; peak activations are measured. On CUDA with ``torch.cuda.max_memory_allocated`` above what was
allocated before; on CPU as the peak of the running sum of tensor allocations minus frees in op order
recorded by ``torch.profiler`` (``profile_memory=True``): tracemalloc does not see torch's allocator and the
RSS delta reads ~0 after a warm-up. Inference activations are freed layer by layer, so their peak is about one
layer's worth whatever the depth: pruning's saving at inference shows in the weights, and in the total.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core.errors import BenchmarkFormatError, RecordError
from core.io.atomic import atomic_write_bytes, atomic_write_json
from core.io.records import Record, from_dict
from core.io.run_folder import RunFolder
from core.models.identity import ModelIdentity
from core.models.loading import ResolvedModel, as_resolved
from core.models.request import ModelRequest
from core.training.configs import BenchmarkConfig
from core.training.pinning import pinned_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from core.models.plans import PruningPlan

__all__ = [
    "BenchmarkContext",
    "BenchmarkFormatError",
    "BenchmarkResult",
    "BenchmarkRow",
    "RatioSpread",
    "benchmark",
    "benchmark_rows",
    "ratio_spread",
    "run_benchmark",
    "save_benchmark",
]

FORMAT = 2  # benchmark.json layout; older files (rows without spread) are refused with a one-line message
MAX_SPREAD = 2.0  # largest / smallest per-repeat ratio above which repeats are said to disagree
LOAD_CHANGE = (
    0.5  # 1-min load average change (absolute) above which the load is said to have changed
)
TIMINGS = ("train_step", "latency_b1", "throughput_batch")
OPTIONAL = (
    "raw_seconds",
    "seed",
    "timing_threads",
    "code_version",
    "plan",
)  # absent in older files

# Called with one progress row per warm-up or timed round: phase, done, total, time and first_time (when
# round 1 began; seconds since the epoch).
ProgressHook = Callable[[dict[str, Any]], None]

# A hook called inside every timed region with (side, timing, repeat): lets a test add machine load.
TimingHook = Callable[[str, str, int], None]


@dataclass(frozen=True)
class RatioSpread:
    """pruned / full over paired repeats: median, min, max and whether the repeats agree."""

    median: float
    low: float
    high: float
    reliable: bool
    note: str = ""


def ratio_spread(full: Sequence[float], pruned: Sequence[float]) -> RatioSpread:
    """Per-repeat ratios ``pruned[i] / full[i]`` summarised; unreliable when the repeats disagree.

    The note of an unreliable spread states what was measured (the range of the repeats' ratios), never
    a guess at its cause: the machine's load is judged separately, from its measured samples.
    """
    ratios = [p / f for f, p in zip(full, pruned, strict=True) if f > 0]
    if not ratios:
        return RatioSpread(math.nan, math.nan, math.nan, False, "no valid repeat")
    med, low, high = statistics.median(ratios), min(ratios), max(ratios)
    if len(ratios) == 1:
        return RatioSpread(med, low, high, False, "one repeat: no spread to judge it by")
    spread = f"repeats' ratios x{low:.2f}-{high:.2f}"
    if low < 1.0 < high:
        return RatioSpread(
            med, low, high, False, f"{spread} disagree on which side is cheaper (range spans 1.0)"
        )
    if high > MAX_SPREAD * low:
        return RatioSpread(
            med,
            low,
            high,
            False,
            f"{spread}: the largest is more than {MAX_SPREAD:g}x the smallest",
        )
    return RatioSpread(med, low, high, True)


@dataclass(frozen=True)
class BenchmarkRow(Record):
    """One measured quantity for both models; ``ratio`` is pruned / full (median over repeats)."""

    metric: str  # stable machine name, e.g. "train_step_seconds"
    label: str  # what a person reads, e.g. "training step"
    unit: str  # "s", "clips/s", "bytes", "parameters"
    full: float | None
    pruned: float | None
    ratio: float | None
    ratio_min: float | None = None
    ratio_max: float | None = None
    lower_is_better: bool = True
    reliable: bool = True
    note: str = ""

    @property
    def better(self) -> str | None:
        """ "pruned", "full" or None (equal, unknown, or not reliably measured)."""
        if self.ratio is None or not self.reliable or math.isnan(self.ratio) or self.ratio == 1:
            return None
        pruned_lower = self.ratio < 1
        return "pruned" if pruned_lower == self.lower_is_better else "full"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def _exact_row(metric: str, label: str, unit: str, full: float, pruned: float) -> BenchmarkRow:
    """A counted (not timed) quantity: no spread, always reliable."""
    ratio = pruned / full if full else None
    return BenchmarkRow(
        metric, label, unit, full, pruned, ratio, ratio, ratio, True, True, "counted"
    )


def _timed_row(
    metric: str,
    label: str,
    unit: str,
    full: Sequence[float],
    pruned: Sequence[float],
    scale: float = 1.0,
) -> BenchmarkRow:
    """A timed quantity (seconds per repeat) as median x ``scale``, with the paired ratio's spread."""
    s = ratio_spread(full, pruned)
    return BenchmarkRow(
        metric,
        label,
        unit,
        statistics.median(full) * scale,
        statistics.median(pruned) * scale,
        s.median,
        s.low,
        s.high,
        True,
        s.reliable,
        s.note,
    )


def _rate_row(
    metric: str, label: str, batch: int, full: Sequence[float], pruned: Sequence[float]
) -> BenchmarkRow:
    """Throughput (clips/s) from seconds per batch: higher is better, ratio = full time / pruned time."""
    s = ratio_spread(pruned, full)  # (batch / p) / (batch / f) = f / p
    return BenchmarkRow(
        metric,
        label,
        "clips/s",
        batch / statistics.median(full),
        batch / statistics.median(pruned),
        s.median,
        s.low,
        s.high,
        False,
        s.reliable,
        s.note,
    )


@dataclass(frozen=True)
class BenchmarkContext(Record):
    """Where and under what load the benchmark ran (load averages over 1, 5, 15 min, before and after)."""

    device: str
    device_name: str
    torch_threads: int
    cpu_count: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    started_at: str
    seconds: float
    load_during: tuple[float, ...] = ()  # 1-min load average sampled after every timed repeat

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            **asdict(self),
            "load_before": list(self.load_before),
            "load_after": list(self.load_after),
            "load_during": list(self.load_during),
        }

    @property
    def load_range(self) -> tuple[float, float]:
        """Lowest and highest 1-min load average measured from the start to the end of the run."""
        samples = [self.load_before[0], *self.load_during, self.load_after[0]]
        return min(samples), max(samples)

    @property
    def load_changed(self) -> bool:
        """Whether the measured load moved by more than ``LOAD_CHANGE`` (absolute) during the run."""
        low, high = self.load_range
        return high - low > LOAD_CHANGE

    def load_text(self) -> str:
        """What the load measurements say, e.g. ``load rose 0.5 -> 3.1 during the run``."""
        low, high = self.load_range
        before, after = self.load_before[0], self.load_after[0]
        if not self.load_changed:
            return f"load steady ({low:.1f}-{high:.1f} over the run)"
        if (low, high) == tuple(sorted((before, after))):
            verb = "rose" if after > before else "fell"
            return f"load {verb} {before:.1f} -> {after:.1f} during the run"
        return f"load ranged {low:.1f}-{high:.1f} during the run ({before:.1f} -> {after:.1f})"


@dataclass(frozen=True)
class BenchmarkResult(Record):
    """Full vs pruned cost table of one model and prune point, with how and where it was measured."""

    model: str
    n_layers: int
    prune_point: int
    train_batch: int
    infer_batch: int
    warmup: int
    repeats: int
    steps_per_epoch: int | None
    memory_method: str
    context: BenchmarkContext
    rows: tuple[BenchmarkRow, ...]
    raw_seconds: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    seed: int = 0
    timing_threads: int | None = None
    code_version: str = ""
    model_identity: ModelIdentity | None = None  # the weights timed (None in old files)
    plan: str | None = None  # the pruned side's layers when a plan named them ("drop 3-4")

    @property
    def pruned_words(self) -> str:
        """``at p = 8`` or ``to drop 3-4 (10 layers)``: the pruned side in a headline."""
        if self.plan:
            return f"to {self.plan} ({self.prune_point} layers)"
        return f"at p = {self.prune_point}"

    def row(self, metric: str) -> BenchmarkRow:
        """The row called ``metric`` (KeyError if absent)."""
        for r in self.rows:
            if r.metric == metric:
                return r
        raise KeyError(metric)

    @property
    def unreliable(self) -> list[BenchmarkRow]:
        """Rows whose repeats disagreed."""
        return [r for r in self.rows if not r.reliable]

    def reliability_text(self) -> str:
        """Why rows are unreliable, from what was measured ("" when every row is reliable).

        Each row with its measured spread, then the load as it was measured; the load is named as a
        possible cause only when it was measured to change.
        """
        if not self.unreliable:
            return ""
        rows = "; ".join(f"{r.label}: {r.note}" for r in self.unreliable)
        load = self.context.load_text()
        load = load[0].upper() + load[1:]
        if self.context.load_changed:
            return f"{rows}. {load}: run it again when the machine is quieter."
        return f"{rows}. {load}, so the measured load does not explain it: more repeats narrow it."

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``format`` names the layout)."""
        return {
            "format": FORMAT,
            **{
                k: getattr(self, k)
                for k in self.__dataclass_fields__
                if k not in ("context", "rows", "model_identity", "plan")
            },
            **({"plan": self.plan} if self.plan else {}),
            "context": self.context.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
            **({"model_identity": self.model_identity.to_dict()} if self.model_identity else {}),
        }

    @classmethod
    def from_dict(cls, data: Any) -> BenchmarkResult:
        """Inverse of :meth:`to_dict` (the shared record reader); BenchmarkFormatError for an older
        or damaged layout."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BenchmarkFormatError(
                "saved by an older version (no spread over repeats): run the benchmark again"
            )
        known = {k: v for k, v in data.items() if not (k in OPTIONAL and v is None)}
        try:
            return from_dict(cls, known)
        except RecordError as exc:
            raise BenchmarkFormatError(f"damaged benchmark file ({exc})") from exc


# ------------------------------------------------------------------------------------------------------------
# Measuring


def _rounded_load(load: Sequence[float]) -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages, to two decimals."""
    one, five, fifteen = (round(float(x), 2) for x in load)
    return one, five, fifteen


def _sync(device: torch.device) -> None:
    """Wait for queued CUDA work (no-op elsewhere)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_memory(device: torch.device, fn: Callable[[], Any]) -> int:
    """Peak bytes allocated during one call of ``fn`` above what was allocated before."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - before)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    running = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += int(event.self_cpu_memory_usage)  # allocations positive, frees negative
        peak = max(peak, running)
    return peak


def _tensor_bytes(tensors: Any) -> int:
    """Bytes of the given tensors."""
    return int(sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t)))


class _Subject:
    """One classifier prepared for timing: model, optimizer and fixed input batches."""

    def __init__(
        self, clf: PreTrainedModel, enc: Any, waves: np.ndarray, train_batch: int, bf16: bool
    ):
        from core.models.classifier import autocast, model_inputs

        self.clf, self.enc, self.device = clf, enc, enc.device
        self.autocast = lambda: autocast(self.device, bf16)
        self.inputs = {
            "train_step": model_inputs(enc, waves[:train_batch]),
            "latency_b1": model_inputs(enc, waves[:1]),
            "throughput_batch": model_inputs(enc, waves),
        }
        n_labels = int(clf.config.num_labels or 1)
        self.targets = torch.arange(train_batch, device=self.device) % n_labels
        self.opt = torch.optim.AdamW([p for p in clf.parameters() if p.requires_grad], lr=1e-5)

    def run(self, timing: str) -> None:
        """One training step or one inference batch."""
        if timing == "train_step":
            self.train_step()
        else:
            self.infer(self.inputs[timing])

    def train_step(self) -> None:
        self.clf.train()
        with self.autocast():
            logits = self.clf(**self.inputs["train_step"]).logits.float()
        nn.functional.cross_entropy(logits, self.targets).backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def infer(self, inputs: dict[str, torch.Tensor]) -> None:
        self.clf.eval()
        with self.autocast():
            self.clf(**inputs)

    def weight_bytes(self) -> int:
        return _tensor_bytes(list(self.clf.parameters()) + list(self.clf.buffers()))

    def optimizer_bytes(self) -> int:
        return _tensor_bytes(v for s in self.opt.state.values() for v in s.values())


def _time_interleaved(
    subjects: dict[str, _Subject],
    warmup: int,
    repeats: int,
    hook: TimingHook | None,
    on_progress: ProgressHook | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[dict[str, dict[str, list[float]]], list[float]]:
    """Seconds per repeat for each timing and side (full and pruned back to back in every repeat), and
    the 1-min load average sampled after every repeat."""
    total, first = warmup + repeats, time.time()

    def tick(phase: str, done: int) -> None:
        if should_stop is not None and should_stop():
            from core.errors import Cancelled

            raise Cancelled("benchmark cancelled")
        if on_progress is not None:
            on_progress(
                {
                    "phase": phase,
                    "done": done,
                    "total": total,
                    "time": time.time(),
                    "first_time": first,
                }
            )

    tick("warm-up", 0)
    for i in range(warmup):
        for timing in TIMINGS:
            for s in subjects.values():
                s.run(timing)
        tick("warm-up", i + 1)
    raw: dict[str, dict[str, list[float]]] = {t: {n: [] for n in subjects} for t in TIMINGS}
    loads: list[float] = []
    for rep in range(repeats):
        for timing in TIMINGS:
            for name, s in subjects.items():
                _sync(s.device)
                t0 = time.perf_counter()
                s.run(timing)
                if hook is not None:
                    hook(name, timing, rep)
                _sync(s.device)
                raw[timing][name].append(time.perf_counter() - t0)
        loads.append(round(os.getloadavg()[0], 2))
        tick("timing", warmup + rep + 1)
    return raw, loads


def run_benchmark(
    cfg: BenchmarkConfig,
    *,
    on_progress: ProgressHook | None = None,
    should_stop: Callable[[], bool] | None = None,
    timing_hook: TimingHook | None = None,
) -> BenchmarkResult:
    """The benchmark ``cfg`` describes: what ``python -m core benchmark``, the page's job and sweeps run."""
    cfg.check()
    resolved = pinned_model(cfg.request, cfg.model_identity, f"benchmark of {cfg.model}")
    return benchmark(
        resolved, cfg, timing_hook=timing_hook, on_progress=on_progress, should_stop=should_stop
    )


def benchmark(
    model: ResolvedModel | ModelRequest | str | os.PathLike,
    cfg: BenchmarkConfig,
    *,
    timing_hook: TimingHook | None = None,
    on_progress: ProgressHook | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BenchmarkResult:
    """Measure the full classifier of ``model`` and the one pruned to ``cfg``'s plan side by side.

    ``model`` is resolved once (a name: the default input window); the result records its identity.
    ``cfg.timing_threads``: torch intra-op threads while measuring (restored after); 1 keeps a busy
    shared CPU from thrashing, None leaves torch's setting. ``on_progress`` gets one row per round;
    ``should_stop`` is polled between rounds (:class:`~core.errors.Cancelled` when it says so).
    """
    before = torch.get_num_threads()
    if cfg.timing_threads is not None:
        torch.set_num_threads(cfg.timing_threads)
    try:
        return _benchmark(as_resolved(model), cfg, timing_hook, on_progress, should_stop)
    finally:
        torch.set_num_threads(before)


def _benchmark(
    model: ResolvedModel,
    cfg: BenchmarkConfig,
    timing_hook: TimingHook | None,
    on_progress: ProgressHook | None,
    should_stop: Callable[[], bool] | None,
) -> BenchmarkResult:
    """:func:`benchmark` with torch's thread count already set."""
    start = _Start.now()
    plan = cfg.pruning_plan(model.n_layers)
    sides = _build_sides(model, cfg, plan)
    raw, loads = _time_interleaved(
        sides.subjects, cfg.warmup, cfg.repeats, timing_hook, on_progress, should_stop
    )
    measured = _Measured(raw, _memory(sides), tuple(loads))
    rows = (
        _parameter_rows(sides.params)
        + _timing_rows(cfg, measured.raw)
        + _memory_rows(cfg.infer_batch, measured.memory)
    )
    context = _context(start, sides.device, measured.loads)
    return _result(model, cfg, plan, sides, _Outcome(rows=tuple(rows), raw=raw, context=context))


@dataclass(frozen=True)
class _Start:
    """When the benchmark began (wall clock and monotonic) and the load averages then."""

    started: datetime
    t_start: float
    load_before: tuple[float, float, float]

    @classmethod
    def now(cls) -> _Start:
        """The start as of this moment."""
        return cls(datetime.now(UTC), time.perf_counter(), os.getloadavg())


@dataclass(frozen=True)
class _Sides:
    """The full and pruned classifiers prepared for timing, with their parameter counts."""

    subjects: dict[str, _Subject]  # "full" and "pruned"
    params: dict[str, dict[str, int]]  # side -> count_parameters()
    n_layers: int  # of the full encoder

    @property
    def device(self) -> torch.device:
        """Where both classifiers run."""
        return self.subjects["full"].device


@dataclass(frozen=True)
class _Measured:
    """What was measured of both sides: seconds per repeat, memory and the load after every repeat."""

    raw: dict[str, dict[str, list[float]]]  # timing -> side -> seconds per repeat
    memory: dict[str, dict[str, int]]  # side -> weights, optimizer, train_peak, infer_peak (bytes)
    loads: tuple[float, ...]


@dataclass(frozen=True)
class _Outcome:
    """The measured rows, the raw timings they came from, and where and under what load."""

    rows: tuple[BenchmarkRow, ...]
    raw: dict[str, dict[str, list[float]]]
    context: BenchmarkContext


def _build_sides(model: ResolvedModel, cfg: BenchmarkConfig, plan: PruningPlan) -> _Sides:
    """Both classifiers (full, then pruned to ``plan``) with seeded random 1 s waveforms as inputs."""
    from core.models.classifier import build_classifier
    from core.models.classifier import freeze_front_end as freeze
    from core.models.pruning import count_parameters

    labels = [f"class{i}" for i in range(cfg.n_labels)]
    rng = np.random.default_rng(cfg.seed)
    n_waves = max(cfg.infer_batch, cfg.train_batch)
    waves = (0.1 * rng.standard_normal((n_waves, 16000))).astype(np.float32)
    subjects: dict[str, _Subject] = {}
    params: dict[str, dict[str, int]] = {}
    n_layers = 0
    for name, p in (("full", None), ("pruned", plan)):
        clf, enc = build_classifier(model, labels, p, seed=cfg.seed, device=cfg.device)
        freeze(clf)
        n_layers = n_layers or enc.n_layers
        params[name] = count_parameters(clf)
        subjects[name] = _Subject(clf, enc, waves, cfg.train_batch, cfg.bf16)
    return _Sides(subjects, params, n_layers)


def _memory(sides: _Sides) -> dict[str, dict[str, int]]:
    """Per side: weight and optimizer-state bytes, and the peak activations of a step and a batch."""
    dev = sides.device
    return {
        n: {
            "weights": s.weight_bytes(),
            "optimizer": s.optimizer_bytes(),
            "train_peak": _peak_memory(dev, s.train_step),
            "infer_peak": _peak_memory(
                dev, functools.partial(s.infer, s.inputs["throughput_batch"])
            ),
        }
        for n, s in sides.subjects.items()
    }


def _steps_per_epoch(cfg: BenchmarkConfig) -> int | None:
    """Optimizer steps in an epoch of ``cfg.n_train_clips`` (None when it is not given)."""
    return math.ceil(cfg.n_train_clips / cfg.train_batch) if cfg.n_train_clips else None


def _counted(metric: str, label: str, unit: str, get: Callable[[str], float]) -> BenchmarkRow:
    """A counted row from ``get(side)`` of the full and the pruned side."""
    return _exact_row(metric, label, unit, get("full"), get("pruned"))


def _parameter_rows(params: dict[str, dict[str, int]]) -> list[BenchmarkRow]:
    """Total, trained and transformer-layer parameters of both sides."""
    return [
        _counted("params_total", "parameters (total)", "parameters", lambda n: params[n]["total"]),
        _counted(
            "params_trainable",
            "parameters (trained)",
            "parameters",
            lambda n: params[n]["trainable"],
        ),
        _counted(
            "params_transformer",
            "parameters (transformer layers)",
            "parameters",
            lambda n: params[n]["transformer"],
        ),
    ]


def _timing_rows(
    cfg: BenchmarkConfig, raw: dict[str, dict[str, list[float]]]
) -> list[BenchmarkRow]:
    """Training step (and the epoch estimated from it), latency at batch 1, throughput at a batch."""
    step, steps = raw["train_step"], _steps_per_epoch(cfg)
    rows = [
        _timed_row(
            "train_step_seconds",
            f"training step (batch {cfg.train_batch})",
            "s",
            step["full"],
            step["pruned"],
        )
    ]
    if steps:
        rows.append(
            _timed_row(
                "train_epoch_seconds_est",
                f"training epoch, estimated ({steps} steps)",
                "s",
                step["full"],
                step["pruned"],
                scale=steps,
            )
        )
    return rows + [
        _timed_row(
            "inference_latency_b1_seconds",
            "inference latency (1 clip)",
            "s",
            raw["latency_b1"]["full"],
            raw["latency_b1"]["pruned"],
        ),
        _rate_row(
            f"inference_throughput_b{cfg.infer_batch}",
            f"inference throughput (batch {cfg.infer_batch})",
            cfg.infer_batch,
            raw["throughput_batch"]["full"],
            raw["throughput_batch"]["pruned"],
        ),
    ]


def _memory_rows(infer_batch: int, mem: dict[str, dict[str, int]]) -> list[BenchmarkRow]:
    """Weights, optimizer state, peak activations of a step and a batch, and inference in total."""
    return [
        _counted("memory_weights_bytes", "weights", "bytes", lambda n: mem[n]["weights"]),
        _counted(
            "memory_optimizer_bytes",
            "optimizer state (AdamW)",
            "bytes",
            lambda n: mem[n]["optimizer"],
        ),
        _counted(
            "peak_memory_train_bytes",
            "training step peak (activations + gradients)",
            "bytes",
            lambda n: mem[n]["train_peak"],
        ),
        _counted(
            "peak_memory_infer_bytes",
            f"inference peak activations (batch {infer_batch})",
            "bytes",
            lambda n: mem[n]["infer_peak"],
        ),
        _counted(
            "memory_infer_total_bytes",
            "inference memory (weights + activations)",
            "bytes",
            lambda n: mem[n]["weights"] + mem[n]["infer_peak"],
        ),
    ]


def _context(start: _Start, dev: torch.device, loads: tuple[float, ...]) -> BenchmarkContext:
    """Where it ran and the load before, during and now (the end of the run)."""
    return BenchmarkContext(
        device=str(dev),
        device_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count() or 1,
        load_before=_rounded_load(start.load_before),
        load_after=_rounded_load(os.getloadavg()),
        started_at=start.started.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - start.t_start, 1),
        load_during=loads,
    )


def _result(
    model: ResolvedModel, cfg: BenchmarkConfig, plan: PruningPlan, sides: _Sides, outcome: _Outcome
) -> BenchmarkResult:
    """The result record of a finished benchmark, with the settings and weights it measured."""
    from core.results.provenance import code_version

    return BenchmarkResult(
        model=model.request.name,
        n_layers=int(sides.n_layers),
        prune_point=plan.size,
        train_batch=cfg.train_batch,
        infer_batch=cfg.infer_batch,
        warmup=cfg.warmup,
        repeats=cfg.repeats,
        steps_per_epoch=_steps_per_epoch(cfg),
        memory_method="cuda max_memory_allocated above baseline"
        if sides.device.type == "cuda"
        else "torch.profiler CPU tensor memory, peak above baseline",
        context=outcome.context,
        rows=outcome.rows,
        raw_seconds=outcome.raw,
        seed=cfg.seed,
        timing_threads=cfg.timing_threads,
        code_version=code_version(),
        model_identity=model.identity if model.identity.known else None,
        plan=plan.describe() if cfg.plan is not None else None,
    )


# ------------------------------------------------------------------------------------------------------------
# Output


def human_value(value: float | None, unit: str) -> str:
    """A value in human units: M parameters, MB, ms, clips/s."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "parameters":
        return f"{value / 1e6:.2f} M"
    if unit == "bytes":
        return f"{value / 1e6:.1f} MB"
    if unit == "s":
        if value < 1:
            return f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
    if unit == "clips/s":
        return f"{value:.1f} clips/s"
    return f"{value:.4g} {unit}"


def ratio_text(row: BenchmarkRow) -> str:
    """``x0.42 (0.40-0.45)`` for timings, ``x0.42`` for counts, ``n/a`` without a ratio."""
    if row.ratio is None or math.isnan(row.ratio):
        return "n/a"
    text = f"x{row.ratio:.2f}"
    if row.ratio_min is not None and row.ratio_max is not None and row.ratio_min != row.ratio_max:
        text += f" ({row.ratio_min:.2f}-{row.ratio_max:.2f})"
    return text


def benchmark_rows(result: BenchmarkResult) -> str:
    """The rows as a fixed-width text table for a terminal, with the context and unreliable rows marked."""
    c = result.context
    lines = [
        f"{result.model}: full ({result.n_layers} layers) vs pruned {result.pruned_words}; "
        f"{result.repeats} interleaved repeats after {result.warmup} warm-up; {c.device_name}, "
        f"{c.torch_threads} threads, load {c.load_before[0]:.2f} -> {c.load_after[0]:.2f} on {c.cpu_count} CPUs",
        f"{'':46} {'full':>14} {'pruned':>14}  pruned/full (min-max)",
    ]
    for r in result.rows:
        flag = "" if r.reliable else f"  UNRELIABLE: {r.note}"
        lines.append(
            f"{r.label:46} {human_value(r.full, r.unit):>14} {human_value(r.pruned, r.unit):>14}  "
            f"{ratio_text(r)}{flag}"
        )
    if result.unreliable:
        lines.append(f"UNRELIABLE: {result.reliability_text()}")
    return "\n".join(lines)


CSV_FIELDS = [
    "metric",
    "label",
    "unit",
    "full",
    "pruned",
    "ratio",
    "ratio_min",
    "ratio_max",
    "reliable",
    "note",
]


def save_benchmark(result: BenchmarkResult, directory: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``benchmark.json`` and ``benchmark.csv`` (rows) atomically into ``directory``."""
    directory = Path(directory)
    jpath = atomic_write_json(directory / RunFolder.BENCHMARK, result.to_dict())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(r.to_dict() for r in result.rows)
    cpath = atomic_write_bytes(directory / RunFolder.BENCHMARK_CSV, buf.getvalue().encode())
    return jpath, cpath
