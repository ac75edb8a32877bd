"""Benchmark of ``extract_features`` (cache off) against a bare forward pass; prints figures, asserts nothing.

    python bench/extraction.py                                   # offline Whisper tiny.en + base, trimmed + padded
    python bench/extraction.py --models whisper-tiny.en-offline --modes trimmed --clips 805
    python bench/extraction.py --device cuda --batch-size 128 --clips 805 --padded-clips 805

For each model and Whisper input mode, on the same clips of the bundled sample and the same batches:

- extract: ``extract_features(encoder, selection, cache=False)``, wall time of the whole call (reading the
  audio files, preprocessing, forward with all hidden states, mean pooling, writing the memmap);
- bare: the audio already in memory, per batch ``encoder.preprocess`` + ``encoder.hidden_states`` (the model
  forward with ``output_hidden_states=True``), bf16 autocast on CUDA like the extractor, nothing else.

The ratio extract/bare (clips/s) shows what the extraction pipeline costs on top of the model itself.
Padded Whisper runs the full 30-s window (30x the work), so it uses fewer clips (``--padded-clips``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.audio import load_clips  # noqa: E402
from core.data.features import Selection, extract_features  # noqa: E402
from core.models.encoder import SpeechEncoder  # noqa: E402
from core.models.loading import load_encoder  # noqa: E402


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work so wall times are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_forward(enc: SpeechEncoder, waves: np.ndarray, batch_size: int) -> float:
    """Seconds for preprocess + forward (all hidden states) over ``waves`` in batches, no pooling or I/O."""
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if enc.device.type == "cuda"
        else contextlib.nullcontext()
    )
    _sync(enc.device)
    t0 = time.perf_counter()
    with autocast:
        for i in range(0, len(waves), batch_size):
            states = enc.hidden_states(enc.preprocess(waves[i : i + batch_size]))
            del states
    _sync(enc.device)
    return time.perf_counter() - t0


def run_one(model: str, mode: str, n_clips: int, args: argparse.Namespace) -> dict:
    """Time extract vs bare for one model and input mode on the same clips and batch size."""
    enc = load_encoder(model, whisper_input=mode, device=args.device)
    selection = Selection.of("sample", max_clips=n_clips, seed=0)
    table = selection.table()
    waves, skipped = load_clips(table.abs_paths())
    if skipped:
        print(f"  note: {len(skipped)} clips unreadable, left out of the bare pass")
    enc.pooled(waves[: min(4, len(waves))], batch_size=4)  # warm-up (allocations, kernels)
    _sync(enc.device)
    rows = []
    for _ in range(args.repeat):
        bare_s = bare_forward(enc, waves, args.batch_size)
        t0 = time.perf_counter()
        fs = extract_features(enc, selection, batch_size=args.batch_size, cache=False)
        _sync(enc.device)
        extract_s = time.perf_counter() - t0
        n = fs.features.shape[0]
        rows.append((n / extract_s, len(waves) / bare_s))
    extract_cps = max(r[0] for r in rows)
    bare_cps = max(r[1] for r in rows)
    return {
        "model": model,
        "mode": mode,
        "n": len(waves),
        "extract": extract_cps,
        "bare": bare_cps,
        "ratio": extract_cps / bare_cps,
        "describe": enc.describe(),
    }


def main() -> None:
    """Parse options, run every (model, mode) and print the table."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--models", nargs="+", default=["whisper-tiny.en-offline", "whisper-base-offline"]
    )
    p.add_argument(
        "--modes", nargs="+", choices=("trimmed", "padded"), default=["trimmed", "padded"]
    )
    p.add_argument(
        "--clips", type=int, default=350, help="clips of the sample for trimmed/waveform input"
    )
    p.add_argument(
        "--padded-clips",
        type=int,
        default=35,
        help="clips for padded Whisper (30-s window; >= 35, one per word)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument("--repeat", type=int, default=1, help="repetitions; the best is reported")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {where}, torch threads {torch.get_num_threads()}, batch {args.batch_size}")
    results = []
    for model in args.models:
        for mode in args.modes:
            n = args.padded_clips if mode == "padded" else args.clips
            res = run_one(model, mode, n, args)
            results.append(res)
            print(
                f"  {res['describe']}: extract {res['extract']:.1f} clips/s, bare {res['bare']:.1f} "
                f"clips/s, ratio {res['ratio']:.2f}",
                flush=True,
            )
    print(f"\n{'model':<26}{'input':<9}{'clips':>6}{'extract/s':>11}{'bare/s':>9}{'ratio':>7}")
    for r in results:
        print(
            f"{r['model']:<26}{r['mode']:<9}{r['n']:>6}{r['extract']:>11.1f}{r['bare']:>9.1f}"
            f"{r['ratio']:>7.2f}"
        )


if __name__ == "__main__":
    main()
