"""Redundancy blocks: runs of consecutive transformer layers whose representations are nearly identical.

Dorszewski et al., "How Redundant Is the Transformer Stack in Speech Representation Models?" (ICASSP
2025, arXiv 2409.16302) show layer x layer similarity maps (cosine, linear CKA, mutual kNN) of speech
models with blocks of near-identical layers, and that removing redundant layers from inside the stack
without post-training keeps most of the performance. This module finds such blocks in a similarity map
computed by :mod:`core.geometry.criteria` (``linear_cka`` or ``mutual_knn``; a map over hidden states
0..L, state ``i`` being the output of layer ``i``).

The rule, stated exactly:

1. A *candidate* is a run of consecutive layers ``a..b`` (``1 <= a < b <= L``; hidden state 0 is the
   front-end and never part of a block) in which every pair of layers has similarity ``>= threshold``
   (the map is symmetrised as ``min(S[i, j], S[j, i])``; a NaN pair fails). Only maximal candidates
   count: those not contained in a longer candidate.
2. Maximal candidates may overlap (``2..5`` and ``4..7`` when ``2`` and ``7`` are not similar). The
   blocks are chosen greedily: the longest candidate first (ties: the higher minimum similarity, then
   the earlier one); then the maximal candidates are found again among the layers not yet in a block,
   and so on until none are left. Blocks therefore never overlap.
3. A block ``a..b`` implies the plan "drop ``a+1..b``": its *first* layer is kept. The first layer
   receives exactly the input it had in the full model (the output of layer ``a-1``), and its output
   stands in for the block's last output, which it resembles by the rule (similarity ``>= threshold``);
   keeping any later layer would feed that layer an input it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ConvexityInputError
from core.io.records import Record

__all__ = [
    "BlockStability",
    "BoundaryStability",
    "Redundancy",
    "RedundancyBlock",
    "block_stability",
    "redundancy_blocks",
]


@dataclass(frozen=True)
class RedundancyBlock(Record):
    """Layers ``first..last`` (1-based, inclusive) pairwise similar above the threshold."""

    first: int
    last: int
    min_similarity: float

    @property
    def layers(self) -> tuple[int, ...]:
        """Every layer of the block."""
        return tuple(range(self.first, self.last + 1))

    @property
    def kept(self) -> int:
        """The layer the block's plan keeps: its first (see the module docstring for why)."""
        return self.first

    @property
    def dropped(self) -> tuple[int, ...]:
        """The layers the block's plan drops: all but the first."""
        return tuple(range(self.first + 1, self.last + 1))


@dataclass(frozen=True)
class Redundancy(Record):
    """The blocks found in one similarity map, with how they were found."""

    criterion: str
    threshold: float
    n_layers: int
    blocks: tuple[RedundancyBlock, ...]

    @property
    def dropped(self) -> tuple[int, ...]:
        """Every layer the blocks' plans drop together, increasing."""
        return tuple(sorted(layer for block in self.blocks for layer in block.dropped))


def _pair_min(similarity: np.ndarray) -> np.ndarray:
    """The symmetrised map ``min(S, S^T)`` with NaN as -inf (a NaN pair never counts as similar)."""
    sym = np.minimum(similarity, similarity.T)
    return np.where(np.isnan(sym), -np.inf, sym)


def _maximal_runs(sym: np.ndarray, threshold: float, layers: list[int]) -> list[RedundancyBlock]:
    """Maximal runs ``a..b`` (``b > a``) of ``layers`` with every pair ``>= threshold``."""
    runs: list[RedundancyBlock] = []
    for a in layers:
        b = a
        while b + 1 in layers and bool(np.all(sym[a : b + 2, a : b + 2] >= threshold)):
            b += 1
        if b > a and not any(r.first <= a and b <= r.last for r in runs):
            runs.append(RedundancyBlock(a, b, float(sym[a : b + 1, a : b + 1].min())))
    return runs


def redundancy_blocks(similarity: np.ndarray, threshold: float, criterion: str = "") -> Redundancy:
    """The non-overlapping redundancy blocks of a (L+1) x (L+1) similarity map over hidden states 0..L."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] < 2:
        raise ConvexityInputError(
            f"a similarity map must be square over hidden states 0..L, got shape {sim.shape}"
        )
    if not np.isfinite(threshold):
        raise ConvexityInputError(f"the threshold must be a finite number, got {threshold!r}")
    n_layers = sim.shape[0] - 1
    sym = _pair_min(sim)
    free = list(range(1, n_layers + 1))
    chosen: list[RedundancyBlock] = []
    while True:
        candidates = []
        # runs inside the layers not yet taken, split where a chosen block sits
        for segment in _segments(free):
            candidates.extend(_maximal_runs(sym, threshold, segment))
        if not candidates:
            break
        best = min(candidates, key=lambda r: (-(r.last - r.first), -r.min_similarity, r.first))
        chosen.append(best)
        free = [layer for layer in free if not best.first <= layer <= best.last]
    return Redundancy(
        criterion=criterion,
        threshold=float(threshold),
        n_layers=n_layers,
        blocks=tuple(sorted(chosen, key=lambda r: r.first)),
    )


def _segments(layers: list[int]) -> list[list[int]]:
    """Split increasing layer indices into runs of consecutive ones."""
    out: list[list[int]] = []
    for layer in layers:
        if out and layer == out[-1][-1] + 1:
            out[-1].append(layer)
        else:
            out.append([layer])
    return out


@dataclass(frozen=True)
class BoundaryStability(Record):
    """How often one block of the full-data map reappears in the half-sample maps.

    ``exact``: share of half-samples with a block ``first..last``; ``start`` / ``end``: share with a
    block starting at ``first`` / ending at ``last`` (each boundary on its own)."""

    first: int
    last: int
    exact: float
    start: float
    end: float


@dataclass(frozen=True)
class BlockStability(Record):
    """The blocks' stability over ``n_resamples`` seeded half-samples (``scheme`` says what was halved)."""

    n_resamples: int
    seed: int
    scheme: str
    blocks: tuple[BoundaryStability, ...]
    n_blocks: tuple[int, ...] = ()  # blocks found in each half-sample's map

    def of(self, block: RedundancyBlock) -> BoundaryStability | None:
        """The stability of one block of the full-data map (None if it was not measured)."""
        for b in self.blocks:
            if (b.first, b.last) == (block.first, block.last):
                return b
        return None


def block_stability(
    full: Redundancy, half_maps: list[np.ndarray], seed: int, scheme: str
) -> BlockStability:
    """How often each block of ``full`` reappears when the same rule (its criterion and threshold) runs
    on the similarity maps of half-samples of the clips."""
    if not half_maps:
        raise ConvexityInputError("block stability needs at least one half-sample map")
    found = [redundancy_blocks(m, full.threshold, full.criterion).blocks for m in half_maps]
    n = len(found)
    rows = []
    for block in full.blocks:
        exact = sum(any((b.first, b.last) == (block.first, block.last) for b in bs) for bs in found)
        start = sum(any(b.first == block.first for b in bs) for bs in found)
        end = sum(any(b.last == block.last for b in bs) for bs in found)
        rows.append(BoundaryStability(block.first, block.last, exact / n, start / n, end / n))
    return BlockStability(n, int(seed), scheme, tuple(rows), tuple(len(bs) for bs in found))
