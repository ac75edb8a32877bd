"""Chance level: permutations keep class sizes, share the real labels' engine call, and match random labels."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConvexityInputError
from core.geometry.chance import chance_curves, chance_normalised, permuted_labels
from core.geometry.convexity import layerwise_convexity


def test_permutations_keep_class_sizes_and_singletons():
    labels = ["a"] * 5 + ["b"] * 3 + ["solo"] + ["c"] * 4
    perms = permuted_labels(labels, 6, seed=3)
    codes = np.array([{"a": 0, "b": 1, "solo": 2, "c": 3}[x] for x in labels])
    for p in perms:
        assert sorted(np.bincount(p)) == sorted(np.bincount(codes))
        assert p[8] == 2  # the singleton keeps its label
    assert any(not np.array_equal(p, codes) for p in perms)
    assert np.array_equal(permuted_labels(labels, 2, seed=3)[1], perms[1])  # prefix-stable


def test_real_curve_of_the_joint_call_equals_the_curve_alone():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3, 4)).astype(np.float32)
    y = np.repeat(np.arange(4), 15)
    x[:, 2] += y[:, None] * 2.0
    alone = layerwise_convexity(x, {"w": y}, max_pairs_per_class=None, device="cpu")["w"]
    real, chance = chance_curves(
        x, {"w": y}, n_permutations=4, max_pairs_per_class=None, device="cpu"
    )
    assert np.allclose(real["w"].scores, alone.scores)
    c = chance["w"]
    assert c.n_permutations == 4 and len(c.scores) == 4 and len(c.mean) == 3
    assert real["w"].scores[2] > c.mean[2] + 5 * max(c.std[2], 1e-3)  # separated layer: far above


def test_random_labels_score_within_their_chance_spread():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 1, 5))
    y = rng.integers(0, 2, size=120)
    real, chance = chance_curves(
        x, {"r": y}, n_permutations=12, max_pairs_per_class=None, device="cpu"
    )
    c = chance["r"]
    assert 0.4 < c.mean[0] < 0.65  # two classes: about half of every path
    assert abs(real["r"].scores[0] - c.mean[0]) < 4 * c.std[0]


def test_chance_normalised_maps_chance_to_zero_and_one_to_one():
    out = chance_normalised([0.5, 1.0, 0.2], [0.5, 0.2, 0.6])
    assert out[0] == pytest.approx(0.0) and out[1] == pytest.approx(1.0) and out[2] < 0


@pytest.mark.parametrize("k", [0, 1, 101])
def test_bad_permutation_counts_are_refused(k):
    with pytest.raises(ConvexityInputError, match="permutations"):
        chance_curves(np.zeros((10, 1, 2)), {"w": [0, 1] * 5}, n_permutations=k)
