"""The checks that need a CUDA machine, as one command that prints one table (~5 min on one H100/H200).

    python bench/gpu_check.py            # on a GPU machine: full sizes (falls back to the CPU, slowly)
    python bench/gpu_check.py --small    # anywhere, in seconds: the same code paths at tiny sizes

1. ``pytest -m gpu`` (the CUDA tests; skipped with ``--small``, which the test suite itself runs).
2. The convexity engine, exhaustive, on N = 10,990 x 768 x 13 clustered synthetic layers (the paper's
   Speech Commands size), and on N = 100,000 x 768 for one layer at the default target SE, with the
   peak GPU memory: it must stay far below an N x N matrix (40 GB in float32 at N = 100,000).
3. Extraction of a base-size wav2vec2 (random weights: no download) against a bare forward pass on the
   same clips and batches (``bench/extraction.py``'s definitions): what the pipeline costs on top.
4. Full vs pruned training step and inference of that model, measured side by side
   (``core.training.benchmark``), with the ratio's min-max over repeats.

Figures only, no pass/fail on timings; a step that fails prints its one-line error in the table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.extraction import bare_forward  # noqa: E402
from core.data.features import Selection, extract_features  # noqa: E402
from core.geometry.convexity import layerwise_convexity  # noqa: E402
from core.geometry.options import ConvexityOptions
from core.geometry.synthetic import synthetic_layers  # noqa: E402
from core.models.encoder import SpeechEncoder  # noqa: E402
from core.training.benchmark import benchmark  # noqa: E402
from core.training.configs import BenchmarkConfig  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """How big each step is: full sizes for a GPU, tiny ones for a CPU smoke run."""

    n_engine: int
    dim: int
    layers: int
    n_large: int
    clips: int
    hidden: int
    w2v_layers: int
    repeats: int


FULL = Sizes(10_990, 768, 13, 100_000, 512, 768, 12, 5)
SMALL = Sizes(300, 16, 3, 2_000, 16, 32, 2, 2)


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    check: str
    size: str
    seconds: float
    figure: str


def _timed(fn: Callable[[], str]) -> tuple[float, str]:
    """(seconds, figure) of one step; its one-line error as the figure when it fails."""
    t0 = time.perf_counter()
    try:
        figure = fn()
    except Exception as exc:  # reported in the table: the other steps still run
        figure = f"FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, figure


def _peak() -> str:
    """Peak GPU memory since the last reset, or that there is no GPU."""
    if not torch.cuda.is_available():
        return "cpu"
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return f"peak GPU {peak:.2f} GiB"


def engine_rows(s: Sizes, device: str) -> list[Row]:
    """Exhaustive convexity at the paper's size, and one large layer at the default target SE."""
    x, y = synthetic_layers(s.n_engine, 35, s.dim, s.layers, seed=0)

    def exhaustive() -> str:
        curves = layerwise_convexity(
            x, {"word": y}, ConvexityOptions(max_pairs_per_class=None, device=device)
        )
        c = curves["word"]
        assert all(c.exact), "an exhaustive run must be exact"
        return f"scores {c.scores.min():.3f}-{c.scores.max():.3f}, exact; {_peak()}"

    big, labels = synthetic_layers(s.n_large, 35, s.dim, 1, seed=1)

    def large() -> str:
        curves = layerwise_convexity(
            big, {"word": labels}, ConvexityOptions(target_se=0.005, device=device)
        )
        r = curves["word"].results[0]
        n_by_n = s.n_large**2 * 4 / 2**30
        return f"score {r.score:.3f} ± {r.sem:.4f}; {_peak()} (N x N float32: {n_by_n:.0f} GiB)"

    t1, f1 = _timed(exhaustive)
    t2, f2 = _timed(large)
    return [
        Row("engine exhaustive", f"{s.n_engine:,} x {s.dim} x {s.layers}", t1, f1),
        Row("engine target SE 0.005", f"{s.n_large:,} x {s.dim} x 1", t2, f2),
    ]


def _random_wav2vec2(s: Sizes, folder: Path) -> Path:
    """A base-size (or, small, tiny) wav2vec2 with random weights, saved like a checkpoint."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=s.hidden,
        num_hidden_layers=s.w2v_layers,
        num_attention_heads=max(2, s.hidden // 64),
        intermediate_size=4 * s.hidden,
    )
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(folder)
    return folder


def _clips(s: Sizes, root: Path) -> Path:
    """``s.clips`` one-second tone clips of 5 words x 4 speakers as a folder dataset."""
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 16_000
    for i in range(s.clips):
        word = root / f"w{i % 5}"
        word.mkdir(parents=True, exist_ok=True)
        wave = 0.3 * np.sin(2 * np.pi * (200 + 100 * (i % 5)) * t) + 0.01 * rng.normal(size=t.size)
        sf.write(word / f"s{i % 4}_nohash_{i}.wav", wave.astype(np.float32), 16_000)
    return root


def model_rows(s: Sizes, device: str, work: Path) -> list[Row]:
    """Extraction vs a bare forward pass, and full vs pruned training and inference side by side."""
    model_dir = _random_wav2vec2(s, work / "w2v")
    root = _clips(s, work / "clips")
    batch = 32 if device == "cuda" else 8
    rows = []

    def extraction() -> str:
        from transformers import Wav2Vec2Model

        enc = SpeechEncoder(Wav2Vec2Model.from_pretrained(model_dir), device=device)
        t0 = time.perf_counter()
        fs = extract_features(enc, Selection.of("folder", str(root)), batch_size=batch, cache=False)
        extract_s = time.perf_counter() - t0
        from core.data.audio import load_clips

        waves, _ = load_clips([root / path for path in fs.paths])
        bare_s = bare_forward(enc, waves, batch)
        n = fs.features.shape[0]
        return (
            f"extract {n / extract_s:.1f} clips/s vs bare forward {n / bare_s:.1f} clips/s: "
            f"x{bare_s / extract_s:.2f} of the bare rate"
        )

    t, figure = _timed(extraction)
    rows.append(Row("extraction vs bare forward", f"{s.clips} clips, batch {batch}", t, figure))

    def training_step() -> str:
        p = max(1, s.w2v_layers // 2)
        cfg = BenchmarkConfig(
            model=str(model_dir),
            prune_point=p,
            repeats=s.repeats,
            warmup=1,
            device=device,
            train_batch=batch,
            timing_threads=None,
        )
        result = benchmark(str(model_dir), cfg)
        shown = [r for r in result.rows if r.metric in ("train_step_seconds", "throughput_clips_s")]
        return (
            "; ".join(
                f"{r.label} x{r.ratio:.2f} ({r.ratio_min:.2f}-{r.ratio_max:.2f})"
                + ("" if r.reliable else " unreliable")
                for r in shown
                if r.ratio is not None
            )
            + f" (pruned p = {p} / full)"
        )

    t, figure = _timed(training_step)
    rows.append(Row("full vs pruned", f"wav2vec2 {s.w2v_layers} x {s.hidden}", t, figure))
    return rows


def gpu_tests() -> Row:
    """``pytest -m gpu`` in a subprocess: its summary line."""

    def run() -> str:
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=600,
        )
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit {out.returncode}"

    t, figure = _timed(run)
    return Row("pytest -m gpu", "-", t, figure)


def table(rows: list[Row], device: str) -> str:
    """The rows as a fixed-width table with the machine on top."""
    name = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    lines = [f"device: {name}; torch {torch.__version__}", ""]
    lines.append(f"{'check':28} {'size':24} {'seconds':>8}  figure")
    lines += [f"{r.check:28} {r.size:24} {r.seconds:8.1f}  {r.figure}" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every check and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (a CPU smoke run)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sizes = SMALL if args.small else FULL
    rows = [] if args.small else [gpu_tests()]
    rows += engine_rows(sizes, device)
    with tempfile.TemporaryDirectory() as work:
        rows += model_rows(sizes, device, Path(work))
    print(table(rows, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
