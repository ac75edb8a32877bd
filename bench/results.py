"""Reopening a stored convexity curve vs computing it, same process, same data; prints figures, asserts nothing.

    python bench/results.py                   # N = 10,990 (35 x 314), D = 768, 13 layers, k = 10, word labels
    python bench/results.py --pilot           # the engine's fast pilot-only setting (shorter compute)
    python bench/results.py --n 2000          # smaller, for a quick look

Speech-Commands-sized synthetic features (core/geometry/synthetic.py). "compute" is the engine through
the store on a miss (engine + write); "reopen" is the same call on a hit (read entry.json, check its
checksum, rebuild the curve objects), median of repeats. The store lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_990)
    parser.add_argument("--classes", type=int, default=35)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument(
        "--pilot", action="store_true", help="match_pair_precision=False (pilot sample only)"
    )
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ["CONVEXITY_LAB_CACHE"] = tempfile.mkdtemp(prefix="bench-results-")

    from core.geometry.options import ConvexityOptions
    from core.geometry.synthetic import synthetic_layers
    from core.results.kinds import convexity_entry, decode_curves
    from core.results.store import results_root

    x, y = synthetic_layers(args.n, args.classes, args.dim, args.layers, seed=0)
    labels = {"word": [f"w{c}" for c in y]}
    meta = {
        "key": f"bench-{args.n}-{args.layers}",
        "model_key": "synthetic",
        "dataset": "synthetic",
        "n_clips": args.n,
        "n_layers": args.layers - 1,
    }
    fs = SimpleNamespace(features=x, meta=meta, key=meta["key"])
    options = ConvexityOptions(match_pair_precision=not args.pilot, device="cpu")

    def call() -> tuple[object, bool]:
        entry, hit = convexity_entry(fs, labels, options)
        return decode_curves(entry.data), hit

    load = os.getloadavg()
    t0 = time.perf_counter()
    curves, hit = call()
    compute_s = time.perf_counter() - t0
    assert not hit
    reopen = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        again, hit = call()
        reopen.append(time.perf_counter() - t0)
        assert hit
    reopen_s = statistics.median(reopen)
    size = sum(p.stat().st_size for p in results_root().rglob("*") if p.is_file())
    mode = "pilot only" if args.pilot else "precision of 5,000 uniform pairs per class"
    print(
        f"features: N={args.n} ({args.classes} classes), {args.layers} hidden states, D={args.dim}; k=10, {mode}"
    )
    print(
        f"torch threads: {__import__('torch').get_num_threads()}; load average before: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: {os.getloadavg()[0]:.2f}"
    )
    print(f"compute (engine + store write): {compute_s:8.2f} s")
    print(
        f"reopen from the store (median of {args.repeats}): {reopen_s * 1000:8.1f} ms  "
        f"(range {min(reopen) * 1000:.1f}-{max(reopen) * 1000:.1f} ms)"
    )
    print(
        f"ratio compute / reopen: {compute_s / reopen_s:,.0f}x; entry on disk: {size / 1024:.0f} KiB"
    )
    print(f"word convexity by layer: {' '.join(f'{s:.3f}' for s in again['word'].scores)}")


if __name__ == "__main__":
    main()
