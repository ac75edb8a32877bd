"""Convexity at a chosen size: the curve averaged over seeded subsets of m classes and c clips each.

Graph convexity depends on the number of classes and of clips per class (more classes crowd every
class's paths; more clips densify the graph), so curves of data sets of different size do not
compare, and an interval for "other speakers" cannot be taken at the data's own count from subsets of
it. Both are answered at a *fixed smaller size*: B subsets, each of m classes drawn without
replacement (and c clips of each, without replacement), are scored, and their mean is the estimate of
the population's mean score at that size. It is unbiased for it (each subset is a random draw of
that size from the population), whatever the curve's dependence on size.

Its interval: with f the share of the units a subset keeps (m of n classes when classes are drawn,
else c of a class's clips), the mean over all subsets of a dataset is a U-statistic of kernel size
f n, whose variance is at most f / (1 - f) times the variance of the subsets' scores within the dataset
(Hoeffding; equal for a mean-like score, conservative where pairs of classes interact); B subsets add
their own 1 / B. So SE^2 = V_sub (f / (1 - f) + 1 / B), with a t quantile on min(B, units) - 1
degrees of freedom. Coverage by simulation (speaker labels, speakers drawn:
tests/test_rarefaction.py) and with the bundled sample as the population (bench/rarefaction.py).

Two curves at the same size compare (``size_matched_difference``): A - B with SE sqrt(SE_A^2 + SE_B^2)
for independent data sets; for the same clips (the same subsets on both sides, paired) the difference
is taken within each subset, and its spread gives the SE by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from core.errors import ConvexityInputError
from core.geometry.convexity import layerwise_convexity
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.geometry.paired import PairedDifference
from core.geometry.resampling import CurveInterval
from core.geometry.validation import encode_labels
from core.io.records import Record

__all__ = [
    "RarefySize",
    "kept_share",
    "size_matched_difference",
    "common_size",
    "rarefied_curve",
    "rarefied_interval",
    "rarefy_subsets",
]

MIN_SUBSETS = 2


@dataclass(frozen=True)
class RarefySize(Record):
    """A size to compare at: ``n_classes`` classes (None: all) with ``per_class`` clips each (None:
    all of each chosen class)."""

    n_classes: int | None = None
    per_class: int | None = None

    def __post_init__(self) -> None:
        if self.n_classes is not None and self.n_classes < 2:
            raise ConvexityInputError(f"a size needs at least 2 classes, got {self.n_classes}")
        if self.per_class is not None and self.per_class < 2:
            raise ConvexityInputError(
                f"a size needs at least 2 clips per class, got {self.per_class}"
            )

    def describe(self) -> str:
        """'8 classes x 20 clips each' (or 'all classes', 'all clips')."""
        classes = "all classes" if self.n_classes is None else f"{self.n_classes} classes"
        clips = "all their clips" if self.per_class is None else f"{self.per_class} clips each"
        return f"{classes} x {clips}"

    @classmethod
    def parse(cls, text: str) -> RarefySize:
        """'8' (classes), '8x20' (classes x clips per class) or 'x20' (clips per class only)."""
        head, _, tail = text.strip().lower().partition("x")
        try:
            return cls(int(head) if head else None, int(tail) if tail else None)
        except ValueError:
            raise ConvexityInputError(
                f"a size is CLASSES, CLASSESxCLIPS or xCLIPS (e.g. 8x20), got {text!r}"
            ) from None


def common_size(class_counts: Sequence[Sequence[int]]) -> RarefySize:
    """The largest size every curve reaches: the fewest classes, and the fewest clips of any class
    (``class_counts``: per curve, the clips of each class)."""
    counts = [list(c) for c in class_counts if len(c)]
    if not counts:
        raise ConvexityInputError("no class counts to find a common size from")
    return RarefySize(min(len(c) for c in counts), min(min(c) for c in counts))


def _check(counts: np.ndarray, size: RarefySize, name: str) -> None:
    """One clear line if ``size`` asks for more than the labels hold."""
    if size.n_classes is not None and size.n_classes > len(counts):
        raise ConvexityInputError(
            f"{name}: {len(counts)} classes, fewer than the {size.n_classes} asked for"
        )
    if size.per_class is not None and size.per_class > counts.min():
        raise ConvexityInputError(
            f"{name}: a class has {int(counts.min())} clips, fewer than the {size.per_class} asked for"
        )


def kept_share(counts: np.ndarray, size: RarefySize) -> float:
    """The share f of the units a subset keeps: m of n classes where classes are drawn, else c of
    the median class's clips (module docstring); 1.0 when the size keeps everything."""
    if size.n_classes is not None and size.n_classes < len(counts):
        return size.n_classes / len(counts)
    if size.per_class is not None:
        return min(1.0, size.per_class / float(np.median(counts)))
    return 1.0


def rarefy_subsets(
    labels: Sequence[Hashable] | np.ndarray, size: RarefySize, n_subsets: int, seed: int = 0
) -> list[np.ndarray]:
    """Sorted point indices of ``n_subsets`` subsets of ``size``; subset b is seeded by (seed, b),
    so more subsets keep the first ones."""
    codes, _ = encode_labels(labels, None, "labels")
    counts = np.bincount(codes)
    _check(counts, size, "labels")
    classes = np.arange(len(counts))
    members = [np.flatnonzero(codes == c) for c in classes]
    out = []
    for b in range(n_subsets):
        rng = np.random.default_rng([int(seed), b])
        chosen = (
            classes
            if size.n_classes is None
            else rng.choice(classes, size.n_classes, replace=False)
        )
        parts = [
            members[c]
            if size.per_class is None
            else rng.choice(members[c], size.per_class, replace=False)
            for c in chosen
        ]
        out.append(np.sort(np.concatenate(parts)))
    return out


def rarefied_interval(
    name: str,
    layers: Sequence[int],
    table: np.ndarray,
    *,
    share: float,
    n_units: int,
    level: float,
    seed: int,
    scheme: str,
    question: str = "",
) -> CurveInterval:
    """The interval of the population's mean score at a subset's size from (B, layers) subset
    scores that each keep ``share`` of ``n_units`` units (module docstring)."""
    t = np.asarray(table, dtype=np.float64)
    b = t.shape[0]
    if b < MIN_SUBSETS or not 0.0 < share < 1.0:
        raise ConvexityInputError(
            f"{name}: an interval at a smaller size needs >= {MIN_SUBSETS} subsets that each keep "
            f"part of the data (kept share {share:.2f})"
        )
    centre = t.mean(axis=0)
    se = np.sqrt(t.var(axis=0, ddof=1) * (share / (1.0 - share) + 1.0 / b))
    dof = max(1, min(b, n_units) - 1)
    half = stats.t.ppf(0.5 + level / 2, dof) * se
    return CurveInterval(
        label_set=name,
        layers=tuple(int(i) for i in layers),
        score=tuple(float(v) for v in centre),
        low=tuple(float(v) for v in centre - half),
        high=tuple(float(v) for v in centre + half),
        se=tuple(float(v) for v in se),
        resample_scores=tuple(tuple(float(v) for v in row) for row in t),
        level=float(level),
        seed=int(seed),
        scheme=scheme,
        question=question,
        dof=dof,
    )


def rarefied_curve(
    features: np.ndarray,
    labels: Sequence[Hashable] | np.ndarray,
    size: RarefySize,
    n_subsets: int,
    options: ConvexityOptions = DEFAULT_OPTIONS,
    *,
    name: str = "labels",
    level: float = 0.9,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CurveInterval:
    """The curve of ``features`` (N, layers, D) at ``size``: the mean over ``n_subsets`` seeded
    subsets with its interval (module docstring); ``progress(done, n_subsets)`` after each."""
    if not MIN_SUBSETS <= n_subsets <= 200:
        raise ConvexityInputError(f"rarefaction needs 2 to 200 subsets, got {n_subsets}")
    codes, _ = encode_labels(labels, len(features), name)
    counts = np.bincount(codes)
    _check(counts, size, name)
    share = kept_share(counts, size)
    if share >= 1.0:
        raise ConvexityInputError(
            f"{name}: {size.describe()} keeps every clip; pick fewer classes or clips per class"
        )
    arr = np.asarray(labels)
    chosen = list(range(np.shape(features)[1])) if layers is None else list(layers)
    rows = []
    for i, idx in enumerate(rarefy_subsets(codes, size, n_subsets, seed)):
        curve = layerwise_convexity(
            np.ascontiguousarray(features[idx]), {name: arr[idx]}, options, layers=chosen
        )[name]
        rows.append(curve.scores)
        if progress is not None:
            progress(i + 1, n_subsets)
    drawn = size.n_classes is not None and size.n_classes < len(counts)
    return rarefied_interval(
        name,
        chosen,
        np.array(rows),
        share=share,
        n_units=len(counts) if drawn else int(math.floor(np.median(counts))),
        level=level,
        seed=seed,
        scheme=f"mean of {n_subsets} subsets of {size.describe()}",
        question=f"the mean curve of other data sets of {size.describe()} from the same population",
    )


def size_matched_difference(
    a: CurveInterval,
    b: CurveInterval,
    name_a: str | None = None,
    name_b: str | None = None,
    *,
    paired: bool = False,
    share: float | None = None,
) -> PairedDifference:
    """A - B of two curves at the same size (``rarefied_curve``) with its interval: independent data
    sets add the two variances; ``paired`` (the same clips, so the same subsets on both sides, with
    ``share`` the kept share) takes the difference within each subset (module docstring)."""
    if a.layers != b.layers:
        raise ConvexityInputError(f"the curves have different layers: {a.layers} vs {b.layers}")
    if a.level != b.level:
        raise ConvexityInputError(f"interval levels differ: {a.level} vs {b.level}")
    diff = np.asarray(a.score) - np.asarray(b.score)
    if paired:
        if share is None or (a.seed, a.n_resamples, a.scheme) != (b.seed, b.n_resamples, b.scheme):
            raise ConvexityInputError(
                "a paired difference at equal size needs the same subsets on both sides and the kept share"
            )
        rows = np.asarray(a.resample_scores) - np.asarray(b.resample_scores)
        iv = rarefied_interval(
            "A - B",
            a.layers,
            rows,
            share=share,
            n_units=a.degrees + 1,
            level=a.level,
            seed=a.seed,
            scheme=a.scheme,
        )
        low, high = np.asarray(iv.low), np.asarray(iv.high)
    else:
        se = np.hypot(np.asarray(a.se), np.asarray(b.se))
        half = stats.t.ppf(0.5 + a.level / 2, min(a.degrees, b.degrees)) * se
        low, high = diff - half, diff + half
    n_resamples = min(a.n_resamples, b.n_resamples)
    return PairedDifference.of(a, b, (low, high), n_resamples, (name_a, name_b))
