"""Chance level of graph convexity: the same features with labels permuted, class sizes kept.

Graph convexity of random labels is far from 0 (a neighbour pair scores 1; a class of n in N points
has a share ~n/N of every path's interior), and it moves with the number and sizes of classes, so a
curve means little without it. A permutation shuffles the labels among the kept points (those of
classes with at least two points; the others keep theirs), so every class keeps its size.

The mean over permutations is computed exactly rather than by averaging a few permutations. Paths
depend only on the graph; for a uniform random relabelling, a pair (s, t) of kept points is a uniform
random ordered pair of a class c, and each kept interior vertex of its path lies in c with chance
(n_c - 2) / (K - 2) (K kept points). So E[class score] = A + D (n_c - 2) / (K - 2), where A is the
share of ordered kept pairs that are kNN neighbours (no interior: score 1; with Euclidean weights the
direct edge is the shortest path) and D the mean over ordered kept pairs of (kept interior vertices)
/ (edges - 1) on the others (unreachable: 0). A + D is the graph convexity of the *pooled* labelling
(all kept points one class, every other point alone), estimated by the engine with its design SE;
A is counted on the graph. The layer's chance level is the mean of the class expectations.

The spread comes from ``n_permutations`` permuted label sets: the standard deviation of their layer
estimates. It holds the estimator's noise as well as the spread between relabellings (at the shared
sources, the noise is the larger part), so in expectation it bounds how far one random labelling
strays from above, and a band of mean +- 2 sd errs wide. The pooled and permuted sets go into the
real labels' engine call as shared-cut sets (``shared_sources``): they use the real sets' pilot
sources, so their trees are shared rather than added, which is what keeps the chance level cheap.
Nothing here is new mathematics; it is a permutation null computed with the existing engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ConvexityInputError
from core.geometry.convexity import ConvexityCurve, layerwise_convexity
from core.geometry.knn import KnnGraph
from core.geometry.limits import MAX_PERMUTATIONS
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.geometry.validation import LabelsLike, as_features, encode_labels
from core.io.records import Record

__all__ = [
    "ChanceLevel",
    "MAX_PERMUTATIONS",
    "adjacent_share",
    "chance_curves",
    "chance_normalised",
    "expected_chance",
    "interior_weight",
    "permutation_name",
    "permuted_labels",
    "pooled_labels",
]

PERMUTED = "@permuted"  # joins a label set's name and a permutation's index in the engine call
POOLED = "@pooled"  # names a label set's pooled labelling in the engine call


def permutation_name(name: str, index: int) -> str:
    """The engine's name of permutation ``index`` of label set ``name``."""
    return f"{name}{PERMUTED}{index}"


def permuted_labels(labels: LabelsLike, n_permutations: int, seed: int = 0) -> list[np.ndarray]:
    """``n_permutations`` label arrays: the labels shuffled among the points of classes with >= 2 points.

    Every class keeps its size; points of singleton classes keep their label. Permutation i is seeded
    by (seed, i), so adding permutations keeps the first ones.
    """
    codes, classes = encode_labels(labels)
    counts = np.bincount(codes, minlength=len(classes))
    kept = np.flatnonzero(counts[codes] >= 2)
    out = []
    for i in range(n_permutations):
        rng = np.random.default_rng([int(seed), i])
        shuffled = codes.copy()
        shuffled[kept] = codes[kept][rng.permutation(len(kept))]
        out.append(shuffled)
    return out


def pooled_labels(labels: LabelsLike) -> np.ndarray:
    """Every point of a class with >= 2 points in class 0, every other point in a class of its own."""
    codes, classes = encode_labels(labels)
    kept = np.bincount(codes, minlength=len(classes))[codes] >= 2
    out = np.arange(1, len(codes) + 1, dtype=np.int64)
    out[kept] = 0
    return out


def adjacent_share(graph: KnnGraph, kept: np.ndarray) -> float:
    """Share of the ordered pairs of ``kept`` points (bool mask) that are neighbours in the kNN graph."""
    csr = graph.csr()
    indptr, nbr = csr.indptr, csr.indices
    src = np.repeat(np.arange(graph.n_points), np.diff(indptr))
    n_kept = int(kept.sum())
    return float(np.sum(kept[src] & kept[nbr])) / (n_kept * (n_kept - 1))


def interior_weight(class_sizes: Sequence[int] | np.ndarray) -> float:
    """Mean over classes of (n_c - 2) / (K - 2): how much of the pooled interior share a relabelled
    class keeps, and so d(chance mean) / d(pooled score)."""
    n = np.asarray(class_sizes, dtype=np.float64)
    return float(np.mean((n - 2.0) / (n.sum() - 2.0)))


def expected_chance(
    pooled_score: float, adjacent: float, class_sizes: Sequence[int] | np.ndarray
) -> float:
    """Mean graph convexity over uniform relabellings with these kept class sizes (module docstring)."""
    return adjacent + (pooled_score - adjacent) * interior_weight(class_sizes)


@dataclass(frozen=True)
class ChanceLevel(Record):
    """Graph convexity of permuted labels per hidden state.

    ``mean``: the exact mean over all relabellings (up to ``mean_se``, the design SE of the pooled
    estimate); ``std``: the standard deviation of ``n_permutations`` permuted curves' estimates
    (``scores``, with design SEs ``sems``): relabelling spread plus estimator noise, an upper bound.
    """

    label_set: str
    layers: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scores: tuple[tuple[float, ...], ...]  # (permutations, layers)
    n_permutations: int
    seed: int
    mean_se: tuple[float, ...] = ()
    sems: tuple[tuple[float, ...], ...] = ()  # (permutations, layers)

    @classmethod
    def of(
        cls,
        name: str,
        curves: Sequence[ConvexityCurve],
        mean: Sequence[float],
        mean_se: Sequence[float],
        seed: int,
    ) -> ChanceLevel:
        """The chance level of label set ``name``: its exact ``mean`` and the permuted curves' spread."""
        table = np.array([c.scores for c in curves], dtype=np.float64)
        return cls(
            label_set=name,
            layers=tuple(int(i) for i in curves[0].layers),
            mean=tuple(float(v) for v in mean),
            std=tuple(float(v) for v in table.std(axis=0, ddof=1)),
            scores=tuple(tuple(float(v) for v in row) for row in table),
            n_permutations=len(curves),
            seed=int(seed),
            mean_se=tuple(float(v) for v in mean_se),
            sems=tuple(tuple(float(v) for v in c.sems) for c in curves),
        )


def chance_normalised(
    scores: Sequence[float] | np.ndarray, chance: Sequence[float] | np.ndarray
) -> np.ndarray:
    """(score - chance) / (1 - chance) per layer: 0 at chance, 1 at perfect convexity (NaN if chance is 1)."""
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(chance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c < 1.0, (s - c) / (1.0 - c), np.nan)


def chance_curves(
    features: Any,
    labels: Mapping[str, LabelsLike],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    *,
    n_permutations: int = 10,
    permutation_seed: int = 0,
    layers: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_graph: Callable[[int, KnnGraph], None] | None = None,
) -> tuple[dict[str, ConvexityCurve], dict[str, ChanceLevel]]:
    """(real curves, chance levels) of every label set, computed in one engine call with ``options``;
    the pooled and permuted sets share the real sets' graphs and trees (module docstring).
    """
    if not isinstance(n_permutations, int | np.integer) or not (
        2 <= n_permutations <= MAX_PERMUTATIONS
    ):
        raise ConvexityInputError(
            f"chance level needs 2 to {MAX_PERMUTATIONS} permutations, got {n_permutations!r}"
        )
    x = as_features(features, "N, layers, D")
    named: dict[str, LabelsLike] = {}
    for name, lab in labels.items():
        if PERMUTED in name or POOLED in name:
            raise ConvexityInputError(
                f"label-set names may not contain {PERMUTED!r} or {POOLED!r}: {name!r}"
            )
        named[name] = lab
    kept: dict[str, np.ndarray] = {}
    pooled_name: dict[str, str] = {}  # label sets with the same kept points share one pooled set
    for name, lab in labels.items():
        pooled = pooled_labels(lab)
        kept[name] = pooled == 0
        same = [n for n in pooled_name if np.array_equal(kept[n], kept[name])]
        pooled_name[name] = pooled_name[same[0]] if same else name + POOLED
        named.setdefault(pooled_name[name], pooled)
        for i, perm in enumerate(permuted_labels(lab, n_permutations, permutation_seed)):
            named[permutation_name(name, i)] = perm
    adjacent: dict[int, dict[str, float]] = {}

    def count_neighbours(layer: int, graph: KnnGraph) -> None:
        adjacent[layer] = {name: adjacent_share(graph, mask) for name, mask in kept.items()}
        if on_graph is not None:
            on_graph(layer, graph)

    curves = layerwise_convexity(
        x,
        named,
        options,
        layers=layers,
        progress=progress,
        on_graph=count_neighbours,
        shared_sources=[n for n in named if n not in labels],
    )
    real = {name: curves[name] for name in labels}
    chance = {}
    for name, curve in real.items():
        pooled_curve = curves[pooled_name[name]]
        sizes = [c.n_points for c in curve.results[0].per_class.values()]
        weight = interior_weight(sizes)
        chance[name] = ChanceLevel.of(
            name,
            [curves[permutation_name(name, i)] for i in range(n_permutations)],
            [
                expected_chance(float(score), adjacent[layer][name], sizes)
                for layer, score in zip(pooled_curve.layers, pooled_curve.scores, strict=True)
            ],
            [weight * float(se) for se in pooled_curve.sems],
            permutation_seed,
        )
    return real, chance
