"""The suggested prune point: first hidden state >= 1 that reaches a fraction of the maximum."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import LabError
from core.geometry.prune_point import (
    PrunePointChoice,
    choose_prune_points,
    local_peak_point,
    suggest_prune_point,
)


def test_first_layer_reaching_fraction_of_max():
    scores = [0.1, 0.3, 0.6, 0.96, 1.0, 0.9]
    assert suggest_prune_point(scores) == 3
    assert suggest_prune_point(scores, fraction=1.0) == 4
    assert suggest_prune_point(scores, fraction=0.5) == 2


def test_layer_zero_is_never_proposed_even_if_it_is_the_max():
    assert suggest_prune_point([1.0, 0.2, 0.5, 0.4]) == 2


def test_nan_is_ignored_and_all_nan_keeps_every_layer():
    assert suggest_prune_point([0.1, math.nan, 0.5, 0.49]) == 2
    assert suggest_prune_point(np.array([0.3, math.nan, math.nan])) == 2


def test_flat_curve_prunes_to_one_layer():
    assert suggest_prune_point([0.0, 0.0, 0.0]) == 1


@pytest.mark.parametrize("bad", [[0.5], [[0.1, 0.2]], []])
def test_rejects_bad_shapes(bad):
    with pytest.raises(LabError):
        suggest_prune_point(bad)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.01])
def test_rejects_bad_fraction(fraction):
    with pytest.raises(LabError):
        suggest_prune_point([0.1, 0.2], fraction=fraction)


def test_local_peak_is_the_first_layer_where_the_curve_stops_rising():
    assert local_peak_point([0.1, 0.3, 0.6, 0.55, 0.9]) == 2  # dips after layer 2, rises later
    assert local_peak_point([0.87, 0.87, 0.73, 0.38, 0.14]) == 1  # speaker curve: flat then falls
    assert local_peak_point([0.16, 0.22, 0.58, 0.87, 0.96]) == 4  # still rising at the top
    assert local_peak_point([0.5, 0.2]) == 1


def test_local_peak_ignores_rises_within_the_standard_error():
    scores = [0.2, 0.5, 0.52, 0.53, 0.9]
    assert local_peak_point(scores) == 4  # without SEs every small rise counts
    # step 0.02 < hypot(0.02, 0.02): layer 1 is the peak; a larger step stays a rise
    assert local_peak_point(scores, [0.0, 0.02, 0.02, 0.02, 0.02]) == 1
    assert local_peak_point([0.2, 0.5, 0.6, 0.6], [0.0, 0.02, 0.02, 0.02]) == 2


def test_local_peak_nan_counts_as_not_rising_and_shapes_are_checked():
    assert local_peak_point([0.1, 0.4, math.nan, 0.9]) == 1
    with pytest.raises(LabError):
        local_peak_point([0.1, 0.2, 0.3], [0.1, 0.1])
    with pytest.raises(LabError):
        local_peak_point([0.1])


def test_choice_reports_both_rules_and_explains_them():
    # a word-like curve that creeps up to the last layer: threshold keeps all, local peak prunes
    scores, sems = [0.12, 0.3, 0.75, 0.74, 0.8, 0.85, 0.87], [0.01] * 7
    choice = choose_prune_points(scores, sems, fraction=0.95)
    assert (choice.threshold_point, choice.local_peak) == (5, 2)
    assert (choice.max_layer, choice.max_score) == (6, 0.87)
    assert choice.target == pytest.approx(0.95 * 0.87)
    text = choice.explanation("word labels")
    assert "p = 5" in text and "p = 2" in text and "0.870" in text and "word labels" in text
    assert PrunePointChoice.from_dict(choice.to_dict()) == choice
    agree = choose_prune_points([0.9, 0.95, 0.5, 0.2])
    assert agree.threshold_point == agree.local_peak == 1
    assert "agree" in agree.explanation()
