"""Benchmark of the graph-convexity engine on synthetic layered features; prints figures, asserts nothing.

    python bench/convexity.py                       # N = 10,990 (35 x 314), D = 768, 13 layers, k = 10
    python bench/convexity.py --check 2000          # + deviation from exhaustive on a 2,000-point subset
    python bench/convexity.py --baseline            # + a straightforward scipy/sklearn pipeline, same run
    python bench/convexity.py --target-se 0.005        # precision as the knob (dashboard default)
    python bench/convexity.py --trees                  # + per-tree time of our kernel vs scipy's Dijkstra
    python bench/convexity.py --knn-only --n 44000     # kNN phase vs a bare float32 matrix product
    python bench/convexity.py --n 100000 --device cuda

The baseline re-implements the authors' teaching pipeline: approximate kNN (pynndescent) into a dense
N x N matrix (0 = no edge, as theirs), scipy's all-pairs Dijkstra with predecessors, 5,000 uniformly
sampled ordered pairs per class and a Python walk along each path. It runs on one layer (the median
one); its 13-layer figure is that time x layers, compared with the engine's measured total.
Every figure is printed with the load average: the machine is shared, so rely on same-run ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.geometry.convexity import convexity_curve, graph_convexity  # noqa: E402
from core.geometry.options import ConvexityOptions
from core.geometry.synthetic import synthetic_layers  # noqa: E402


def load() -> str:
    """The 1/5/15-minute load averages, to print beside every figure."""
    return "load avg " + "/".join(f"{v:.1f}" for v in os.getloadavg())


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

    curve = convexity_curve(
        features,
        labels,
        ConvexityOptions(
            k=args.k,
            max_pairs_per_class=args.pairs,
            seed=args.seed,
            device=args.device,
            engine=args.engine,
            match_pair_precision=not args.first_stage_only,
            target_se=args.target_se,
        ),
        progress=heartbeat,
    )
    total = time.perf_counter() - start
    print(
        f"{'layer':>5} {'score':>8} {'sem':>8} {'exact':>5} {'trees':>6} {'knn s':>7} {'paths s':>8} "
        f"{'total s':>8}"
    )
    for layer, res in zip(curve.layers, curve.results, strict=True):
        t = res.timings
        trees = res.settings["n_shortest_path_trees"]
        print(
            f"{layer:5d} {res.score:8.4f} {res.sem:8.4f} {res.exact!s:>5} {trees:6d} {t['knn_s']:7.2f} "
            f"{t['paths_s']:8.2f} "
            f"{t['knn_s'] + t['paths_s']:8.2f}"
        )
    settings = curve.results[0].settings
    print(
        f"total {total:.2f} s for {len(curve.layers)} layers ({total / len(curve.layers):.2f} s/layer), "
        f"engine={settings['engine']} device={settings['device']} trees(layer 0)={settings['n_shortest_path_trees']} "
        f"estimator: {settings['estimator']}; mean trees/layer "
        f"{np.mean([r.settings['n_shortest_path_trees'] for r in curve.results]):.0f}; "
        f"layer SE mean {curve.sems.mean():.5f} max {curve.sems.max():.5f}; {load()}"
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
            ConvexityOptions(
                k=args.k, max_pairs_per_class=None, device=args.device, engine=args.engine
            ),
        )
        sampled = graph_convexity(
            x,
            labels[subset],
            ConvexityOptions(
                k=args.k,
                max_pairs_per_class=pairs,
                seed=args.seed,
                device=args.device,
                engine=args.engine,
            ),
        )
        iid = iid_pairs_sem(exact, pairs)
        dev = abs(sampled.score - exact.score) / sampled.sem if sampled.sem > 0 else 0.0
        ratio = sampled.sem / iid if iid > 0 else float("nan")
        print(
            f"{layer:5d} {exact.score:8.4f} {sampled.score:8.4f} {sampled.sem:8.4f} {dev:9.2f} "
            f"{iid:8.4f} {ratio:9.2f}"
        )


def baseline_one_layer(x: np.ndarray, labels: np.ndarray, k: int, pairs: int, seed: int) -> float:
    """The authors' teaching pipeline on one layer (pynndescent, dense matrix, all-pairs Dijkstra)."""
    from pynndescent import NNDescent
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    n = len(x)
    idx, dist = NNDescent(x, n_neighbors=k + 1, random_state=seed).neighbor_graph
    dense = np.zeros((n, n))
    rows = np.repeat(np.arange(n), k)
    dense[rows, idx[:, 1:].ravel()] = dist[:, 1:].ravel()  # a stored 0 means "no edge", as theirs
    dense = np.maximum(dense, dense.T)
    _, pred = shortest_path(csr_matrix(dense), method="D", return_predecessors=True)
    del dense
    rng = np.random.default_rng(seed)
    class_scores = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        m = len(members)
        flat = rng.choice(m * m, size=min(pairs, m * (m - 1)) + m, replace=False)
        flat = flat[flat // m != flat % m][:pairs]  # ordered pairs of distinct members
        scores = []
        for s, t in zip(members[flat // m], members[flat % m], strict=True):
            if pred[s, t] < 0:
                scores.append(0.0)
                continue
            interior, v = [], pred[s, t]
            while v != s:
                interior.append(v)
                v = pred[s, v]
            scores.append(np.mean(labels[interior] == c) if interior else 1.0)
        class_scores.append(np.mean(scores))
    return float(np.mean(class_scores))


def per_tree_times(x: np.ndarray, labels: np.ndarray, k: int, n_sources: int, reps: int = 3):
    """Seconds per shortest-path tree: our kernel (all cores, scoring) vs scipy's Dijkstra, interleaved."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    from core.geometry.knn import knn_graph
    from core.geometry.shortest_paths import scores_numba

    csr = knn_graph(torch.from_numpy(x), k).csr()
    indptr, nbr, w = csr.indptr, csr.indices, csr.weights
    n = len(labels)
    graph = csr_matrix((w, nbr, indptr), shape=(n, n))
    sources = np.random.default_rng(0).choice(n, size=n_sources, replace=False)
    codes = labels[None].astype(np.int32)
    active = np.ones((n_sources, 1), dtype=bool)
    scores_numba(indptr, nbr, w, sources[:4], codes, active[:4])  # compile
    ours, theirs = [], []
    for _ in range(reps):
        t = time.perf_counter()
        scores_numba(indptr, nbr, w, sources, codes, active)
        ours.append((time.perf_counter() - t) / n_sources)
        t = time.perf_counter()
        dijkstra(graph, indices=sources, return_predecessors=True)
        theirs.append((time.perf_counter() - t) / n_sources)
    return float(np.median(ours)), float(np.median(theirs))


def knn_vs_gemm(n: int, dim: int, k: int, reps: int) -> None:
    """The kNN phase against a bare float32 product of the same size (same row blocks), interleaved."""
    from core.geometry.knn import default_block_size, knn_graph

    x = torch.from_numpy(np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32))
    block = default_block_size(n, x.device)
    out = torch.empty((block, n))

    def gemm() -> None:
        xt = x.T.contiguous()
        for start in range(0, n, block):
            stop = min(n, start + block)
            torch.mm(x[start:stop], xt, out=out[: stop - start])

    knn_t, gemm_t = [], []
    for _ in range(reps):
        t = time.perf_counter()
        gemm()
        gemm_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        knn_graph(x, k)
        knn_t.append(time.perf_counter() - t)
    kt, gt = float(np.median(knn_t)), float(np.median(gemm_t))
    print(
        f"kNN N={n} D={dim} k={k}: {kt:.2f} s; bare float32 product {gt:.2f} s; ratio x{kt / gt:.2f} "
        f"(medians of {reps}, interleaved; {load()})"
    )


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
        "--target-se", type=float, default=None, help="standard error target of each layer score"
    )
    parser.add_argument("--trees", action="store_true", help="per-tree time vs scipy's Dijkstra")
    parser.add_argument("--knn-only", action="store_true", help="only kNN vs a bare matrix product")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of side-by-side timings")
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
    if args.knn_only:
        knn_vs_gemm(args.n, args.dim, args.k, args.reps)
        return
    features, labels = synthetic_layers(args.n, args.classes, args.dim, args.layers, args.seed)
    print(
        f"data: N={args.n} classes={args.classes} D={args.dim} layers={args.layers} k={args.k} "
        f"({features.nbytes / 2**20:.0f} MB of features); RSS before: {peak_rss_mb():.0f} MB"
    )
    warm = graph_convexity(
        features[:200, 0],
        labels[:200],
        ConvexityOptions(k=args.k, device=args.device, engine=args.engine),
    )  # compiles kernels / initialises CUDA
    del warm
    curve, total = run_engine(args, features, labels)
    print(
        f"peak RSS {peak_rss_mb():.0f} MB (features themselves: {features.nbytes / 2**20:.0f} MB)"
    )
    if torch.cuda.is_available() and curve.results[0].settings["device"].startswith("cuda"):
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    if args.trees:
        layer = args.layers // 2
        ours, theirs = per_tree_times(features[:, layer], labels, args.k, 400, args.reps)
        print(
            f"\nper tree (layer {layer}, 400 sources, medians of {args.reps}): ours {ours * 1e3:.2f} ms "
            f"(all cores, scoring, early exit) vs scipy Dijkstra {theirs * 1e3:.2f} ms; "
            f"ratio x{ours / theirs:.2f}; {load()}"
        )
    if args.baseline:
        layer = args.layers // 2
        baseline_one_layer(
            features[:300, layer], labels[:300], args.k, 50, args.seed
        )  # JIT warm-up
        start = time.perf_counter()
        base = baseline_one_layer(features[:, layer], labels, args.k, args.pairs, args.seed)
        base_s = time.perf_counter() - start
        res = curve.results[layer]
        print(
            f"\nteaching pipeline on layer {layer}: {base_s:.1f} s, score {base:.4f} "
            f"(engine: score {res.score:.4f} +- {res.sem:.4f}); x{args.layers} layers = "
            f"{base_s * args.layers:.0f} s vs engine {total:.1f} s: speed-up "
            f"x{base_s * args.layers / total:.1f}; peak RSS {peak_rss_mb():.0f} MB; {load()}"
        )
    if args.check:
        check_against_exhaustive(args, features, labels)


if __name__ == "__main__":
    main()
