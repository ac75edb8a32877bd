"""Geometry input validation (core.geometry.validation): the audit's defects, each with a test that failed before.

Features scaled far out of float range give the unscaled score (exact power-of-two rescale); torch tensors
with ``requires_grad`` and numpy views with negative strides are accepted; 2-D labels and NaN labels, non-finite
features, wrong shapes and length mismatches are refused with one-line ``ConvexityInputError``s.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import ConvexityInputError, LabError
from core.geometry.convexity import convexity_curve, graph_convexity, layerwise_convexity
from core.geometry.criteria import knn_accuracy, linear_cka
from core.geometry.knn import knn_graph
from core.geometry.options import ConvexityOptions
from core.geometry.projections import layer_embeddings
from core.geometry.teaching import knn_csr
from core.geometry.validation import (
    as_features,
    as_labels,
    power_of_two_scaled,
    unscaled_distances,
)

N, D = 60, 5


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping Gaussian blobs in 5-D (so the score is neither 0 nor 1)."""
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(3), N // 3)
    points = rng.normal(size=(N, D)) + 1.5 * labels[:, None]
    return points, labels


def _score(points, labels) -> float:
    options = ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    return graph_convexity(points, labels, options).score


# ------------------------------------------------------------------------------------------------
# Magnitude: exact power-of-two rescale


def test_huge_features_give_the_unscaled_score(blobs):
    points, labels = blobs
    expected = _score(points, labels)
    assert 0.0 < expected < 1.0
    assert _score(points * 1e200, labels) == expected  # squared differences overflowed before
    assert _score(points * 1e-200, labels) == expected  # ... and underflowed to 0 (all duplicates)


def test_power_of_two_rescale_is_exact(blobs):
    points, labels = blobs
    x = torch.from_numpy(points)
    plain = knn_graph(x, 5)
    for exponent in (700, 300, -300, -700):
        big = knn_graph(x * 2.0**exponent, 5)
        assert torch.equal(big.indices, plain.indices)
        # distances in original units, exactly the plain ones scaled
        assert torch.equal(big.distances, plain.distances * 2.0**exponent)
        curves = convexity_curve(
            (points * 2.0**exponent)[:, None, :], labels, ConvexityOptions(k=5)
        )
        assert (
            curves.results[0].to_dict()["per_class"]
            == (
                convexity_curve(points[:, None, :], labels, ConvexityOptions(k=5))
                .results[0]
                .to_dict()["per_class"]
            )
        )


def test_in_range_features_are_not_rescaled(blobs):
    x = torch.from_numpy(blobs[0])
    scaled, exponent = power_of_two_scaled(x)
    assert exponent == 0 and scaled is x
    scaled, exponent = power_of_two_scaled(x * 1e200)
    assert 0.5 <= float(scaled.abs().max()) < 1.0
    assert torch.equal(unscaled_distances(scaled, exponent), x * 1e200)


def test_rescale_that_would_lose_bits_is_refused():
    x = torch.tensor([[1e300, 0.0], [0.0, 1e-30], [1.0, 2.0]], dtype=torch.float64)
    with pytest.raises(ConvexityInputError, match="orders of magnitude"):
        knn_graph(x, 1)


def test_distances_beyond_float64_are_refused():
    x = torch.tensor([[1.5e308], [-1.5e308], [0.0]], dtype=torch.float64)
    with pytest.raises(ConvexityInputError, match="exceed float64"):
        knn_graph(x, 2)


# ------------------------------------------------------------------------------------------------
# Accepted: grad tensors, negative strides


def test_tensor_requiring_grad_is_accepted(blobs):
    points, labels = blobs
    x = torch.from_numpy(points).requires_grad_(True)
    assert _score(x, labels) == _score(points, labels)
    assert not as_features(x).requires_grad
    assert knn_accuracy(x[:, None, :], labels, k=3).values.shape == (1,)


def test_negative_stride_view_is_accepted(blobs):
    points, labels = blobs
    flipped = points[::-1]
    assert flipped.strides[0] < 0
    assert _score(flipped, labels[::-1]) == _score(points[::-1].copy(), labels[::-1].copy())
    column_flip = points[:, ::-1]  # also negative, along D: distances unchanged
    assert _score(column_flip, labels) == _score(points, labels)
    assert knn_csr(flipped, 3).indptr.shape == (N + 1,)


def test_big_endian_features_are_accepted(blobs):
    points, labels = blobs
    assert _score(points.astype(">f8"), labels) == _score(points, labels)


# ------------------------------------------------------------------------------------------------
# Rejected: labels


def test_two_dimensional_labels_are_rejected(blobs):
    points, labels = blobs
    for bad in (
        labels[:, None],
        np.stack([labels, labels], axis=1),
        torch.from_numpy(labels)[:, None],
    ):
        with pytest.raises(ConvexityInputError, match="1-D") as err:
            _score(points, bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ConvexityInputError, match="1-D"):
        _score(points, [[int(v)] for v in labels])  # nested Python lists too


def test_nan_labels_are_rejected(blobs):
    points, labels = blobs
    floats = labels.astype(float)
    floats[[3, 40]] = np.nan
    with pytest.raises(ConvexityInputError, match="2 NaN") as err:
        _score(points, floats)
    assert "\n" not in str(err.value)
    with pytest.raises(ConvexityInputError, match="NaN"):
        _score(points, [float("nan")] + [float(v) for v in labels[1:]])
    with pytest.raises(ConvexityInputError, match="NaN"):
        knn_accuracy(points[:, None, :], floats, k=3)


def test_labels_keep_their_values_and_accept_tuples(blobs):
    labels = [("spk", i % 3) for i in range(N)]
    out = as_labels(labels, N)
    assert out.shape == (N,) and out[4] == ("spk", 1)
    assert as_labels(np.array(["a", "b"]), 2).dtype.kind == "U"
    with pytest.raises(ConvexityInputError, match="sequence"):
        as_labels("ab", 2)


def test_label_length_mismatch_names_the_label_set(blobs):
    points, labels = blobs
    with pytest.raises(ConvexityInputError, match="speaker have 59 entries but features have 60"):
        layerwise_convexity(
            points[:, None, :], {"word": labels, "speaker": labels[:-1]}, ConvexityOptions(k=5)
        )


# ------------------------------------------------------------------------------------------------
# Rejected: features


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (np.ones(N), r"shape \(N, D\)"),
        (np.ones((N, 2, 3)), r"shape \(N, D\)"),
        (np.ones((N, 0)), "empty"),
        (np.ones((N, 2), dtype=complex), "real numbers"),
        (np.array([["a", "b"]] * N), "real numbers"),
        (torch.ones((N, 2), dtype=torch.bool), "real numbers"),
    ],
)
def test_bad_features_are_rejected(blobs, features, message):
    with pytest.raises(ConvexityInputError, match=message) as err:
        _score(features, blobs[1])
    assert "\n" not in str(err.value)


def test_non_finite_features_are_rejected_everywhere(blobs):
    points, labels = blobs
    bad = points.copy()
    bad[5, 1] = np.inf
    bad[9, 0] = np.nan
    with pytest.raises(
        ConvexityInputError,
        match=r"NaN or infinite values in layer 0: 2 points \(e.g. rows \[5, 9\]\)",
    ):
        _score(bad, labels)
    with pytest.raises(ConvexityInputError, match="NaN or infinite"):
        knn_graph(torch.from_numpy(bad), 3)
    with pytest.raises(ConvexityInputError, match="NaN or infinite values in layer 0"):
        linear_cka(bad[:, None, :])
    with pytest.raises(ConvexityInputError, match="shape"):
        layer_embeddings(points)
    with pytest.raises(LabError, match="labels have 59 entries"):
        knn_accuracy(points[:, None, :], labels[:-1], k=3)
