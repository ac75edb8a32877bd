"""Per-clip diagnostics against the exhaustive convexity curve, side by side in one run; asserts nothing.

    python bench/diagnostics.py                      # synthetic: N = 2,520 (35 x 72), D = 384, 5 layers
    python bench/diagnostics.py --key b52ec8a7cb     # cached features (e.g. the bundled sample)

Each layer: the exhaustive curve's time (``layerwise_convexity``, every tree, word and speaker labels
together) and the diagnostics' time (``diagnose_layer``: the same kNN graph and trees plus path
traffic, purity and components), interleaved so load changes hit both; prints per-layer and total
ratios and the slowest diagnostics step against the curve's time of the same layer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.geometry.convexity import layerwise_convexity  # noqa: E402
from core.geometry.diagnostics import diagnose_layer  # noqa: E402
from core.geometry.options import ConvexityOptions
from core.geometry.synthetic import synthetic_layers  # noqa: E402


def load() -> str:
    """The 1/5/15-minute load averages."""
    return "load avg " + "/".join(f"{v:.1f}" for v in os.getloadavg())


@dataclass(frozen=True)
class Inputs:
    """Features (N, L+1, D), their label sets and what they are."""

    features: np.ndarray
    labels: dict[str, np.ndarray]
    description: str


def inputs(args: argparse.Namespace) -> Inputs:
    """A cached feature set (``--key``) or a synthetic one."""
    if args.key:
        from core.data.features import load_cached_features

        fs = load_cached_features(args.key)
        labels = {"word": np.array(fs.words), "speaker": np.array(fs.speakers)}
        return Inputs(fs.features, labels, f"cached features {fs.key[:10]} ({fs.info.label()})")
    x, y = synthetic_layers(args.n, 35, args.dim, args.layers, seed=0)
    labels = {"word": y, "speaker": np.arange(args.n) % 24}
    return Inputs(x, labels, f"synthetic {args.n} x {args.layers} x {args.dim}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--key", help="cached feature set (default: synthetic)")
    p.add_argument("--n", type=int, default=2520)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args()
    data = inputs(args)
    x, labels, what = data.features, data.labels, data.description
    print(f"{what}; k = {args.k}; {load()}")
    diagnose_layer(x[:200, 0], {n: v[:200] for n, v in labels.items()}, k=args.k)  # compile once
    curve_total = diag_total = 0.0
    worst = (0.0, 0.0, -1)
    print("layer  curve_s  diagnostics_s  ratio  (knn / paths / tables)")
    for i in range(x.shape[1]):
        t0 = time.perf_counter()
        layerwise_convexity(
            x, labels, ConvexityOptions(k=args.k, max_pairs_per_class=None), layers=[i]
        )
        t1 = time.perf_counter()
        tables = diagnose_layer(x[:, i], labels, k=args.k, layer=i)
        t2 = time.perf_counter()
        c, d = t1 - t0, t2 - t1
        curve_total += c
        diag_total += d
        if d / c > worst[0] / max(worst[1], 1e-12):
            worst = (d, c, i)
        tm = next(iter(tables.values())).timings
        print(
            f"{i:>5}  {c:7.2f}  {d:13.2f}  {d / c:5.2f}  "
            f"({tm['knn_s']:.2f} / {tm['paths_s']:.2f} / {tm['tables_s']:.2f})"
        )
    print(
        f"total: curve {curve_total:.1f} s, diagnostics {diag_total:.1f} s, "
        f"ratio {diag_total / curve_total:.2f}; slowest step: layer {worst[2]} "
        f"{worst[0]:.2f} s vs {worst[1]:.2f} s (x{worst[0] / worst[1]:.2f}); {load()}"
    )


if __name__ == "__main__":
    main()
