"""The prune point's stability verdict: a share of datasets the point would move in, calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from core.geometry.prune_stability import MOVE_SHARE, prune_stability, pseudo_datasets
from tests.helpers.simulation import stability

LAYERS = [0, 1, 2, 3, 4]
CURVE = np.array([0.1, 0.3, 0.92, 0.93, 0.94])


def test_pseudo_datasets_scale_half_sample_deviations_to_the_full_size():
    halves = np.array([[0.0, 0.2], [0.0, 0.4]])
    out = pseudo_datasets(np.array([0.5, 0.5]), halves, np.array([1.0, 0.5]))
    assert np.allclose(out, [[0.5, 0.45], [0.5, 0.55]])


def test_half_samples_that_move_only_at_half_size_do_not_flag_the_point():
    """Half-samples scatter widely (so some cross the bar), but scaled to the full size the point
    stays in almost every pseudo-dataset: the share is small and the flag does not fire."""
    rng = np.random.default_rng(0)
    halves = CURVE + rng.normal(0, 0.03, size=(40, 5))
    plain = prune_stability("w", LAYERS, CURVE, [0.0] * 5, halves)
    assert plain.threshold.moves  # any half-sample moving it flags it
    calibrated = prune_stability(
        "w", LAYERS, CURVE, [0.0] * 5, halves, scale=np.full(5, 0.2), level=0.9
    ).threshold
    assert calibrated.point == 2 and not calibrated.moves
    assert calibrated.move_share < MOVE_SHARE
    assert calibrated.move_low == 0.0 and 0 < calibrated.move_high < 0.2
    assert calibrated.summary().startswith("moves in 0% of datasets (90%: 0%-")


def test_a_point_that_moves_often_is_flagged_with_its_share():
    rng = np.random.default_rng(1)
    edge = np.array([0.1, 0.3, 0.885, 0.93, 0.94])  # layer 2 just under 0.95 x 0.94
    halves = edge + rng.normal(0, 0.02, size=(40, 5))
    rule = prune_stability(
        "w", LAYERS, edge, [0.0] * 5, halves, scale=np.ones(5), level=0.9
    ).threshold
    assert rule.moves and rule.move_low > MOVE_SHARE
    assert rule.move_low < rule.move_share < rule.move_high


@pytest.mark.slow  # ~20 s
def test_the_flag_rarely_fires_on_a_point_that_is_stable_in_truth():
    """36 datasets from a population whose threshold point is the same in >= 90 % of datasets: the
    calibrated flag fires on at most 10 % of those at that point, where "any half-sample moves it"
    fires on many more."""
    table = stability(n_truth=20, n_datasets=36, n_resamples=10)
    assert table.truth_share >= 0.9, table
    assert table.false_alarm <= 0.10, table
    assert table.any_move_at_mode / table.at_mode > 0.15, table
