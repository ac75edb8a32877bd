"""Chance level: permutations keep class sizes, the exact mean matches many exhaustive relabellings, the
real curves are unchanged and the chance sets share the real sets' trees."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConvexityInputError
from core.geometry.chance import chance_curves, chance_normalised, permuted_labels
from core.geometry.convexity import layerwise_convexity
from core.geometry.options import ConvexityOptions


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
    alone = layerwise_convexity(
        x, {"w": y}, ConvexityOptions(max_pairs_per_class=None, device="cpu")
    )["w"]
    real, chance = chance_curves(
        x, {"w": y}, ConvexityOptions(max_pairs_per_class=None, device="cpu"), n_permutations=4
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
        x, {"r": y}, ConvexityOptions(max_pairs_per_class=None, device="cpu"), n_permutations=12
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


def _clusters(n_per: int = 12, n_classes: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per)
    x = rng.normal(size=(len(y), 2, 6))
    x[:, 1] += y[:, None] * 1.5  # layer 1 separates the classes, layer 0 does not
    return x, y


@pytest.mark.parametrize("singletons", [False, True])
def test_exact_chance_mean_matches_the_mean_over_many_exhaustive_relabellings(singletons):
    """Known truth: 300 uniform relabellings scored exhaustively; the exact mean must lie within 3
    Monte Carlo SEs of their mean on both layers (with singleton labels, interior vertices that no
    class can own are left out of the expectation)."""
    x, y = _clusters()
    labels = y.astype(object)
    if singletons:
        labels[:6] = [f"solo{i}" for i in range(6)]
    _, chance = chance_curves(
        x,
        {"w": labels},
        ConvexityOptions(max_pairs_per_class=None, k=4, device="cpu"),
        n_permutations=2,
    )
    perms = {f"p{i}": p for i, p in enumerate(permuted_labels(labels, 300, seed=9))}
    exact = layerwise_convexity(
        x, perms, ConvexityOptions(max_pairs_per_class=None, k=4, device="cpu")
    )
    table = np.array([c.scores for c in exact.values()])
    mc_se = table.std(axis=0, ddof=1) / np.sqrt(len(table))
    assert np.all(np.abs(np.array(chance["w"].mean) - table.mean(axis=0)) < 3 * mc_se + 1e-12)
    assert chance["w"].mean_se == (0.0, 0.0)  # every tree was run: the mean is exact


def test_sampled_chance_shares_the_real_trees_and_keeps_the_real_curve():
    """At a target SE the pooled and permuted sets add few trees to the real sets' own, and the real
    curve is the one the real labels give alone."""
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(8), 60)
    x = rng.normal(size=(len(y), 1, 8)) + y[:, None, None] * 0.4
    alone = layerwise_convexity(x, {"w": y}, ConvexityOptions(target_se=0.01, device="cpu"))["w"]
    real, chance = chance_curves(
        x, {"w": y}, ConvexityOptions(target_se=0.01, device="cpu"), n_permutations=6
    )
    assert np.allclose(real["w"].scores, alone.scores)
    trees_alone = alone.results[0].settings["n_shortest_path_trees"]
    trees_joint = real["w"].results[0].settings["n_shortest_path_trees"]
    assert not alone.results[0].exact and trees_joint <= 1.25 * trees_alone
    c = chance["w"]
    assert c.mean_se[0] < 0.002 and c.std[0] > 0.0  # no singletons: pooled rows are all 1, SE 0
