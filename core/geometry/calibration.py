"""Simulation check of the population intervals: do 90 % intervals from one dataset cover the truth?

A population far larger than a dataset gives the truth: many datasets of size N are drawn, each
scored, so the mean score at N (and its true sampling spread) is known. Then from each of many single
datasets the half-sample interval (``core.geometry.resampling``) is computed, and the share that covers
the population mean at N is the achieved coverage, per layer, and per *rate regime*: the layer's own
variance rate before pooling at or below 0.5, between, or at or above 2 (where a clamp on the rate
used to decide the width). ``draw(rng)`` returns one :class:`SimulatedDataset`.

A finite population (a real dataset standing in for one: ``whole_units`` and ``units_within``) gives
datasets that overlap, so they vary less than datasets from an unbounded population by the finite
population correction 1 - f, f the share of units a dataset takes; the interval, which is for an
unbounded population, is then checked with its variance scaled by 1 - f (``finite_fraction``).

``half_count_coverage`` does the same for the "other speakers, half the count" interval (the truth is
the mean score at half the count), and ``stability_simulation`` counts how often the prune point's
calibrated "moves" flag fires on datasets whose point is the population's usual one (false alarms).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.geometry.convexity import layerwise_convexity
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.geometry.prune_point import suggest_prune_point
from core.geometry.prune_stability import prune_stability
from core.geometry.rarefaction import rarefied_interval
from core.geometry.resampling import ResampleUnits, interval_from_resamples, nested_samples
from core.io.records import Record

__all__ = [
    "REGIMES",
    "CoverageTable",
    "Draw",
    "SimulatedDataset",
    "StabilityTable",
    "coverage_simulation",
    "half_count_coverage",
    "stability_simulation",
    "units_within",
    "whole_units",
]

REGIMES = ("rate <= 0.5", "0.5 < rate < 2", "rate >= 2")  # the layer's own (raw) variance rate


@dataclass(frozen=True)
class SimulatedDataset:
    """One drawn dataset: features (N, layers, D), labels and how its intervals resample it."""

    features: np.ndarray
    labels: np.ndarray
    units: ResampleUnits


Draw = Callable[[np.random.Generator], SimulatedDataset]


def regime(raw_rate: float) -> int:
    """Index into ``REGIMES`` of a layer's raw variance rate (NaN: the middle)."""
    if raw_rate <= 0.5:
        return 0
    return 2 if raw_rate >= 2.0 else 1


@dataclass(frozen=True)
class CoverageTable(Record):
    """Nominal vs achieved coverage per layer, with the truth it was measured against."""

    level: float
    n_datasets: int
    n_truth: int
    n_resamples: int
    mean_score: tuple[float, ...]  # population mean score at N (over n_truth datasets)
    true_sd: tuple[float, ...]  # sampling sd of the score at N
    median_se_ratio: tuple[float, ...]  # estimated population SE / true sd, median over datasets
    coverage: tuple[float, ...]  # share of datasets whose interval covers mean_score
    regime_cases: tuple[tuple[int, ...], ...] = ()  # (layers, REGIMES): datasets in each regime
    regime_coverage: tuple[tuple[float, ...], ...] = ()  # (layers, REGIMES): NaN where none
    clamped: tuple[float, ...] = ()  # share of datasets where the guard on the rate acted

    def rows(self) -> list[dict[str, float | str]]:
        """One row per layer, for printing."""
        return [
            {
                "layer": i,
                "mean score at N": round(m, 4),
                "true sd": round(s, 4),
                "SE / true sd": round(r, 2),
                "nominal": self.level,
                "achieved": round(c, 3),
            }
            | {
                f"{name} (n)": f"{cov:.2f} ({n})" if n else "-"
                for name, cov, n in zip(
                    REGIMES,
                    self.regime_coverage[i] if self.regime_coverage else (),
                    self.regime_cases[i] if self.regime_cases else (),
                    strict=False,
                )
            }
            | ({"guard acted": round(self.clamped[i], 3)} if self.clamped else {})
            for i, (m, s, r, c) in enumerate(
                zip(self.mean_score, self.true_sd, self.median_se_ratio, self.coverage, strict=True)
            )
        ]

    def pooled_regimes(self) -> dict[str, tuple[float, int]]:
        """Regime -> (coverage, cases) over all layers."""
        cases = np.array(self.regime_cases, dtype=float)
        hits = np.nan_to_num(np.array(self.regime_coverage, dtype=float)) * cases
        n = cases.sum(axis=0)
        return {
            name: (float(hits[:, j].sum() / n[j]) if n[j] else float("nan"), int(n[j]))
            for j, name in enumerate(REGIMES)
        }


def coverage_simulation(
    draw: Draw,
    *,
    n_truth: int,
    n_datasets: int,
    n_resamples: int,
    level: float = 0.9,
    seed: int = 0,
    rate: bool = True,
    finite_fraction: float = 0.0,
    options: ConvexityOptions = DEFAULT_OPTIONS,
) -> CoverageTable:
    """Achieved coverage of ``level`` intervals over ``n_datasets`` drawn datasets (``rate`` False:
    the plain half-sample spread, without the measured variance rate; ``finite_fraction``: the share
    of a finite population's units each dataset takes, module docstring)."""
    rng = np.random.default_rng(seed)

    def score(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return layerwise_convexity(x, {"y": y}, options)["y"].scores

    truth = np.array([score(d.features, d.labels) for d in (draw(rng) for _ in range(n_truth))])
    mean, sd = truth.mean(axis=0), truth.std(axis=0, ddof=1)
    covered, ratios, regimes, guards = [], [], [], []
    for i in range(n_datasets):
        d = draw(rng)
        x, y, units = d.features, d.labels, d.units
        pairs = nested_samples(units, n_resamples, i)
        halves = np.array([score(x[h], y[h]) for h, _ in pairs])
        quarters = np.array([score(x[q], y[q]) for _, q in pairs]) if rate else None
        iv = interval_from_resamples(
            "y",
            score(x, y),
            halves,
            level=level,
            seed=i,
            scheme="",
            layers=range(x.shape[1]),
            quarters=quarters,
            n_units=units.n_units,
        )
        centre, se = np.array(iv.score), np.array(iv.se) * np.sqrt(1.0 - finite_fraction)
        half = (np.array(iv.high) - centre) * np.sqrt(1.0 - finite_fraction)
        covered.append((centre - half <= mean) & (mean <= centre + half))
        ratios.append(se / np.maximum(sd, 1e-12))
        regimes.append([regime(r) for r in iv.raw_rate] if rate else [1] * len(centre))
        guards.append(iv.rate_clamped or (False,) * len(centre))
    hit, where = np.array(covered), np.array(regimes)
    cases = [[int(np.sum(where[:, i] == j)) for j in range(3)] for i in range(hit.shape[1])]
    by_regime = [
        [float(hit[where[:, i] == j, i].mean()) if cases[i][j] else float("nan") for j in range(3)]
        for i in range(hit.shape[1])
    ]
    return CoverageTable(
        level=level,
        n_datasets=n_datasets,
        n_truth=n_truth,
        n_resamples=n_resamples,
        mean_score=tuple(float(v) for v in mean),
        true_sd=tuple(float(v) for v in sd),
        median_se_ratio=tuple(float(v) for v in np.median(ratios, axis=0)),
        coverage=tuple(float(v) for v in np.mean(covered, axis=0)),
        regime_cases=tuple(tuple(row) for row in cases),
        regime_coverage=tuple(tuple(row) for row in by_regime),
        clamped=tuple(float(v) for v in np.mean(guards, axis=0)),
    )


def half_count_coverage(
    draw: Draw,
    draw_half: Draw,
    *,
    n_truth: int,
    n_datasets: int,
    n_resamples: int,
    level: float = 0.9,
    seed: int = 0,
    finite_fraction: float = 0.0,
    options: ConvexityOptions = DEFAULT_OPTIONS,
) -> CoverageTable:
    """Achieved coverage of the "other speakers, half the count" interval (``curve_statistics``):
    datasets from ``draw`` (labels = their units, e.g. speakers), each with the interval of the mean
    score at half the count from ``n_resamples`` half-samples of its units; the truth is the mean
    score of ``n_truth`` datasets of half the count from ``draw_half``."""
    rng = np.random.default_rng(seed)

    def score(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(layerwise_convexity(x, {"y": y}, options)["y"].scores)

    truth = np.array(
        [score(d.features, d.labels) for d in (draw_half(rng) for _ in range(n_truth))]
    )
    mean, sd = truth.mean(axis=0), truth.std(axis=0, ddof=1)
    covered, ratios = [], []
    for i in range(n_datasets):
        d = draw(rng)
        n = d.units.n_units
        halves = np.array(
            [score(d.features[h], d.labels[h]) for h, _ in nested_samples(d.units, n_resamples, i)]
        )
        iv = rarefied_interval(
            "y",
            range(halves.shape[1]),
            halves,
            share=(n // 2) / n,
            n_units=n,
            level=level,
            seed=i,
            scheme="",
        )
        shrink = np.sqrt(1.0 - finite_fraction)
        centre, half = np.array(iv.score), (np.array(iv.high) - np.array(iv.score)) * shrink
        covered.append((centre - half <= mean) & (mean <= centre + half))
        ratios.append(np.array(iv.se) * shrink / np.maximum(sd, 1e-12))
    n_layers = len(mean)
    hits = np.array(covered)
    return CoverageTable(
        level=level,
        n_datasets=n_datasets,
        n_truth=n_truth,
        n_resamples=n_resamples,
        mean_score=tuple(float(v) for v in mean),
        true_sd=tuple(float(v) for v in sd),
        median_se_ratio=tuple(float(v) for v in np.median(ratios, axis=0)),
        coverage=tuple(float(v) for v in hits.mean(axis=0)),
        regime_cases=tuple((0, n_datasets, 0) for _ in range(n_layers)),
        regime_coverage=tuple((float("nan"), float(v), float("nan")) for v in hits.mean(axis=0)),
    )


def whole_units(
    x: np.ndarray, labels: np.ndarray, units: np.ndarray, n_units: int, unit: str = "speaker"
) -> Draw:
    """Datasets of ``n_units`` whole units (e.g. speakers) drawn without replacement from a finite
    population (x, labels, units), resampled by those units."""
    pool = np.unique(units)

    def draw(rng: np.random.Generator) -> SimulatedDataset:
        idx = np.flatnonzero(np.isin(units, rng.choice(pool, n_units, replace=False)))
        return SimulatedDataset(x[idx], labels[idx], ResampleUnits.of(unit, units[idx]))

    return draw


def units_within(
    x: np.ndarray, labels: np.ndarray, strata: np.ndarray, per_stratum: int, within: str = "speaker"
) -> Draw:
    """Datasets of ``per_stratum`` clips of every stratum (e.g. speaker) drawn without replacement
    from a finite population, resampled by clips within each stratum."""
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)]

    def draw(rng: np.random.Generator) -> SimulatedDataset:
        idx = np.sort(np.concatenate([rng.choice(g, per_stratum, replace=False) for g in groups]))
        return SimulatedDataset(
            x[idx], labels[idx], ResampleUnits.of("clip", idx, strata[idx], within=within)
        )

    return draw


@dataclass(frozen=True)
class StabilityTable(Record):
    """How often the threshold rule's "moves" flag fires, against the truth of a population."""

    n_datasets: int
    n_truth: int
    truth_points: dict[str, int]  # the full-data point over n_truth datasets
    modal_point: int
    truth_share: float  # share of datasets whose point is the modal one (stable in truth: >= 0.9)
    flagged_at_mode: int  # datasets at the modal point whose flag fired
    at_mode: int
    flagged_off_mode: int  # datasets at another point whose flag fired
    off_mode: int
    median_move_share: float  # the reported share, median over datasets
    any_move_at_mode: int = 0  # datasets at the modal point where some half-sample moved it

    @property
    def false_alarm(self) -> float:
        """Share of datasets at the (true) modal point that were flagged as moving."""
        return self.flagged_at_mode / self.at_mode if self.at_mode else float("nan")


def stability_simulation(
    draw: Draw,
    *,
    n_truth: int,
    n_datasets: int,
    n_resamples: int,
    fraction: float = 0.95,
    level: float = 0.9,
    seed: int = 0,
    options: ConvexityOptions = DEFAULT_OPTIONS,
) -> StabilityTable:
    """False-alarm rate of the threshold rule's calibrated "moves" flag (``prune_stability``) over
    ``n_datasets`` drawn datasets, the truth being the point over ``n_truth`` others."""
    rng = np.random.default_rng(seed)

    def score(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(layerwise_convexity(x, {"y": y}, options)["y"].scores)

    truth = Counter(
        suggest_prune_point(score(d.features, d.labels), fraction)
        for d in (draw(rng) for _ in range(n_truth))
    )
    mode = truth.most_common(1)[0][0]
    flags: list[tuple[bool, bool]] = []
    shares, any_move = [], 0
    for i in range(n_datasets):
        d = draw(rng)
        x, y = d.features, d.labels
        pairs = nested_samples(d.units, n_resamples, i)
        full = score(x, y)
        halves = np.array([score(x[h], y[h]) for h, _ in pairs])
        quarters = np.array([score(x[q], y[q]) for _, q in pairs])
        layers = list(range(x.shape[1]))
        iv = interval_from_resamples(
            "y",
            full,
            halves,
            level=level,
            seed=i,
            scheme="",
            layers=layers,
            quarters=quarters,
            n_units=d.units.n_units,
        )
        sd = np.std(halves, axis=0, ddof=1)
        scale = np.where(sd > 0, np.asarray(iv.se) / np.where(sd > 0, sd, 1.0), 0.0)
        rule = prune_stability(
            "y",
            layers,
            full,
            np.zeros(len(layers)),
            halves,
            fraction=fraction,
            scale=scale,
            level=level,
        ).threshold
        flags.append((rule.point == mode, rule.moves))
        any_move += rule.point == mode and set(rule.over_resamples) != {str(rule.point)}
        shares.append(rule.move_share)
    at = [f for m, f in flags if m]
    off = [f for m, f in flags if not m]
    return StabilityTable(
        n_datasets=n_datasets,
        n_truth=n_truth,
        truth_points={str(p): n for p, n in sorted(truth.items())},
        modal_point=int(mode),
        truth_share=truth[mode] / n_truth,
        flagged_at_mode=int(sum(at)),
        at_mode=len(at),
        flagged_off_mode=int(sum(off)),
        off_mode=len(off),
        median_move_share=float(np.median(shares)),
        any_move_at_mode=int(any_move),
    )
