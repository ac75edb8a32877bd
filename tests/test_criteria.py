"""Layer-selection criteria on constructed data with known answers, and shared-graph reuse."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import core.geometry.criteria as criteria
from core.geometry.convexity import convexity_curve, layerwise_convexity
from core.geometry.criteria import (
    CRITERIA,
    PRUNE_RULES,
    CriterionResult,
    GraphCollector,
    angular_distance,
    angular_distance_curve,
    block_influence,
    compare_prune_points,
    consecutive_cosine,
    from_convexity_curve,
    knn_accuracy,
    knn_accuracy_from_graphs,
    knn_graphs,
    knn_vote,
    linear_cka,
    linear_probe,
    mutual_knn,
    mutual_knn_from_graphs,
    nearest_centroid,
    run_criteria,
    suggest_prune_point,
)
from core.geometry.knn import KnnGraph
from core.geometry.options import ConvexityOptions
from core.geometry.synthetic import synthetic_layers


def _blobs(
    n_per_class: int = 60, classes: int = 4, dim: int = 12, sep: float = 10.0, seed: int = 0
):
    """Well separated Gaussian classes: (N, D) points and labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.normal(size=(classes, dim)) * sep
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def _identical_layers(n: int = 150, layers: int = 4, dim: int = 10, seed: int = 1) -> np.ndarray:
    """(N, layers, D) features whose layers are all the same."""
    x = np.random.default_rng(seed).normal(size=(n, 1, dim))
    return np.repeat(x, layers, axis=1)


# ---- identical layers ----------------------------------------------------------------------------


def test_identical_layers_give_perfect_similarity():
    feats = _identical_layers()
    np.testing.assert_allclose(linear_cka(feats).values, 1.0, atol=1e-12)
    cos, _ = consecutive_cosine(feats)
    assert math.isnan(cos[0])
    np.testing.assert_allclose(cos[1:], 1.0, atol=1e-12)
    bi = block_influence(feats)
    np.testing.assert_allclose(bi.values[1:], 0.0, atol=1e-12)
    np.testing.assert_allclose(angular_distance(feats).values, 0.0, atol=1e-12)
    np.testing.assert_allclose(mutual_knn(feats, k=5).values, 1.0)


def test_angles_and_block_influence_known_values():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(80, 6))
    b = np.stack([-a[:, 1], a[:, 0], *a[:, 2:].T], axis=1)  # rotate the first two coordinates by 90
    b[:, 2:] = 0.0
    a[:, 2:] = 0.0
    feats = np.stack([a, b, -a], axis=1)  # layer 1 orthogonal to 0; layer 2 opposite to 0
    ang = angular_distance(feats, n=1).values
    np.testing.assert_allclose(ang[0, 1], 0.5, atol=1e-12)
    np.testing.assert_allclose(ang[0, 2], 1.0, atol=1e-12)
    np.testing.assert_allclose(ang, ang.T)
    bi = block_influence(feats).values
    np.testing.assert_allclose(bi[1:], [1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(
        angular_distance_curve(angular_distance(feats, n=1)), [0.5, 0.5, np.nan]
    )


# ---- CKA -----------------------------------------------------------------------------------------


def _gram_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Reference linear CKA from centred Gram matrices (HSIC form)."""
    h = np.eye(len(x)) - 1.0 / len(x)
    k, m = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float((k * m).sum() / math.sqrt((k * k).sum() * (m * m).sum()))


def test_cka_invariances_and_reference():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    y = rng.normal(size=(120, 8)) + 0.5 * x
    feats = np.stack([x, 3.7 * x @ q + 5.0, y], axis=1)
    values = linear_cka(feats).values
    np.testing.assert_allclose(values[0, 1], 1.0, atol=1e-12)  # orthogonal, isotropic scale, shift
    np.testing.assert_allclose(np.diag(values), 1.0, atol=1e-12)
    np.testing.assert_allclose(values[0, 2], _gram_cka(x, y), rtol=1e-10)
    np.testing.assert_allclose(values, values.T)
    assert 0.0 < values[0, 2] < 1.0


# ---- supervised curves ---------------------------------------------------------------------------


def test_probe_and_knn_separated_vs_shuffled():
    x, labels = _blobs()
    noise = np.random.default_rng(5).normal(size=x.shape)
    feats = np.stack([noise, x], axis=1)
    probe = linear_probe(feats, labels, n_splits=4)
    knn = knn_accuracy(feats, labels, k=5)
    for res in (probe, knn):
        assert res.kind == "curve" and res.values.shape == (2,)
        assert res.values[1] > 0.99
        assert res.values[0] < 0.45  # noise layer: chance is 0.25
    assert probe.uncertainty is not None and probe.uncertainty.shape == (2,)
    np.testing.assert_allclose(
        knn.uncertainty, np.sqrt(knn.values * (1 - knn.values) / len(labels))
    )
    shuffled = np.random.default_rng(6).permutation(labels)
    assert linear_probe(feats, shuffled, n_splits=4).values[1] < 0.45
    assert knn_accuracy(feats, shuffled, k=5).values[1] < 0.45


def test_nearest_centroid_equals_refitting_without_each_clip():
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import NearestCentroid

    rng = np.random.default_rng(3)
    labels = np.array([0] * 9 + [1] * 7 + [2] * 5 + [3] * 2)
    feats = np.stack([rng.normal(size=(23, 6)) * 3, rng.normal(size=(23, 6)) * 100], axis=1)
    feats[:, 1] += 1e4 + labels[:, None] * 400.0  # separated, far from the origin (cancellation)
    result = nearest_centroid(feats, labels)
    for layer in range(2):
        refitted = cross_val_predict(NearestCentroid(), feats[:, layer], labels, cv=LeaveOneOut())
        assert result.values[layer] == pytest.approx((refitted == labels).mean())
    assert result.values[1] == 1.0 and result.values[0] < 0.7
    np.testing.assert_allclose(
        result.uncertainty, np.sqrt(result.values * (1 - result.values) / len(labels))
    )
    assert result.settings["chance"] == pytest.approx(9 / 23)


def test_a_clip_alone_in_its_class_is_never_given_it():
    feats = np.array([[[0.0]], [[0.2]], [[10.0]], [[10.2]], [[5.0]]])
    result = nearest_centroid(feats, ["a", "a", "b", "b", "c"])
    assert result.values[0] == pytest.approx(4 / 5)  # "c" has no mean left without its clip
    assert result.settings["single_clip_classes"] == 1


def test_probe_is_seeded_and_excludes_tiny_classes():
    x, labels = _blobs(n_per_class=30, classes=3)
    feats = np.stack([x, x + np.random.default_rng(0).normal(size=x.shape)], axis=1)
    labels = labels.astype(object)
    labels[0] = "lonely"  # a class with one point cannot be stratified
    a = linear_probe(feats, labels, n_splits=3, seed=4)
    b = linear_probe(feats, labels, n_splits=3, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.settings["n_excluded_classes"] == 1 and a.settings["n_points"] == len(labels) - 1


def test_knn_vote_ties_go_to_nearest():
    rows = np.array(
        [
            [1, 2, 2, 1, 3],  # 1 and 2 tie with two votes: the nearest (position 0) is 1
            [3, 2, 2, 1, 1],  # 2 and 1 tie: 2 comes first
            [0, 1, 2, 3, 4],  # all tie: nearest
            [4, 5, 5, 5, 4],  # clear majority 5
        ]
    )
    np.testing.assert_array_equal(knn_vote(rows), [1, 2, 0, 5])


def test_knn_accuracy_from_handmade_graph_and_smaller_k():
    idx = torch.tensor([[1, 2, 3], [0, 3, 2], [3, 0, 1], [2, 1, 0]])
    graph = KnnGraph(idx, torch.zeros(4, 3, dtype=torch.float64))
    labels = ["a", "a", "b", "b"]
    # k = 1: 0->1 (a ok), 1->0 (a ok), 2->3 (b ok), 3->2 (b ok)
    assert knn_accuracy_from_graphs({0: graph}, labels, k=1).values[0] == 1.0
    # k = 3: 0 sees a,b,b -> b (wrong); 1 sees a,b,b -> b; 2 sees b,a,a -> a; 3 sees b,a,a -> a
    assert knn_accuracy_from_graphs({0: graph}, labels).values[0] == 0.0


# ---- shared graphs -------------------------------------------------------------------------------


def test_graphs_from_convexity_are_reused_not_rebuilt(monkeypatch):
    feats, labels = synthetic_layers(300, 5, 16, 4, seed=2)
    collector = GraphCollector()
    convexity_curve(
        feats,
        labels,
        ConvexityOptions(k=6, max_pairs_per_class=50, match_pair_precision=False),
        on_graph=collector,
    )
    assert sorted(collector) == [0, 1, 2, 3]
    fresh_knn = knn_accuracy(feats, labels, k=6)
    fresh_mutual = mutual_knn(feats, k=6)

    def spy(*args, **kwargs):
        raise AssertionError("knn_graph was called although every layer's graph was given")

    monkeypatch.setattr(criteria, "knn_graph", spy)
    reused = knn_accuracy(feats, labels, k=6, graphs=collector)
    np.testing.assert_array_equal(reused.values, fresh_knn.values)
    np.testing.assert_array_equal(
        knn_accuracy_from_graphs(collector, labels).values, fresh_knn.values
    )
    np.testing.assert_array_equal(
        mutual_knn(feats, k=6, graphs=collector).values, fresh_mutual.values
    )
    # a smaller k reuses the same graphs (first columns); a larger one would need a rebuild
    knn_accuracy(feats, labels, k=3, graphs=collector)
    with pytest.raises(AssertionError, match="knn_graph was called"):
        knn_accuracy(feats, labels, k=8, graphs=collector)
    results = run_criteria(
        feats, labels, names=["knn_accuracy", "mutual_knn"], graphs=collector, k=6
    )
    np.testing.assert_array_equal(results["knn_accuracy"].values, fresh_knn.values)


def test_knn_graphs_builds_only_missing_layers(monkeypatch):
    feats, _ = synthetic_layers(60, 3, 8, 3, seed=0)
    full = knn_graphs(feats, k=4)
    calls = []
    real = criteria.knn_graph

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(criteria, "knn_graph", counting)
    out = knn_graphs(feats, k=4, graphs={0: full[0], 2: full[2]})
    assert len(calls) == 1 and out[0] is full[0] and out[2] is full[2]
    assert torch.equal(out[1].indices, full[1].indices)


def test_mutual_knn_handmade_overlap():
    a = KnnGraph(torch.tensor([[1, 2], [0, 2], [0, 1]]), torch.zeros(3, 2, dtype=torch.float64))
    b = KnnGraph(torch.tensor([[2, 1], [2, 0], [1, 0]]), torch.zeros(3, 2, dtype=torch.float64))
    c = KnnGraph(torch.tensor([[1, 3], [3, 2], [3, 2]]), torch.zeros(3, 2, dtype=torch.float64))
    res = mutual_knn_from_graphs({0: a, 1: b, 2: c})
    assert res.values[0, 1] == 1.0  # same sets in another order
    np.testing.assert_allclose(res.values[0, 2], (1 / 2 + 1 / 2 + 0) / 3)
    np.testing.assert_allclose(np.diag(res.values), 1.0)


# ---- prune rules ---------------------------------------------------------------------------------


def test_suggest_prune_point_rules():
    assert suggest_prune_point([0.1, 0.5, 0.96, 1.0, 0.9]) == 2
    assert suggest_prune_point([0.1, 0.5, 0.96, 1.0, 0.9], fraction=1.0) == 3
    assert suggest_prune_point([1.0, 0.2, 0.5, 0.4]) == 2  # layer 0 is never a candidate
    assert suggest_prune_point([0.0, np.nan, 0.3, 0.31]) == 2
    assert suggest_prune_point([0.2, 0.3, 0.6, 1.0], fraction=0.5, baseline=0.2) == 2
    with pytest.raises(ValueError):
        suggest_prune_point([0.5])


def _curve(values, rule, **settings) -> CriterionResult:
    return CriterionResult("x", "curve", np.asarray(values, float), None, settings, True, rule)


def test_cumulative_share_rule():
    bi = [np.nan, 0.5, 0.3, 0.15, 0.04, 0.01]
    assert _curve(bi, "cumulative_share").proposed_prune_point(fraction=0.95) == 3
    assert _curve(bi, "cumulative_share").proposed_prune_point(fraction=0.99) == 4
    assert _curve([np.nan, 0, 0, 0], "cumulative_share").proposed_prune_point(fraction=0.9) == 1


def test_last_block_rule():
    m = np.array(
        [
            [1.0, 0.5, 0.4, 0.3, 0.3],
            [0.5, 1.0, 0.7, 0.6, 0.5],
            [0.4, 0.7, 1.0, 0.95, 0.92],
            [0.3, 0.6, 0.95, 1.0, 0.97],
            [0.3, 0.5, 0.92, 0.97, 1.0],
        ]
    )
    res = CriterionResult("m", "matrix", m, None, {"threshold": 0.9}, True, "last_block")
    assert res.proposed_prune_point() == 2
    assert res.proposed_prune_point(threshold=0.96) == 3
    assert res.proposed_prune_point(threshold=0.99) == 4  # only the final layer
    assert res.proposed_prune_point(threshold=0.2) == 1  # never layer 0


def test_gromov_block_rule():
    m = np.full((6, 6), 0.5)
    np.fill_diagonal(m, 0.0)
    m[0, 2] = m[2, 0] = 0.01  # ignored: l = 0 is not a candidate
    m[3, 5] = m[5, 3] = 0.1
    m[1, 3] = m[3, 1] = 0.2
    res = CriterionResult("a", "matrix", m, None, {"n": 2}, False, "gromov_block")
    assert res.proposed_prune_point() == 3
    with pytest.raises(ValueError):
        res.proposed_prune_point(n=5)


def test_compare_prune_points_table():
    feats, labels = synthetic_layers(200, 4, 12, 5, seed=3)
    results = run_criteria(feats, labels, options={"linear_probe": {"n_splits": 3}}, k=5)
    assert set(results) == set(CRITERIA)
    rows = compare_prune_points(results, convexity_curve=np.array([0.2, 0.5, 0.96, 1.0, 0.8]))
    assert [r["criterion"] for r in rows] == ["convexity", *CRITERIA]
    assert rows[0]["layer"] == 2
    for row in rows:
        assert 1 <= row["layer"] <= 4
        assert row["rule"] in {text for _, text in PRUNE_RULES.values()}
    for res in results.values():
        expected = (5,) if res.kind == "curve" else (5, 5)
        assert res.values.shape == expected and res.seconds >= 0
    assert set(run_criteria(feats, None, names=None)) == {
        n for n, s in CRITERIA.items() if not s.needs_labels
    }


def test_from_convexity_curve_and_named_curves():
    feats, labels = synthetic_layers(200, 4, 12, 4, seed=4)
    curves = layerwise_convexity(
        feats,
        {"a": labels, "b": labels[::-1].copy()},
        ConvexityOptions(k=5, max_pairs_per_class=30, match_pair_precision=False),
    )
    res = from_convexity_curve(curves["a"])
    np.testing.assert_array_equal(res.values, curves["a"].scores)
    assert res.proposed_prune_point() == suggest_prune_point(curves["a"].scores)
    rows = compare_prune_points({}, convexity_curve=curves)
    assert [r["criterion"] for r in rows] == ["convexity[a]", "convexity[b]"]
