"""Benchmark of the curve statistics: chance cost vs curve cost (same run), 20 resamples, coverage.

    CONVEXITY_LAB_CACHE=DIR python bench/curve_statistics.py --key 8de56ca1356e      # tiny.en sample
    python bench/curve_statistics.py --key KEY --resamples 20 --seeds 3
    python bench/curve_statistics.py --coverage 150                                    # simulation

Chance vs curve: the real word and speaker curves alone, then the same curves with K permutations
of each label set in one engine call (sharing graphs and trees), interleaved ``--repeats`` times at
the dashboard's default precision (target SE 0.005); the ratio is of medians from this one run.
Statistics: the whole ``curve_statistics`` call (chance, seeds, half- and quarter-samples of both
label sets), timed by part. Coverage: the simulation of ``tests/test_curve_statistics.py`` with more
datasets, printed as nominal vs achieved per layer. Prints figures with the load average (the
machine is shared); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.features import load_cached_features  # noqa: E402
from core.geometry.chance import chance_curves  # noqa: E402
from core.geometry.convexity import layerwise_convexity  # noqa: E402
from core.geometry.curve_statistics import curve_statistics  # noqa: E402
from core.geometry.sampling import DEFAULT_TARGET_SE  # noqa: E402
from core.results.kinds import resample_units  # noqa: E402


def load() -> str:
    return "load avg " + "/".join(f"{v:.1f}" for v in os.getloadavg())


def trees(curves: dict) -> list[int]:
    first = next(iter(curves.values()))
    return [r.settings["n_shortest_path_trees"] for r in first.results]


def chance_vs_curve(x: np.ndarray, labels: dict, k: int, repeats: int) -> None:
    """Median wall time of the curves alone and with chance, interleaved, and their ratio."""
    alone, joint = [], []
    layerwise_convexity(x[:300], {n: v[:300] for n, v in labels.items()}, target_se=0.05)  # warm
    for _ in range(repeats):
        t = time.perf_counter()
        real = layerwise_convexity(x, labels, k=k, target_se=DEFAULT_TARGET_SE)
        alone.append(time.perf_counter() - t)
        t = time.perf_counter()
        both, chance = chance_curves(
            x, labels, n_permutations=k_perm, k=k, target_se=DEFAULT_TARGET_SE
        )
        joint.append(time.perf_counter() - t)
    a, j = float(np.median(alone)), float(np.median(joint))
    print(
        f"curves alone (word + speaker): {a:.1f} s; with {k_perm} permutations each in the same "
        f"call: {j:.1f} s; ratio {j / a:.2f}x (medians of {repeats}, interleaved; {load()})"
    )
    print(f"  trees per layer: alone {trees(real)}, with chance {trees(both)}")
    for name, c in chance.items():
        print(
            f"  chance ({name}): "
            + " ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(c.mean, c.std, strict=True))
        )


def statistics(fs, x: np.ndarray, labels: dict, args: argparse.Namespace) -> None:
    """The whole curve_statistics call at the dashboard's default precision, timed by part."""
    units = resample_units(fs, list(labels))
    t = time.perf_counter()
    stats = curve_statistics(
        x,
        labels,
        units,
        n_permutations=k_perm,
        n_resamples=args.resamples,
        n_seeds=args.seeds,
        k=args.k,
        target_se=DEFAULT_TARGET_SE,
    )
    total = time.perf_counter() - t
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in stats.seconds.items() if k != "total")
    print(
        f"curve statistics, both label sets, {args.resamples} resamples, {k_perm} permutations, "
        f"{args.seeds} seeds: {total:.1f} s ({parts}; {load()})"
    )
    for s in stats.ordered():
        iv = s.interval
        print(f"  {s.label_set}: {iv.scheme}")
        for i, layer in enumerate(s.layers):
            print(
                f"    layer {layer}: {s.scores[i]:.4f}  design SE {s.sems[i]:.4f}  population SE "
                f"{iv.se[i]:.4f} (rate {iv.rate[i]:.2f})  interval {iv.low[i]:.4f}..{iv.high[i]:.4f}"
                f"  chance {s.chance.mean[i]:.4f}±{s.chance.std[i]:.4f}"
            )
        for rule in (s.stability.threshold, s.stability.local_peak):
            print(
                f"    {rule.rule}: p = {rule.point} (margin {rule.margin:+.4f}); {rule.summary()}; "
                + ("stable" if rule.stable else "MOVES")
            )


def coverage(n_datasets: int, resamples: int) -> None:
    """The simulation: nominal vs achieved coverage per layer."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.test_curve_statistics import _simulate

    t = time.perf_counter()
    table = _simulate(n_truth=200, n_datasets=n_datasets, n_resamples=resamples, seed=5)
    print(f"coverage simulation: {n_datasets} datasets, {time.perf_counter() - t:.0f} s ({load()})")
    for row in table.rows():
        print("  " + ", ".join(f"{k} {v}" for k, v in row.items()))


k_perm = 10

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", help="cached features (e.g. the bundled sample's tiny.en set)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--permutations", type=int, default=10)
    ap.add_argument("--resamples", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-chance-ratio", action="store_true")
    ap.add_argument("--skip-statistics", action="store_true")
    ap.add_argument("--coverage", type=int, default=0, help="simulated datasets (0: skip)")
    args = ap.parse_args()
    k_perm = args.permutations
    if args.key:
        fs = load_cached_features(args.key)
        x = np.asarray(fs.features)
        labels = {"word": list(fs.words), "speaker": list(fs.speakers)}
        print(f"{fs.meta.get('model_key')}: {x.shape[0]} clips, {x.shape[1]} hidden states")
        if not args.skip_chance_ratio:
            chance_vs_curve(x, labels, args.k, args.repeats)
        if not args.skip_statistics:
            statistics(fs, x, labels, args)
    if args.coverage:
        coverage(args.coverage, 16)
