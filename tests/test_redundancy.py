"""Redundancy blocks on synthetic similarity maps with known blocks, and on a real criterion's map."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConvexityInputError
from core.geometry.criteria import linear_cka
from core.geometry.redundancy import Redundancy, RedundancyBlock, redundancy_blocks
from core.models.plans import PruningPlan


def block_map(n_layers: int, blocks: list[tuple[int, int]], inside: float = 0.95) -> np.ndarray:
    """An (L+1) x (L+1) map: 1 on the diagonal, ``inside`` within each block of layers, 0.2 elsewhere."""
    sim = np.full((n_layers + 1, n_layers + 1), 0.2)
    for a, b in blocks:
        sim[a : b + 1, a : b + 1] = inside
    np.fill_diagonal(sim, 1.0)
    return sim


def spans(result: Redundancy) -> list[tuple[int, int]]:
    return [(b.first, b.last) for b in result.blocks]


def test_no_block() -> None:
    result = redundancy_blocks(block_map(6, []), 0.9)
    assert result.blocks == () and result.dropped == () and result.n_layers == 6


def test_one_block_and_its_plan() -> None:
    result = redundancy_blocks(block_map(12, [(3, 6)]), 0.9, criterion="linear_cka")
    assert spans(result) == [(3, 6)]
    block = result.blocks[0]
    assert block.kept == 3 and block.dropped == (4, 5, 6)
    assert block.min_similarity == pytest.approx(0.95)
    plan = PruningPlan.drop(block.dropped, result.n_layers)
    assert plan.describe() == "drop 4-6" and plan.size == 9
    assert Redundancy.from_dict(result.to_dict()) == result


def test_two_blocks_and_state_zero_never_joins() -> None:
    sim = block_map(8, [(1, 3), (6, 8)])
    sim[0, :4] = sim[:4, 0] = 0.99  # the front-end resembles layers 1-3: still not droppable
    result = redundancy_blocks(sim, 0.9)
    assert spans(result) == [(1, 3), (6, 8)]
    assert result.dropped == (2, 3, 7, 8)


def test_overlapping_candidates_longest_wins_then_the_rest_is_searched_again() -> None:
    # 2..5 and 4..8 are both maximal (2 and 8 are not similar); 4..8 is longer and wins; 2..3 remains
    sim = block_map(10, [(2, 5), (4, 8)])
    result = redundancy_blocks(sim, 0.9)
    assert spans(result) == [(2, 3), (4, 8)]


def test_equal_length_overlap_prefers_higher_similarity_then_earlier() -> None:
    sim = block_map(8, [(2, 4)], inside=0.93)
    sim[3:6, 3:6] = np.maximum(sim[3:6, 3:6], 0.97)  # 3..5 equally long, more similar
    np.fill_diagonal(sim, 1.0)
    assert spans(redundancy_blocks(sim, 0.9)) == [(3, 5)]
    tie = block_map(8, [(2, 4), (3, 5)])
    assert spans(redundancy_blocks(tie, 0.9)) == [(2, 4)]


def test_threshold_edges() -> None:
    sim = block_map(5, [(2, 4)], inside=0.9)
    assert spans(redundancy_blocks(sim, 0.9)) == [(2, 4)]  # >= threshold counts
    assert spans(redundancy_blocks(sim, np.nextafter(0.9, 1.0))) == []
    assert spans(redundancy_blocks(sim, -1.0)) == [
        (1, 5)
    ]  # everything similar: one block of all layers
    assert redundancy_blocks(sim, -1.0).blocks[0].dropped == (2, 3, 4, 5)


def test_asymmetric_and_nan_pairs() -> None:
    sim = block_map(5, [(2, 4)])
    sim[2, 4] = 0.5  # one direction dissimilar: the pair fails
    assert spans(redundancy_blocks(sim, 0.9)) == [(2, 3)]
    sim = block_map(5, [(2, 4)])
    sim[3, 4] = sim[4, 3] = np.nan
    assert spans(redundancy_blocks(sim, 0.9)) == [(2, 3)]


@pytest.mark.parametrize("bad", [np.zeros((3, 4)), np.zeros((1, 1)), np.zeros(5)])
def test_bad_maps_are_one_line(bad: np.ndarray) -> None:
    with pytest.raises(ConvexityInputError, match="square"):
        redundancy_blocks(bad, 0.9)


def test_block_from_linear_cka_of_features_with_a_copied_block() -> None:
    """Layers 3-5 share one representation (up to small noise): linear CKA's map yields the block 3..5."""
    rng = np.random.default_rng(0)
    n, n_layers, d = 200, 7, 16
    x = rng.standard_normal((n, n_layers + 1, d))
    x[:, 4] = x[:, 3] + 0.01 * rng.standard_normal((n, d))
    x[:, 5] = x[:, 3] @ np.linalg.qr(rng.standard_normal((d, d)))[0]  # a rotation: CKA 1
    result = redundancy_blocks(linear_cka(x).values, 0.9, criterion="linear_cka")
    assert spans(result) == [(3, 5)]
    assert isinstance(result.blocks[0], RedundancyBlock)
