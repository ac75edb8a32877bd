"""Chance level of graph convexity: the same features with labels permuted, class sizes kept.

Graph convexity of random labels is far from 0 (a neighbour pair scores 1; a class of n in N points
has a share ~n/N of every path's interior), and it moves with the number and sizes of classes, so a
curve means little without it. For each label set, K permutations shuffle the labels among the kept
points (those of classes with at least two points; the others keep theirs), so every class keeps its
size. The permuted label sets go into the same ``layerwise_convexity`` call as the real ones: they
share every layer's kNN graph, the seeded source ranking and the shortest-path trees (one tree scores
every label set at once), which is what keeps the chance curve cheap. The chance level of a layer is
the mean over permutations; its spread (std over permutations) says how far a single random labelling
strays. Nothing here is new mathematics; it is a permutation null computed with the existing engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ConvexityInputError
from core.geometry.convexity import ConvexityCurve, layerwise_convexity
from core.geometry.limits import MAX_PERMUTATIONS
from core.geometry.validation import LabelsLike, as_features, encode_labels
from core.io.records import Record

__all__ = [
    "ChanceLevel",
    "MAX_PERMUTATIONS",
    "chance_curves",
    "chance_normalised",
    "permutation_name",
    "permuted_labels",
]

PERMUTED = "@permuted"  # joins a label set's name and a permutation's index in the engine call


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


@dataclass(frozen=True)
class ChanceLevel(Record):
    """Graph convexity of permuted labels per hidden state: mean and std over ``n_permutations``."""

    label_set: str
    layers: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scores: tuple[tuple[float, ...], ...]  # (permutations, layers)
    n_permutations: int
    seed: int

    @classmethod
    def of(cls, name: str, curves: Sequence[ConvexityCurve], seed: int) -> ChanceLevel:
        """Summary of the permuted curves of label set ``name``."""
        table = np.array([c.scores for c in curves], dtype=np.float64)
        std = table.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(table.shape[1])
        return cls(
            label_set=name,
            layers=tuple(int(i) for i in curves[0].layers),
            mean=tuple(float(v) for v in table.mean(axis=0)),
            std=tuple(float(v) for v in std),
            scores=tuple(tuple(float(v) for v in row) for row in table),
            n_permutations=len(curves),
            seed=int(seed),
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
    *,
    n_permutations: int = 10,
    permutation_seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    **engine_kwargs: Any,
) -> tuple[dict[str, ConvexityCurve], dict[str, ChanceLevel]]:
    """(real curves, chance levels) of every label set, computed in one engine call.

    ``engine_kwargs`` are ``layerwise_convexity``'s (k, precision, seed, layers, device, ...): the
    permuted sets are estimated at the same precision as the real ones and share their trees.
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
        if PERMUTED in name:
            raise ConvexityInputError(f"label-set names may not contain {PERMUTED!r}: {name!r}")
        named[name] = lab
    for name, lab in labels.items():
        for i, perm in enumerate(permuted_labels(lab, n_permutations, permutation_seed)):
            named[permutation_name(name, i)] = perm
    curves = layerwise_convexity(x, named, progress=progress, **engine_kwargs)
    real = {name: curves[name] for name in labels}
    chance = {
        name: ChanceLevel.of(
            name,
            [curves[permutation_name(name, i)] for i in range(n_permutations)],
            permutation_seed,
        )
        for name in labels
    }
    return real, chance
