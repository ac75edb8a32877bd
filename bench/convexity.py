"""Benchmark of the graph-convexity engine on synthetic layered features; prints figures, asserts nothing.

    python bench/convexity.py                       # N = 10,990 (35 x 314), D = 768, 13 layers, k = 10
    python bench/convexity.py --check 2000          # + deviation from exhaustive on a 2,000-point subset
    python bench/convexity.py --baseline            # + a straightforward scipy/sklearn pipeline, same run
    python bench/convexity.py --n 100000 --device cuda

The baseline is what one writes without this engine: exact kNN from scikit-learn, scipy's Dijkstra with
predecessors from the same sampled sources, and a Python walk along each path (zero-weight edges dropped,
as in the authors' code). It runs on one layer, and the ratio is reported against the engine's time for it.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.geometry.convexity import graph_convexity, layerwise_convexity  # noqa: E402
from core.geometry.synthetic import synthetic_layers  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def iid_pairs_sem(result, pairs: int) -> float:
    """Standard error that sampling ``pairs`` uniform pairs per class would have (from exhaustive spread)."""
    total = 0.0
    for cls in result.per_class.values():
        population = cls.n_pairs
        p = min(pairs, population)
        total += cls.pair_std**2 / p * (1 - p / population) if population > 1 else 0.0
    return math.sqrt(total) / len(result.per_class)


def run_engine(args: argparse.Namespace, features: np.ndarray, labels: np.ndarray):
    """Run the engine over all layers, printing per-layer timings."""
    start = time.perf_counter()

    def heartbeat(done: int, total: int) -> None:
        print(f"  ... {done}/{total} layers, {time.perf_counter() - start:.1f} s", flush=True)

    curve = layerwise_convexity(
        features,
        labels,
        k=args.k,
        max_pairs_per_class=args.pairs,
        seed=args.seed,
        device=args.device,
        engine=args.engine,
        match_pair_precision=not args.first_stage_only,
        progress=heartbeat,
    )
    total = time.perf_counter() - start
    print(
        f"{'layer':>5} {'score':>8} {'sem':>8} {'trees':>6} {'knn s':>7} {'paths s':>8} {'total s':>8}"
    )
    for layer, res in zip(curve.layers, curve.results, strict=True):
        t = res.timings
        trees = res.settings["n_shortest_path_trees"]
        print(
            f"{layer:5d} {res.score:8.4f} {res.sem:8.4f} {trees:6d} {t['knn_s']:7.2f} {t['paths_s']:8.2f} "
            f"{t['knn_s'] + t['paths_s']:8.2f}"
        )
    settings = curve.results[0].settings
    print(
        f"total {total:.2f} s for {len(curve.layers)} layers ({total / len(curve.layers):.2f} s/layer), "
        f"engine={settings['engine']} device={settings['device']} trees(layer 0)={settings['n_shortest_path_trees']} "
        f"estimator: {settings['estimator']}"
    )
    return curve, total


def check_against_exhaustive(args, features, labels) -> None:
    """Exhaustive vs sampled on a class-stratified subset: deviation in standard errors, SE vs iid pairs."""
    rng = np.random.default_rng(args.seed + 1)
    subset = np.sort(rng.choice(len(labels), size=min(args.check, len(labels)), replace=False))
    # keep the full problem's sampling fraction, so the subset's estimator is as sparse as the real one
    full, part = len(labels) / args.classes, len(subset) / args.classes
    pairs = max(2, round(args.pairs * part * (part - 1) / (full * (full - 1))))
    print(
        f"\ncheck on {len(subset)} points: exhaustive vs {pairs} pairs/class "
        f"(the same sampled fraction as {args.pairs} pairs of the full classes)"
    )
    print(
        f"{'layer':>5} {'exact':>8} {'sampled':>8} {'sem':>8} {'|dev|/sem':>9} {'iid sem':>8} "
        f"{'sem ratio':>9}"
    )
    for layer in range(features.shape[1]):
        x = features[subset, layer]
        exact = graph_convexity(
            x,
            labels[subset],
            k=args.k,
            max_pairs_per_class=None,
            device=args.device,
            engine=args.engine,
        )
        sampled = graph_convexity(
            x,
            labels[subset],
            k=args.k,
            max_pairs_per_class=pairs,
            seed=args.seed,
            device=args.device,
            engine=args.engine,
        )
        iid = iid_pairs_sem(exact, pairs)
        dev = abs(sampled.score - exact.score) / sampled.sem if sampled.sem > 0 else 0.0
        ratio = sampled.sem / iid if iid > 0 else float("nan")
        print(
            f"{layer:5d} {exact.score:8.4f} {sampled.score:8.4f} {sampled.sem:8.4f} {dev:9.2f} "
            f"{iid:8.4f} {ratio:9.2f}"
        )


def baseline_one_layer(x: np.ndarray, labels: np.ndarray, k: int, pairs: int, seed: int) -> float:
    """A straightforward implementation (sklearn kNN + scipy Dijkstra + Python path walk); returns score."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    dist, idx = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x)
    rows = np.repeat(np.arange(n), k)
    graph = csr_matrix((dist[:, 1:].ravel(), (rows, idx[:, 1:].ravel())), shape=(n, n))
    graph = graph.maximum(graph.T)
    rng = np.random.default_rng(seed)
    class_scores = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        all_pairs = [(s, t) for s in members for t in members if s != t]
        chosen = rng.choice(len(all_pairs), size=min(pairs, len(all_pairs)), replace=False)
        chosen_pairs = [all_pairs[i] for i in chosen]
        sources = sorted({s for s, _ in chosen_pairs})
        _, pred = dijkstra(graph, indices=sources, return_predecessors=True)
        row_of = {s: i for i, s in enumerate(sources)}
        scores = []
        for s, t in chosen_pairs:
            p = pred[row_of[s]]
            if p[t] < 0:
                scores.append(0.0)
                continue
            interior, v = [], p[t]
            while v != s:
                interior.append(v)
                v = p[v]
            scores.append(np.mean(labels[interior] == c) if interior else 1.0)
        class_scores.append(np.mean(scores))
    return float(np.mean(class_scores))


def main() -> None:
    """Parse arguments, run the benchmark, print figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10990, help="points (default 10,990 = 35 x 314)")
    parser.add_argument("--classes", type=int, default=35)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=5000, help="pair budget per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--engine", default="auto", choices=["auto", "numba", "torch"])
    parser.add_argument(
        "--check", type=int, default=0, help="also compare with exhaustive on this many points"
    )
    parser.add_argument(
        "--baseline", action="store_true", help="also time a straightforward pipeline"
    )
    parser.add_argument(
        "--first-stage-only",
        action="store_true",
        help="skip the second sampling stage (faster, larger standard error)",
    )
    args = parser.parse_args()

    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"cuda {'yes: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no'}"
    )
    features, labels = synthetic_layers(args.n, args.classes, args.dim, args.layers, args.seed)
    print(
        f"data: N={args.n} classes={args.classes} D={args.dim} layers={args.layers} k={args.k} "
        f"({features.nbytes / 2**20:.0f} MB of features); RSS before: {peak_rss_mb():.0f} MB"
    )
    warm = graph_convexity(
        features[:200, 0], labels[:200], k=args.k, device=args.device, engine=args.engine
    )  # compiles kernels / initialises CUDA
    del warm
    curve, total = run_engine(args, features, labels)
    print(
        f"peak RSS {peak_rss_mb():.0f} MB (features themselves: {features.nbytes / 2**20:.0f} MB)"
    )
    if torch.cuda.is_available() and curve.results[0].settings["device"].startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if args.baseline:
        layer = int(np.argmax(curve.scores))
        start = time.perf_counter()
        base = baseline_one_layer(features[:, layer], labels, args.k, args.pairs, args.seed)
        base_s = time.perf_counter() - start
        res = curve.results[layer]
        ours = res.timings["knn_s"] + res.timings["paths_s"]
        print(
            f"\nbaseline on layer {layer}: {base_s:.1f} s, score {base:.4f} "
            f"(engine: {ours:.2f} s, score {res.score:.4f} +- {res.sem:.4f}); "
            f"speed-up x{base_s / ours:.1f}"
        )
    if args.check:
        check_against_exhaustive(args, features, labels)


if __name__ == "__main__":
    main()
