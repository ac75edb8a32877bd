"""Curve statistics: half-samples, population intervals, prune-point stability, paired differences, store."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from core.errors import ConvexityInputError
from core.geometry.curve_statistics import curve_statistics
from core.geometry.options import ConvexityOptions, StatisticsOptions
from core.geometry.paired import layer_ranges, paired_difference
from core.geometry.prune_stability import prune_stability
from core.geometry.resampling import (
    ResampleUnits,
    check_half_sampling,
    half_samples,
    interval_from_resamples,
)
from core.geometry.synthetic import speaker_population
from tests.helpers.simulation import simulate


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache per test."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_half_samples_keep_half_of_each_stratum_without_duplicates():
    speakers = np.repeat(np.arange(6), 5)
    ru = ResampleUnits.of("clip", range(30), speakers, within="speaker")
    halves = half_samples(ru, 5, seed=1)
    for idx in halves:
        assert len(np.unique(idx)) == len(idx) == 12  # 2 of 5 clips per speaker, no duplicate
        assert np.all(np.bincount(speakers[idx], minlength=6) == 2)
    assert np.array_equal(half_samples(ru, 2, seed=1)[1], halves[1])  # prefix-stable
    by_speaker = ResampleUnits.of("speaker", speakers)
    for idx in half_samples(by_speaker, 3):
        assert len(np.unique(speakers[idx])) == 3 and len(idx) == 15  # whole speakers


@pytest.mark.parametrize("n", [0, 1, 201])
def test_bad_resample_counts_are_refused(n):
    ru = ResampleUnits.of("speaker", np.repeat(np.arange(8), 4))
    with pytest.raises(ConvexityInputError, match="resamples"):
        check_half_sampling(np.tile(np.arange(4), 8), ru, n, "word")


def test_a_class_with_too_few_units_is_refused():
    speakers = np.array([0, 1, 2, 0, 1, 2, 3, 4])
    words = np.array(["a", "a", "a", "b", "b", "b", "b", "b"])
    with pytest.raises(ConvexityInputError, match="'a' has 3 speaker"):
        check_half_sampling(words, ResampleUnits.of("speaker", speakers), 4, "word")


def test_more_resamples_than_distinct_halves_are_refused():
    ru = ResampleUnits.of("speaker", np.repeat(np.arange(8), 4))  # C(8, 4) = 70 halves
    with pytest.raises(ConvexityInputError, match="only 70 distinct"):
        check_half_sampling(np.tile(np.arange(4), 8), ru, 71, "word")


def test_interval_is_centred_on_the_full_score_and_widens_with_spread():
    narrow = interval_from_resamples(
        "w",
        [0.5, 0.6],
        np.array([[0.4, 0.6], [0.42, 0.601], [0.41, 0.599]]),
        level=0.9,
        seed=0,
        scheme="s",
        layers=[0, 1],
    )
    assert narrow.score == (0.5, 0.6)
    mid = [(lo + hi) / 2 for lo, hi in zip(narrow.low, narrow.high, strict=True)]
    assert mid == pytest.approx([0.5, 0.6])  # centred on the full data, not on the half-samples
    assert narrow.high[0] - narrow.low[0] > narrow.high[1] - narrow.low[1]


def test_a_rate_held_to_its_guard_is_said():
    iv = interval_from_resamples(
        "w",
        [0.5, 0.6],
        np.array([[0.4, 0.6], [0.42, 0.601], [0.41, 0.599]]),
        level=0.9,
        seed=0,
        scheme="s",
        layers=[3, 4],
    )
    assert iv.guard_note() == ""
    held = replace(iv, rate_clamped=(False, True))
    assert held.guard_note().endswith("on hidden state 4: the interval there rests on the bound")


def test_few_units_cap_the_degrees_of_freedom():
    """16 half-samples of 6 speakers are an estimate from 6 units: t with 5 degrees of freedom."""
    table = np.random.default_rng(0).normal(0.5, 0.02, size=(16, 2))
    kwargs = dict(level=0.9, seed=0, scheme="s", layers=[0, 1])
    many = interval_from_resamples("w", [0.5, 0.5], table, **kwargs)
    few = interval_from_resamples("w", [0.5, 0.5], table, n_units=6, **kwargs)
    assert many.degrees == 15 and few.degrees == 5
    ratio = (few.high[0] - few.low[0]) / (many.high[0] - many.low[0])
    assert ratio == pytest.approx(stats.t.ppf(0.95, 5) / stats.t.ppf(0.95, 15))


def test_prune_stability_counts_points_and_flags_a_flip():
    layers = [0, 1, 2, 3, 4]
    firm = prune_stability(
        "w", layers, [0.1, 0.2, 0.9, 0.92, 0.93], [0.0] * 5, [[0.1, 0.2, 0.9, 0.92, 0.93]] * 4
    )
    assert firm.threshold.point == 2 and firm.threshold.stable
    assert firm.threshold.over_resamples == {"2": 4}
    assert firm.threshold.margin == pytest.approx(0.9 - 0.95 * 0.93)
    assert firm.threshold.margin_before == pytest.approx(0.95 * 0.93 - 0.2)
    edge = prune_stability(
        "w",
        layers,
        [0.1, 0.2, 0.88, 0.92, 0.93],
        [0.0] * 5,
        [[0.1, 0.2, 0.88, 0.92, 0.93], [0.1, 0.2, 0.87, 0.9, 0.96]],
    )
    assert edge.threshold.point == 3 and not edge.threshold.stable
    assert "p = 3 in 1 of 2 half-samples (p = 4 in 1)" in edge.threshold.summary()


def test_paired_difference_uses_the_shared_resamples_and_says_where_a_wins():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.05, size=(20, 4))  # noise both curves share (same clips)
    a = interval_from_resamples(
        "a",
        [0.5, 0.6, 0.7, 0.8],
        0.5 + shared + [0, 0.1, 0.2, 0.3] + rng.normal(0, 0.005, (20, 4)),
        level=0.9,
        seed=0,
        scheme="s",
        layers=[0, 1, 2, 3],
    )
    b = interval_from_resamples(
        "b",
        [0.5, 0.5, 0.5, 0.5],
        0.5 + shared + rng.normal(0, 0.005, (20, 4)),
        level=0.9,
        seed=0,
        scheme="s",
        layers=[0, 1, 2, 3],
    )
    d = paired_difference(a, b, "fine-tuned", "pretrained")
    assert d.excludes_zero == (False, True, True, True)
    assert d.verdict == "fine-tuned > pretrained on layers 1-3; no clear difference on layer 0"
    assert a.low[1] < b.high[1]  # the separate intervals overlap; the paired one does not
    other = interval_from_resamples(
        "c", [0.5] * 4, shared, level=0.9, seed=1, scheme="s", layers=[0, 1, 2, 3]
    )
    with pytest.raises(ConvexityInputError, match="same half-samples"):
        paired_difference(a, other)


def test_layer_ranges_join_consecutive_layers():
    assert layer_ranges([7, 2, 3, 4]) == "2-4, 7"
    assert layer_ranges([1]) == "1"


def _population_dataset(seed: int = 0):
    d = speaker_population(n_speakers=8, takes=2, seed=seed).draw(np.random.default_rng(seed))
    return d.features, d.words, d.speakers


@pytest.mark.slow  # ~5-10 s
def test_curve_statistics_gives_chance_interval_and_stability_per_label_set():
    x, words, speakers = _population_dataset()
    units = {
        "word": ResampleUnits.of("speaker", speakers),
        "speaker": ResampleUnits.of("clip", range(len(words)), speakers, within="speaker"),
    }
    stats = curve_statistics(
        x,
        {"word": words, "speaker": speakers},
        units,
        ConvexityOptions(max_pairs_per_class=None, k=5, device="cpu"),
        StatisticsOptions(n_permutations=3, n_resamples=4, n_seeds=0),
    )
    for name in ("word", "speaker"):
        s = stats.sets[name]
        assert len(s.chance.mean) == len(s.scores) == x.shape[1]
        assert s.interval.n_resamples == 4 and all(
            lo <= sc <= hi
            for lo, sc, hi in zip(s.interval.low, s.scores, s.interval.high, strict=True)
        )
        assert s.stability is not None
    assert stats.settings["scheme"]["word"] == "half-samples: half of the speakers"


def test_stored_statistics_reopen_without_recomputing(monkeypatch):
    from core.geometry import curve_statistics as module
    from core.results.kinds import statistics_entry, stored_statistics

    x, words, speakers = _population_dataset(1)
    fs = SimpleNamespace(
        features=x,
        key="synthetic-stats",
        meta={
            "key": "synthetic-stats",
            "model_key": "m",
            "dataset": "synthetic",
            "n_clips": len(words),
            "n_layers": x.shape[1] - 1,
        },
        labels=lambda name: [str(v) for v in (words if name == "word" else speakers)],
    )
    options = ConvexityOptions(max_pairs_per_class=None, k=5)
    opts = StatisticsOptions(n_permutations=2, n_resamples=3, n_seeds=0)
    first, hit = statistics_entry(fs, ["word"], options, opts)
    assert not hit and first.provenance.settings["n_resamples"] == 3
    calls = []
    real = module.curve_statistics

    @functools.wraps(real)  # keeps the signature: the store's request reads its defaults
    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "curve_statistics", counted)
    again = stored_statistics(fs, ["word"], options, opts)
    assert not calls and again.sets["word"].interval.n_resamples == 3


@pytest.mark.slow  # ~20 s on an idle 2-core CPU, ~45 s under the shared load
def test_half_sample_intervals_cover_the_population_mean_fast():
    """Speakers as units, words as labels: 30 datasets of 16 speakers x 6 words from a pool of 2,000
    speakers (a coverage from 30 datasets is itself uncertain by +-5 %, hence the wider bands; the
    slow test below checks 85-95 % per layer on 150 datasets)."""
    table = simulate(n_truth=60, n_datasets=30, n_resamples=16, seed=3)
    for layer, achieved in enumerate(table.coverage):
        assert 0.7 <= achieved <= 1.0, table.rows()[layer]
    assert 0.8 <= np.mean(table.coverage) <= 0.97, table.rows()


@pytest.mark.slow
def test_half_sample_intervals_cover_the_population_mean_at_85_to_95_percent():
    """150 datasets: 90 % intervals cover the mean score at N in 85-95 % of datasets, per layer (near
    chance, mid-curve and near the ceiling)."""
    table = simulate(n_truth=200, n_datasets=150, n_resamples=16, seed=5)
    for layer, achieved in enumerate(table.coverage):
        assert 0.85 <= achieved <= 0.95, table.rows()[layer]


@pytest.mark.slow  # ~50 s on an idle 2-core CPU
def test_clip_within_speaker_intervals_cover_the_speaker_curve_at_85_to_95_percent():
    """Speaker labels, clips within each speaker as units: 150 datasets of 16 fixed speakers x 18
    fresh clips; 90 % intervals cover the mean score at N in 85-95 % of datasets, per layer (near
    the ceiling, mid-curve and near chance)."""
    table = simulate(n_truth=200, n_datasets=150, n_resamples=16, seed=7, labels="speaker")
    for layer, achieved in enumerate(table.coverage):
        assert 0.85 <= achieved <= 0.95, table.rows()[layer]
