"""Per-clip and per-class diagnostics against a one-path-at-a-time reference, and what they find."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from core.geometry.convexity import graph_convexity
from core.geometry.diagnostics import breakdown, diagnose_layer
from core.geometry.options import ConvexityOptions
from tests.helpers.builders import has_two_classes, small_problems
from tests.reference_convexity import reference_diagnostics

ENGINES = ["numba", "torch"]


def _check_against_reference(points, labels, k, engine):
    ref = reference_diagnostics(points, labels, k)
    table = diagnose_layer(points, {"y": labels}, k=k, engine=engine, device="cpu")["y"]
    np.testing.assert_allclose(table.convexity, ref["convexity"], atol=1e-12, equal_nan=True)
    assert table.inside_paths.tolist() == ref["inside"]
    assert table.bridge_paths.tolist() == ref["bridge"]
    np.testing.assert_allclose(table.purity, ref["purity"], atol=1e-12)
    for row in table.per_class:
        label = type(labels[0])(row.label) if not isinstance(labels[0], str) else row.label
        assert (row.n_components, row.largest_component) == ref["components"][label]
    assert table.exact.all()
    return table


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=small_problems())
def test_clip_diagnostics_equal_the_one_path_at_a_time_reference(engine, problem):
    points, labels, k = problem
    if not has_two_classes(labels):
        return
    _check_against_reference(points, labels, k, engine)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=small_problems())
def test_clip_diagnostics_equal_the_reference_on_many_problems(engine, problem):
    points, labels, k = problem
    if not has_two_classes(labels):
        return
    _check_against_reference(points, labels, k, engine)


def test_bridge_share_is_normalised_by_other_classes_paths_and_class_scores_match_the_curve():
    rng = np.random.default_rng(3)
    points = rng.normal(size=(40, 3))
    labels = [i % 3 for i in range(40)]
    table = _check_against_reference(points, labels, 4, "numba")
    counts = np.bincount(labels)
    pairs = counts * (counts - 1)
    for v in range(40):
        other = pairs.sum() - pairs[labels[v]]
        assert table.bridge[v] == pytest.approx(table.bridge_paths[v] / other)
    curve = graph_convexity(points, labels, ConvexityOptions(k=4, max_pairs_per_class=None))
    for row in table.per_class:
        assert row.convexity == pytest.approx(curve.per_class[int(row.label)].score, abs=1e-12)
    assert table.score == pytest.approx(curve.score, abs=1e-12)


def test_a_class_in_two_far_blobs_has_two_components_and_a_bridge_clip_is_found():
    rng = np.random.default_rng(0)
    a1 = rng.normal(size=(15, 2))
    a2 = rng.normal(size=(15, 2)) + [12.0, 0.0]
    bridge = np.array([[6.0, 0.0]])  # one class-b clip halfway: a's paths between blobs cross b
    b = rng.normal(size=(15, 2)) + [6.0, 9.0]
    points = np.concatenate([a1, a2, bridge, b])
    labels = ["a"] * 30 + ["b"] * 16
    table = diagnose_layer(points, {"y": labels}, k=3)["y"]
    row_a = next(r for r in table.per_class if r.label == "a")
    assert row_a.n_components >= 2
    assert int(table.ranked("bridge", lowest=False)[0]) == 30


def test_breakdown_ranks_groups_by_mean_clip_convexity():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 8)) * 4
    labels = np.arange(200) % 4
    groups = np.arange(200) // 20  # ten groups of 20 clips
    points = centres[labels] + rng.normal(size=(200, 8))
    points[groups == 7] += rng.normal(size=((groups == 7).sum(), 8)) * 6  # group 7 made odd
    table = diagnose_layer(points, {"y": labels}, k=8)["y"]
    rows = breakdown(table, groups)
    assert rows[0].group == "7"
    assert rows[0].lowest_share > rows[1].lowest_share
    assert sum(r.n_clips for r in rows) == 200
    assert all(not math.isnan(r.convexity) for r in rows)


def _labelled(fs):
    fs.labels = lambda name: fs.words if name == "word" else fs.speakers
    return fs


def test_diagnostics_are_stored_with_provenance_and_read_back_without_recomputing(
    tmp_path, monkeypatch
):
    from core.geometry import diagnostics as engine
    from core.results.kinds import diagnostics_entry, stored_diagnostics
    from core.results.store import list_results
    from tests.helpers.builders import fake_features

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    fs = _labelled(fake_features())
    first = stored_diagnostics(fs, 2, ["word", "speaker"], k=5)
    calls = []
    real = engine.diagnose_layer
    monkeypatch.setattr(
        engine, "diagnose_layer", lambda *a, **kw: calls.append(1) or real(*a, **kw)
    )
    entry, hit = diagnostics_entry(fs, 2, ["word", "speaker"], k=5)
    again = stored_diagnostics(fs, 2, ["word", "speaker"], k=5)
    assert hit and not calls
    assert entry.provenance.feature_key == fs.key
    assert entry.provenance.label_sets == ("word", "speaker")
    assert entry.provenance.settings["estimator"] == "exhaustive"
    assert entry.request == {"layer": 2, "label_sets": ["word", "speaker"], "k": 5}
    for name in ("word", "speaker"):
        np.testing.assert_array_equal(again[name].convexity, first[name].convexity)
        np.testing.assert_array_equal(again[name].bridge_paths, first[name].bridge_paths)
        assert again[name].per_class == first[name].per_class
    assert [e.kind for e in list_results("diagnostics")] == ["diagnostics"]
    stored_diagnostics(fs, 3, ["word"], k=5)  # another layer is another entry
    assert calls == [1] and len(list_results("diagnostics")) == 2


def test_a_diagnostics_entry_with_a_truncated_column_is_recomputed(tmp_path, monkeypatch):
    from core.results.kinds import diagnostics_entry, stored_diagnostics
    from core.results.store import results_root
    from tests.helpers.builders import fake_features

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    fs = _labelled(fake_features())
    entry, _ = diagnostics_entry(fs, 1, ["word"], k=4)
    (results_root() / entry.key / "word.bridge.npy").write_bytes(b"garbage")
    table = stored_diagnostics(fs, 1, ["word"], k=4)["word"]
    assert table.bridge.shape == (60,)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=small_problems())
def test_path_query_returns_the_references_path_for_every_pair(problem):
    from core.geometry.clip_paths import class_paths, clip_path, layer_graph
    from tests.reference_convexity import knn_adjacency, pair_score, shortest_path

    points, labels, k = problem
    adj = knn_adjacency(points, k)
    g = layer_graph(points, k)
    for s in range(len(labels)):
        for t in range(len(labels)):
            expected = shortest_path(adj, s, t)
            got = clip_path(g, labels, s, t)
            assert list(got.vertices) == (expected or [])
        for path in class_paths(g, labels, s):
            expected = shortest_path(adj, s, path.target)
            assert path.score == pytest.approx(pair_score(expected, labels, labels[s]))


def test_default_partner_is_the_class_mate_whose_path_leaves_the_class_most():
    from core.geometry.clip_paths import class_paths, clip_path, layer_graph, path_rows

    rng = np.random.default_rng(0)
    a1 = rng.normal(size=(15, 2))
    a2 = rng.normal(size=(15, 2)) + [12.0, 0.0]
    b = np.stack([np.linspace(2.0, 10.0, 16), np.zeros(16)], axis=1)  # b joins a's two blobs
    points = np.concatenate([a1, a2, b])
    labels = ["a"] * 30 + ["b"] * 16
    g = layer_graph(points, 4)
    path = clip_path(g, labels, 0)
    assert path.target >= 15  # in the far blob
    assert path.score == min(p.score for p in class_paths(g, labels, 0))
    assert path.reachable and path.score < 1.0 and not all(path.in_class)
    rows = path_rows(path, {"label": labels})
    assert rows[0]["role"] == "source" and rows[-1]["role"] == "target"
    assert [r["clip"] for r in rows] == list(path.vertices)
    assert all(r["in_class"] == (r["label"] == "a") for r in rows)
    idx, dist = g.neighbours(0)
    assert len(idx) == 4 and np.all(np.diff(dist) >= 0)


def test_path_query_refuses_bad_clips_in_one_line():
    from core.errors import ConvexityInputError
    from core.geometry.clip_paths import clip_path, layer_graph

    points = np.arange(12, dtype=float)[:, None]
    g = layer_graph(points, 2)
    labels = ["a"] * 11 + ["lonely"]
    with pytest.raises(ConvexityInputError, match="clip index"):
        clip_path(g, labels, 12)
    with pytest.raises(ConvexityInputError, match="no class-mate"):
        clip_path(g, labels, 11)


def test_sampled_sources_are_flagged_and_their_estimates_are_unbiased():
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(3, 4)) * 2
    labels = np.arange(90) % 3
    points = centres[labels] + rng.normal(size=(90, 4))
    full = diagnose_layer(points, {"y": labels}, k=5)["y"]
    same = diagnose_layer(points, {"y": labels}, k=5, max_sources_per_class=30)["y"]
    np.testing.assert_array_equal(same.convexity, full.convexity)
    assert same.exact.all() and same.settings["estimator"] == "exhaustive"
    bridges, scores = [], []
    for seed in range(40):
        t = diagnose_layer(points, {"y": labels}, k=5, max_sources_per_class=6, seed=seed)["y"]
        assert t.exact.sum() == 18 and not t.settings["exact"]
        assert np.isnan(t.convexity[~t.exact]).all()
        np.testing.assert_array_equal(t.convexity[t.exact], full.convexity[t.exact])
        bridges.append(t.bridge_paths.sum())
        scores.append([c.convexity for c in t.per_class])
    bridges, scores = np.array(bridges), np.array(scores)
    truth = full.bridge_paths.sum()
    assert abs(bridges.mean() - truth) < 3 * bridges.std(ddof=1) / np.sqrt(len(bridges)) + 1e-9
    exact_scores = np.array([c.convexity for c in full.per_class])
    spread = scores.std(axis=0, ddof=1) / np.sqrt(len(scores))
    assert np.all(np.abs(scores.mean(axis=0) - exact_scores) < 3 * spread + 1e-9)


def test_both_engines_weight_sampled_trees_alike():
    rng = np.random.default_rng(9)
    points = rng.normal(size=(60, 3))
    labels = {"a": np.arange(60) % 3, "b": np.arange(60) % 4}
    tables = [
        diagnose_layer(points, labels, k=4, max_sources_per_class=5, seed=2, engine=e)
        for e in ENGINES
    ]
    for name in labels:
        numba_t, torch_t = tables[0][name], tables[1][name]
        np.testing.assert_array_equal(numba_t.exact, torch_t.exact)
        np.testing.assert_allclose(numba_t.convexity, torch_t.convexity, equal_nan=True)
        np.testing.assert_allclose(numba_t.bridge_paths, torch_t.bridge_paths)
        np.testing.assert_allclose(numba_t.inside_paths, torch_t.inside_paths)
