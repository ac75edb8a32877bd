"""Coverage by rate regime of the product's population interval and of the alternatives measured
against it, on the synthetic speaker populations of the coverage tests.

    python bench/rate_regimes.py                              # words, 16 speakers, 150 datasets
    python bench/rate_regimes.py --labels speaker --seed 7    # clips within each speaker
    python bench/rate_regimes.py --speakers 24 --seed 22 --resamples 64

Each drawn dataset is scored whole, on ``--resamples`` half-samples with a nested quarter each (the
product's design, ``core.geometry.resampling``), and on a delete-a-group jackknife (words: one
speaker left out at a time; speaker labels: ``--groups`` stratified groups of clips). The truth is
the mean score over ``--truth`` other datasets. A rule's coverage is printed per layer and per rate
regime (the layer's own half/quarter rate, ``core.geometry.calibration.REGIMES``). The rules:

- ``product``: the layer's own rate, guarded (``population_se``);
- ``prior``: the rate integrated over a uniform prior on [0.5, 2.5], the scale taken from the half-
  and quarter-sample variances jointly (log-normal, with their degrees of freedom and kurtosis);
- ``jackknife``: the delete-a-group jackknife variance (Efron-Stein: an upper bound);
- ``jackknife / 2``: the same, halved (graph convexity is dominated by pair terms);
- ``product, jackknife / 2 where steep``: the product's, but the halved jackknife's where the
  layer's own rate is >= 2 (the regime that under-covers).

The alternatives live here only: none held every layer and every regime within 85-95 % (see
docs/reading-plots.md). Prints figures with the load average (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.geometry.calibration import REGIMES, SimulatedDataset, regime  # noqa: E402
from core.geometry.convexity import layerwise_convexity  # noqa: E402
from core.geometry.resampling import nested_samples, population_se  # noqa: E402
from tests.helpers.simulation import (  # noqa: E402
    OPTIONS,
    coverage_draw,
    coverage_population,
    one_thread,
)


@dataclass(frozen=True)
class Scored:
    """One dataset's scores: whole (layers), half- and quarter-samples (B, layers), jackknife
    replicates (G, layers)."""

    full: np.ndarray
    halves: np.ndarray
    quarters: np.ndarray
    jackknife: np.ndarray
    n_units: int


def jackknife_groups(d: SimulatedDataset, groups: int, seed: int) -> list[np.ndarray]:
    """Point indices left out by each jackknife replicate: one unit (speaker) at a time, or, where
    clips are halved within each speaker, ``groups`` stratified groups of clips."""
    if d.units.strata is None:
        return [np.flatnonzero(d.units.units == u) for u in np.unique(d.units.units)]
    rng = np.random.default_rng([seed, 99])
    g = np.empty(len(d.labels), dtype=int)
    for s in np.unique(d.units.strata):
        idx = rng.permutation(np.flatnonzero(d.units.strata == s))
        g[idx] = np.arange(len(idx)) % groups
    return [np.flatnonzero(g == j) for j in range(groups)]


def scored(
    d: SimulatedDataset,
    leave_out: list[np.ndarray],
    score: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_resamples: int,
    seed: int,
) -> Scored:
    """The whole, sub-sample and jackknife scores of one dataset."""
    x, y = d.features, d.labels
    pairs = nested_samples(d.units, n_resamples, seed)
    everyone = np.arange(len(y))
    keep = [np.setdiff1d(everyone, out) for out in leave_out]
    return Scored(
        full=score(x, y),
        halves=np.array([score(x[h], y[h]) for h, _ in pairs]),
        quarters=np.array([score(x[q], y[q]) for _, q in pairs]),
        jackknife=np.array([score(x[k], y[k]) for k in keep]),
        n_units=d.units.n_units,
    )


def t_half(se: np.ndarray, dof: int, level: float) -> np.ndarray:
    """Half-width of a t interval."""
    return stats.t.ppf(0.5 + level / 2, dof) * se


def product_rule(s: Scored, level: float) -> np.ndarray:
    """The product's interval half-width."""
    se = np.asarray(population_se(s.halves, s.quarters).se)
    return t_half(se, max(1, min(len(s.halves), s.n_units) - 1), level)


def jackknife_var(s: Scored) -> np.ndarray:
    """Delete-a-group jackknife variance per layer."""
    g = len(s.jackknife)
    return (g - 1) / g * ((s.jackknife - s.jackknife.mean(axis=0)) ** 2).sum(axis=0)


def log_noise(values: np.ndarray, dof: int) -> float:
    """Variance of the log of a sample variance: 2 / dof, plus the excess kurtosis over B, plus 0.1
    for the dataset's own spread (the best of the settings tried)."""
    kurt = stats.kurtosis(values, bias=False) if np.std(values) > 0 else 0.0
    return 2.0 / dof + max(float(kurt), 0.0) / len(values) + 0.1


def prior_rule(s: Scored, level: float, lo: float = 0.5, hi: float = 2.5) -> np.ndarray:
    """Half-width with the rate integrated over a uniform prior on [lo, hi]."""
    dof = max(1, min(len(s.halves), s.n_units) - 1)
    rates = np.linspace(lo, hi, 31)
    z = np.linspace(-4, 4, 41)
    wz = stats.norm.pdf(z) / stats.norm.pdf(z).sum()
    out = []
    for layer in range(s.halves.shape[1]):
        vh, vq = s.halves[:, layer].var(ddof=1), s.quarters[:, layer].var(ddof=1)
        if vh <= 0 and vq <= 0:
            out.append(0.0)
            continue
        nh, nq = log_noise(s.halves[:, layer], dof), log_noise(s.quarters[:, layer], dof)
        c = 0.3 * np.sqrt(nh * nq)
        mh = np.log(max(vh, 1e-30)) - np.log(2**rates - 1) + 1 / dof
        mq = np.log(max(vq, 1e-30)) - np.log(4**rates - 1) + 1 / dof
        wh = (nq - c) / (nh + nq - 2 * c)
        centre = wh * mh + (1 - wh) * mq
        spread = np.sqrt((nh * nq - c * c) / (nh + nq - 2 * c))
        logw = -((mh - mq) ** 2) / (2 * (nh + nq - 2 * c))
        w = np.exp(logw - logw.max())
        weights = (w / w.sum())[:, None] * wz[None, :]
        sd = np.exp((centre[:, None] + spread * z[None, :]) / 2)

        def covered(width: float, sd=sd, weights=weights) -> float:
            return float((weights * (2 * stats.norm.cdf(width / sd) - 1)).sum()) - level

        out.append(optimize.brentq(covered, 0.0, 20 * float(sd.max())))
    return np.array(out)


def steep_rule(s: Scored, level: float) -> np.ndarray:
    """The product's half-width, but the halved jackknife's where the layer's rate looks steep."""
    steep = np.asarray(population_se(s.halves, s.quarters).raw_rate) >= 2.0
    jack = t_half(np.sqrt(jackknife_var(s) / 2), len(s.jackknife) - 1, level)
    return np.where(steep, jack, product_rule(s, level))


RULES: dict[str, Callable[[Scored, float], np.ndarray]] = {
    "product": product_rule,
    "prior": prior_rule,
    "jackknife": lambda s, lv: t_half(np.sqrt(jackknife_var(s)), len(s.jackknife) - 1, lv),
    "jackknife / 2": lambda s, lv: t_half(np.sqrt(jackknife_var(s) / 2), len(s.jackknife) - 1, lv),
    "product, jackknife / 2 where steep": steep_rule,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", choices=["word", "speaker"], default="word")
    ap.add_argument("--speakers", type=int, default=16)
    ap.add_argument("--datasets", type=int, default=150)
    ap.add_argument("--truth", type=int, default=200)
    ap.add_argument("--resamples", type=int, default=16)
    ap.add_argument("--groups", type=int, default=16, help="jackknife groups (speaker labels)")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()

    draw = coverage_draw(coverage_population(args.labels, args.speakers, args.seed), args.labels)

    def score(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(layerwise_convexity(x, {"y": y}, OPTIONS)["y"].scores)

    start = time.time()
    rng = np.random.default_rng(args.seed)
    with one_thread():
        truth = np.array(
            [score(d.features, d.labels) for d in (draw(rng) for _ in range(args.truth))]
        ).mean(axis=0)
        sets = []
        for i in range(args.datasets):
            d = draw(rng)
            sets.append(scored(d, jackknife_groups(d, args.groups, i), score, args.resamples, i))
    regimes = np.array(
        [[regime(r) for r in population_se(s.halves, s.quarters).raw_rate] for s in sets]
    )
    print(
        f"{args.labels} labels, {args.speakers} speakers, {args.datasets} datasets, truth from "
        f"{args.truth}, {args.resamples} half-samples, {len(sets[0].jackknife)} jackknife groups; "
        f"{time.time() - start:.0f} s, load {os.getloadavg()[0]:.1f}"
    )
    layers = len(truth)
    header = [f"layer {i}" for i in range(layers)] + [f"{r} (n)" for r in REGIMES]
    print("| rule | " + " | ".join(header) + " |")
    print("|" + " --- |" * (len(header) + 1))
    for name, rule in RULES.items():
        hit = np.array([np.abs(s.full - truth) <= rule(s, 0.9) for s in sets])
        cells = [f"{hit[:, i].mean():.1%}" for i in range(layers)]
        for j in range(len(REGIMES)):
            n = int((regimes == j).sum())
            cells.append(f"{hit[regimes == j].mean():.1%} ({n})" if n else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
