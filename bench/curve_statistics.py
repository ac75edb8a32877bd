"""Benchmark of the curve statistics: chance cost vs curve cost (same run), 20 resamples, coverage.

    CONVEXITY_LAB_CACHE=DIR python bench/curve_statistics.py --key 8de56ca1356e      # tiny.en sample
    python bench/curve_statistics.py --key KEY --resamples 20 --seeds 3
    python bench/curve_statistics.py --coverage 150                                    # simulation
    python bench/curve_statistics.py --key KEY --population 150    # the sample as the population

Chance vs curve: the real word and speaker curves alone, with the exact chance mean (their pooled
labellings), and with the whole chance level (mean and K permutations of each label set for the
band), each in one engine call sharing graphs and trees, interleaved ``--repeats`` times at the
dashboard's default precision (target SE 0.005); ratios are of medians from this one run.
Statistics: the whole ``curve_statistics`` call (chance, seeds, half- and quarter-samples of both
label sets), timed by part. Coverage: the simulation of ``tests/test_curve_statistics.py`` with more
datasets, printed as nominal vs achieved per layer. Population: the feature set itself as a finite
population, datasets of a third of it (8 of 24 speakers for words, a third of every speaker's clips
for speakers), coverage with the finite population correction (``core.geometry.calibration``). Prints figures with the load average (the
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
from core.geometry.chance import chance_curves, pooled_labels  # noqa: E402
from core.geometry.convexity import layerwise_convexity  # noqa: E402
from core.geometry.curve_statistics import curve_statistics  # noqa: E402
from core.geometry.options import ConvexityOptions  # noqa: E402
from core.geometry.sampling import DEFAULT_TARGET_SE  # noqa: E402
from core.results.kinds import resample_units  # noqa: E402


def load() -> str:
    return "load avg " + "/".join(f"{v:.1f}" for v in os.getloadavg())


def trees(curves: dict) -> list[int]:
    first = next(iter(curves.values()))
    return [r.settings["n_shortest_path_trees"] for r in first.results]


def chance_vs_curve(x: np.ndarray, labels: dict, k: int, repeats: int) -> None:
    """Median wall time of the curves alone, with the exact chance mean only (the pooled labelling),
    and with the whole chance level (mean and K permuted curves for the band), interleaved."""
    alone, mean_only, joint = [], [], []
    pooled = dict(labels, **{f"{n}@pooled": pooled_labels(v) for n, v in labels.items()})
    layerwise_convexity(
        x[:300], {n: v[:300] for n, v in labels.items()}, ConvexityOptions(target_se=0.05)
    )  # warm
    for _ in range(repeats):
        t = time.perf_counter()
        real = layerwise_convexity(x, labels, ConvexityOptions(k=k, target_se=DEFAULT_TARGET_SE))
        alone.append(time.perf_counter() - t)
        t = time.perf_counter()
        layerwise_convexity(
            x,
            pooled,
            ConvexityOptions(k=k, target_se=DEFAULT_TARGET_SE),
            shared_sources=[n for n in pooled if n not in labels],
        )
        mean_only.append(time.perf_counter() - t)
        t = time.perf_counter()
        both, chance = chance_curves(
            x, labels, ConvexityOptions(k=k, target_se=DEFAULT_TARGET_SE), n_permutations=k_perm
        )
        joint.append(time.perf_counter() - t)
    a, m, j = (float(np.median(v)) for v in (alone, mean_only, joint))
    print(
        f"curves alone (word + speaker): {a:.2f} s; with the exact chance mean: {m:.2f} s, ratio "
        f"{m / a:.2f}x; with mean and {k_perm} permutations each for the band: {j:.2f} s, ratio "
        f"{j / a:.2f}x (medians of {repeats}, interleaved; {load()})"
    )
    print(f"  trees per layer: alone {trees(real)}, with chance {trees(both)}")
    for name, c in chance.items():
        print(
            f"  chance ({name}): "
            + " ".join(f"{m:.4f}±{s:.4f}" for m, s in zip(c.mean, c.std, strict=True))
        )


def statistics(fs, x: np.ndarray, labels: dict, args: argparse.Namespace) -> None:
    """The whole curve_statistics call at the dashboard's default precision, timed by part."""
    units = resample_units(fs, list(labels))
    t = time.perf_counter()
    stats = curve_statistics(
        x,
        labels,
        units,
        ConvexityOptions(k=args.k, target_se=DEFAULT_TARGET_SE),
        n_permutations=k_perm,
        n_resamples=args.resamples,
        n_seeds=args.seeds,
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
    from tests.helpers.simulation import simulate

    for labels, seed in (("word", 5), ("speaker", 7)):
        t = time.perf_counter()
        table = simulate(200, n_datasets, resamples, seed, labels=labels)
        print(
            f"coverage simulation, {labels} labels: {n_datasets} datasets, "
            f"{time.perf_counter() - t:.0f} s ({load()})"
        )
        for row in table.rows():
            print("  " + ", ".join(f"{k} {v}" for k, v in row.items()))


def population_coverage(fs, x: np.ndarray, n_datasets: int, k: int, which: list[str]) -> None:
    """Coverage with the feature set as the population: word and speaker labels, a third per dataset."""
    from core.geometry.calibration import coverage_simulation, units_within, whole_units

    words, speakers = np.array(fs.words), np.array(fs.speakers)
    n_speakers = len(np.unique(speakers))
    per_speaker = int(np.bincount(np.unique(speakers, return_inverse=True)[1]).min())
    schemes = {
        "word": ("speakers as units", whole_units(x, words, speakers, n_speakers // 3)),
        "speaker": (
            "clips within each speaker",
            units_within(x, speakers, speakers, per_speaker // 3),
        ),
    }
    for name in which:
        scheme, draw = schemes[name]
        t = time.perf_counter()
        table = coverage_simulation(
            draw,
            n_truth=200,
            n_datasets=n_datasets,
            n_resamples=16,
            level=0.9,
            seed=11,
            finite_fraction=1 / 3,
            options=ConvexityOptions(k=k, max_pairs_per_class=None),
        )
        print(
            f"population coverage, {name} labels, {scheme}: {n_datasets} datasets of a third "
            f"of the set, {time.perf_counter() - t:.0f} s ({load()})"
        )
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
    ap.add_argument("--population", type=int, default=0, help="datasets from --key (0: skip)")
    ap.add_argument("--population-labels", nargs="+", default=["word", "speaker"])
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
        if args.population:
            population_coverage(fs, x, args.population, args.k, args.population_labels)
    if args.coverage:
        coverage(args.coverage, 16)
