"""What a convexity estimate or a UMAP layout is asked for, as one record each.

The engines, the curve statistics, the diagnostics and the results store take these records whole, so
a new setting is added in one place; a store key is built from ``ConvexityOptions.key_fields`` (what is
computed), never from where or how it runs (device, engine).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from core.errors import ConvexityInputError
from core.geometry.limits import MAX_PERMUTATIONS, MAX_RESAMPLES, MAX_SEEDS
from core.io.records import Record

__all__ = [
    "DEFAULT_K",
    "DEFAULT_OPTIONS",
    "DEFAULT_UMAP",
    "EXACT_THRESHOLD",
    "ConvexityOptions",
    "DEFAULT_STATISTICS",
    "Engine",
    "StatisticsOptions",
    "UmapOptions",
]

DEFAULT_K = 10  # neighbours of the kNN graph (the paper's k)
EXACT_THRESHOLD = (
    0.7  # go exhaustive when sampling is predicted to need more than this share of trees
)
Engine = Literal["auto", "numba", "torch"]
ENGINES = ("auto", "numba", "torch")


@dataclass(frozen=True)
class ConvexityOptions(Record):
    """How a convexity curve is estimated: the graph (``k``), the precision (``target_se``, else the
    authors' ``max_pairs_per_class``, ``None`` = every pair), the estimator's seed, and where it runs.

    ``target_se`` makes precision the knob: sources are added until the layer score's standard error is
    at most that (``max_pairs_per_class`` is then ignored). ``match_pair_precision=False`` stops the
    authors' scheme after its first stage. Whenever sampling is predicted to need more than
    ``exact_threshold`` of all shortest-path trees, every tree is computed instead (exact, sem 0).
    ``device=None`` uses CUDA when present; ``engine`` picks the shortest-path implementation (``auto``:
    torch on CUDA, numba on CPU), both giving the same result.
    """

    k: int = DEFAULT_K
    max_pairs_per_class: int | None = 5000
    target_se: float | None = None
    match_pair_precision: bool = True
    exact_threshold: float = EXACT_THRESHOLD
    seed: int = 0
    device: str | None = None
    engine: Engine = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int | np.integer) or self.k < 1:
            raise ConvexityInputError(f"k must be an integer >= 1, got {self.k!r}")
        if self.max_pairs_per_class is not None and self.max_pairs_per_class < 1:
            raise ConvexityInputError("max_pairs_per_class must be positive or None (exhaustive)")
        if self.target_se is not None and not (
            math.isfinite(self.target_se) and self.target_se >= 0
        ):
            raise ConvexityInputError(f"target_se must be a number >= 0, got {self.target_se!r}")
        if not 0.0 <= self.exact_threshold <= 1.0:
            raise ConvexityInputError(
                f"exact_threshold must lie in [0, 1], got {self.exact_threshold!r}"
            )
        if self.engine not in ENGINES:
            raise ConvexityInputError(f"unknown engine {self.engine!r}; use {', '.join(ENGINES)}")

    def with_(self, **changes: Any) -> ConvexityOptions:
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def key_fields(self) -> dict[str, Any]:
        """What is computed (a store key's part): everything but where and how it runs."""
        return {
            "k": int(self.k),
            "max_pairs_per_class": self.max_pairs_per_class,
            "seed": int(self.seed),
            "match_pair_precision": self.match_pair_precision,
            "target_se": self.target_se,
            "exact_threshold": self.exact_threshold,
        }


DEFAULT_OPTIONS = ConvexityOptions()


@dataclass(frozen=True)
class StatisticsOptions(Record):
    """What the curve statistics compute besides the curves: ``n_permutations`` permuted labellings
    for the chance level (0: none), ``n_resamples`` half-samples for the population intervals and
    prune-point stability (0: none), ``n_seeds`` other estimator seeds, the interval ``level``, the
    threshold rule's ``fraction`` and the ``layers`` (None: all). Every field is part of the store key
    (``key_fields``), so a new setting enters it here and nowhere else."""

    n_permutations: int = 10
    permutation_seed: int = 0
    n_resamples: int = 20
    resample_seed: int = 0
    n_seeds: int = 5
    level: float = 0.9
    fraction: float = 0.95
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not 0.5 <= self.level < 1.0:
            raise ConvexityInputError(f"interval level must lie in [0.5, 1), got {self.level!r}")
        if not 0.0 < self.fraction <= 1.0:
            raise ConvexityInputError(f"fraction must lie in (0, 1], got {self.fraction!r}")
        if self.n_permutations and not 2 <= self.n_permutations <= MAX_PERMUTATIONS:
            raise ConvexityInputError(
                f"chance level needs 2 to {MAX_PERMUTATIONS} permutations (or 0), "
                f"got {self.n_permutations}"
            )
        if self.n_resamples and not 2 <= self.n_resamples <= MAX_RESAMPLES:
            raise ConvexityInputError(
                f"population intervals need 2 to {MAX_RESAMPLES} resamples (or 0), "
                f"got {self.n_resamples!r}"
            )
        if not 0 <= self.n_seeds <= MAX_SEEDS:
            raise ConvexityInputError(
                f"estimator seeds must lie in 0..{MAX_SEEDS}, got {self.n_seeds}"
            )
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    def with_(self, **changes: Any) -> StatisticsOptions:
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def key_fields(self) -> dict[str, Any]:
        """What is computed (a store key's part)."""
        return {
            "n_permutations": int(self.n_permutations),
            "permutation_seed": int(self.permutation_seed),
            "n_resamples": int(self.n_resamples),
            "resample_seed": int(self.resample_seed),
            "n_seeds": int(self.n_seeds),
            "level": float(self.level),
            "fraction": float(self.fraction),
            "layers": None if self.layers is None else list(self.layers),
        }


DEFAULT_STATISTICS = StatisticsOptions()


@dataclass(frozen=True)
class UmapOptions(Record):
    """An aligned UMAP layout: neighbours, minimum distance, epochs and seed (umap-learn's meanings)."""

    n_neighbors: int = 15
    min_dist: float = 0.1
    n_epochs: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_neighbors < 2 or self.n_epochs < 1 or not self.min_dist >= 0:
            raise ConvexityInputError(
                f"UMAP needs n_neighbors >= 2, n_epochs >= 1 and min_dist >= 0, got {self}"
            )


DEFAULT_UMAP = UmapOptions()
