"""The suggested prune point: first hidden state >= 1 that reaches a fraction of the maximum."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.geometry.prune_point import suggest_prune_point


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
    with pytest.raises(ValueError):
        suggest_prune_point(bad)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.01])
def test_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError):
        suggest_prune_point([0.1, 0.2], fraction=fraction)
