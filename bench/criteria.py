"""Benchmark of the layer-selection criteria against the convexity engine, same run; prints, asserts nothing.

    python bench/criteria.py                  # N = 10,990 (35 x 314), D = 768, 13 layers, k = 10
    python bench/criteria.py --pca 256        # linear probe with a per-fold PCA to 256 dims
    python bench/criteria.py --n 2000 --fresh # small run; also time the graph criteria building graphs

Convexity runs first (``match_pair_precision=False``) and hands its kNN graphs to the graph criteria
through ``on_graph``; each criterion's seconds are printed with its ratio to the convexity time.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.geometry.convexity import convexity_curve  # noqa: E402
from core.geometry.criteria import (  # noqa: E402
    CRITERIA,
    GraphCollector,
    compare_prune_points,
    run_criteria,
)
from core.geometry.options import ConvexityOptions
from core.geometry.synthetic import synthetic_layers  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run convexity and every criterion on synthetic layers and print timings and prune points."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_990)
    parser.add_argument("--classes", type=int, default=35)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--pca", type=int, default=None, help="linear-probe PCA dims (default off)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--fresh", action="store_true", help="also time graph criteria from scratch"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"N={args.n} D={args.dim} layers={args.layers} classes={args.classes} k={args.k} "
        f"torch threads={torch.get_num_threads()}",
        flush=True,
    )
    t = time.perf_counter()
    feats, labels = synthetic_layers(args.n, args.classes, args.dim, args.layers, seed=args.seed)
    print(f"synthetic features: {time.perf_counter() - t:.1f} s", flush=True)

    graphs = GraphCollector()
    t = time.perf_counter()
    curve = convexity_curve(
        feats,
        labels,
        ConvexityOptions(
            k=args.k, max_pairs_per_class=args.pairs, seed=args.seed, match_pair_precision=False
        ),
        on_graph=graphs,
    )
    conv_s = time.perf_counter() - t
    knn_s = sum(r.timings["knn_s"] for r in curve.results)
    print(f"convexity (13 layers, graphs collected): {conv_s:.1f} s (kNN graphs {knn_s:.1f} s)")

    options = {"linear_probe": {"n_splits": args.folds, "pca_dims": args.pca, "seed": args.seed}}
    results = {}
    for name in CRITERIA:
        res = run_criteria(feats, labels, names=[name], graphs=graphs, k=args.k, options=options)
        results[name] = res[name]
        print(
            f"  {name:<17} {res[name].seconds:8.2f} s  ratio to convexity {res[name].seconds / conv_s:6.3f}",
            flush=True,
        )
    total = sum(r.seconds for r in results.values())
    print(f"all criteria {total:.1f} s = {total / conv_s:.2f} x convexity {conv_s:.1f} s")
    probe = results["linear_probe"]
    print(
        f"linear probe: {probe.details['unconverged_fits']} unconverged fits, "
        f"pca_dims={probe.settings['pca_dims']}, per layer "
        + " ".join(f"{s:.1f}" for s in probe.details["layer_seconds"])
    )

    if args.fresh:
        for name in ("knn_accuracy", "mutual_knn"):
            t = time.perf_counter()
            run_criteria(feats, labels, names=[name], k=args.k)
            print(f"  {name} building its own graphs: {time.perf_counter() - t:.1f} s")

    np.set_printoptions(precision=3, suppress=True, linewidth=140)
    print("convexity      ", curve.scores)
    for name in ("linear_probe", "knn_accuracy", "block_influence"):
        print(f"{name:<15}", results[name].values)
    print("cka with last  ", results["linear_cka"].values[-1])
    print("mutual kNN last", results["mutual_knn"].values[-1])
    print("prune points:")
    for row in compare_prune_points(results, convexity_curve=curve):
        print(f"  {row['criterion']:<17} p={row['layer']:<3} {row['parameters']}")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
