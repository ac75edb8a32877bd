"""Intervals of every kind and the size-matched comparison, measured with the bundled sample as the population.

    python bench/rarefaction.py --key KEY                      # all parts, the sample's tiny.en set
    python bench/rarefaction.py --key KEY --datasets 60 --parts other-speakers

Parts: ``other-speakers`` (speaker labels, speakers drawn: coverage of the "other speakers, half the
count" interval, datasets of a third of the speakers, truth from datasets of half that, with the
finite population correction), ``stability`` (the calibrated prune-point flag's false alarms with
datasets of a third of the speakers, word labels), ``equal-size`` (the whole set against its own
8-voice subsets, raw and at equal size). Prints figures with the load average (docs/benchmarks.md).
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
from core.geometry.calibration import (  # noqa: E402
    SimulatedDataset,
    half_count_coverage,
    stability_simulation,
    whole_units,
)
from core.geometry.convexity import layerwise_convexity  # noqa: E402
from core.geometry.options import ConvexityOptions  # noqa: E402
from core.geometry.rarefaction import (  # noqa: E402
    RarefySize,
    rarefied_curve,
    size_matched_difference,
)
from core.geometry.resampling import ResampleUnits  # noqa: E402


def load() -> str:
    return "load " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def speakers_only(x: np.ndarray, speakers: np.ndarray, n: int):
    """Datasets of ``n`` whole speakers of the set, labelled and resampled by speaker."""
    pool = np.unique(speakers)

    def draw(rng: np.random.Generator) -> SimulatedDataset:
        idx = np.flatnonzero(np.isin(speakers, rng.choice(pool, n, replace=False)))
        return SimulatedDataset(x[idx], speakers[idx], ResampleUnits.of("speaker", speakers[idx]))

    return draw


def other_speakers(x, speakers, args) -> None:
    n_all = len(np.unique(speakers))
    n = max(8, n_all // 3)
    t = time.perf_counter()
    table = half_count_coverage(
        speakers_only(x, speakers, n),
        speakers_only(x, speakers, n // 2),
        n_truth=args.truth,
        n_datasets=args.datasets,
        n_resamples=args.resamples,
        seed=11,
        finite_fraction=n / n_all,
        options=ConvexityOptions(k=args.k, max_pairs_per_class=None),
    )
    print(
        f"other speakers, half the count: datasets of {n} of {n_all} speakers, truth at {n // 2}; "
        f"{args.datasets} datasets, {time.perf_counter() - t:.0f} s ({load()})"
    )
    for row in table.rows():
        print("  " + ", ".join(f"{k} {v}" for k, v in row.items() if "rate" not in k))


def stability(x, words, speakers, args) -> None:
    n_all = len(np.unique(speakers))
    t = time.perf_counter()
    table = stability_simulation(
        whole_units(x, words, speakers, max(8, n_all // 3)),
        n_truth=args.truth,
        n_datasets=args.datasets,
        n_resamples=args.resamples,
        seed=3,
        options=ConvexityOptions(k=args.k, max_pairs_per_class=None),
    )
    print(f"stability flag, word labels: {time.perf_counter() - t:.0f} s ({load()})")
    print(
        f"  truth points {table.truth_points} (modal {table.modal_point}, {table.truth_share:.0%}); "
        f"flag at the modal point {table.flagged_at_mode} of {table.at_mode} "
        f"({table.false_alarm:.0%}); any half-sample moved it in {table.any_move_at_mode}; "
        f"flag off the mode {table.flagged_off_mode} of {table.off_mode}"
    )


def equal_size(x, speakers, args) -> None:
    options = ConvexityOptions(k=args.k, max_pairs_per_class=None)
    n_all = len(np.unique(speakers))
    per = int(np.bincount(np.unique(speakers, return_inverse=True)[1]).min())
    whole = np.asarray(layerwise_convexity(x, {"s": speakers}, options)["s"].scores)
    print(f"speaker convexity of all {n_all} voices (raw): " + " ".join(f"{v:.3f}" for v in whole))
    rng = np.random.default_rng(5)
    size = RarefySize(8, per)
    t = time.perf_counter()
    big = rarefied_curve(x, speakers, size, args.subsets, options, name="all voices at 8", seed=1)
    for j in range(2):
        chosen = rng.choice(np.unique(speakers), 8, replace=False)
        idx = np.flatnonzero(np.isin(speakers, chosen))
        raw = np.asarray(layerwise_convexity(x[idx], {"s": speakers[idx]}, options)["s"].scores)
        small = rarefied_curve(
            x[idx], speakers[idx], RarefySize(4, per), args.subsets, options, name="subset", seed=2
        )
        both = rarefied_curve(
            x, speakers, RarefySize(4, per), args.subsets, options, name="all", seed=2
        )
        d = size_matched_difference(both, small, f"all {n_all} voices", f"8-voice subset {j}")
        print(
            f"  8-voice subset {j}: raw "
            + " ".join(f"{v:.3f}" for v in raw)
            + "; at 4 voices: all "
            + " ".join(f"{v:.3f}" for v in both.score)
            + " vs subset "
            + " ".join(f"{v:.3f}" for v in small.score)
            + f"; {d.verdict}"
        )
    print(
        "  all voices at 8: "
        + " ".join(f"{v:.3f}" for v in big.score)
        + f" ({time.perf_counter() - t:.0f} s, {load()})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", required=True, help="cached features (the sample's tiny.en set)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--truth", type=int, default=100)
    ap.add_argument("--subsets", type=int, default=10)
    ap.add_argument("--resamples", type=int, default=16, help="half-samples per dataset")
    ap.add_argument("--parts", nargs="+", default=["other-speakers", "stability", "equal-size"])
    args = ap.parse_args()
    fs = load_cached_features(args.key)
    x = np.asarray(fs.features)
    words, speakers = np.array(fs.words), np.array(fs.speakers)
    print(f"{fs.key[:10]}: {len(words)} clips, {x.shape[1]} hidden states; k = {args.k}")
    if "other-speakers" in args.parts:
        other_speakers(x, speakers, args)
    if "stability" in args.parts:
        stability(x, words, speakers, args)
    if "equal-size" in args.parts:
        equal_size(x, speakers, args)


if __name__ == "__main__":
    main()
