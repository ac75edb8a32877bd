"""Convexity at a chosen size (rarefaction) and the intervals taken at half the speaker count."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConvexityInputError
from core.geometry.options import ConvexityOptions
from core.geometry.rarefaction import (
    RarefySize,
    common_size,
    kept_share,
    rarefied_curve,
    rarefied_interval,
    rarefy_subsets,
)
from core.geometry.synthetic import speaker_population
from tests.helpers.simulation import simulate


def test_subsets_keep_the_asked_classes_and_clips_and_are_prefix_stable():
    labels = np.repeat(np.arange(6), 5)
    subsets = rarefy_subsets(labels, RarefySize(4, 3), 5, seed=2)
    for idx in subsets:
        assert len(np.unique(idx)) == len(idx) == 12
        kept = np.bincount(labels[idx], minlength=6)
        assert sorted(kept[kept > 0]) == [3, 3, 3, 3]
    assert np.array_equal(rarefy_subsets(labels, RarefySize(4, 3), 2, seed=2)[1], subsets[1])


def test_sizes_parse_and_refuse_what_the_labels_do_not_hold():
    assert RarefySize.parse("8x20") == RarefySize(8, 20)
    assert RarefySize.parse("x20") == RarefySize(None, 20)
    assert RarefySize.parse("8") == RarefySize(8, None)
    with pytest.raises(ConvexityInputError, match="CLASSESxCLIPS"):
        RarefySize.parse("eight")
    with pytest.raises(ConvexityInputError, match="fewer than the 9"):
        rarefy_subsets(np.repeat(np.arange(6), 5), RarefySize(9), 2)
    assert common_size([[5, 7, 9], [4, 4]]) == RarefySize(2, 4)


def test_kept_share_counts_classes_when_classes_are_drawn_else_clips():
    counts = np.array([10, 10, 10, 10])
    assert kept_share(counts, RarefySize(2, 5)) == 0.5
    assert kept_share(counts, RarefySize(None, 5)) == 0.5
    assert kept_share(counts, RarefySize(4, None)) == 1.0


def test_the_interval_is_centred_on_the_subsets_mean_and_widened_by_the_kept_share():
    table = np.array([[0.4, 0.5], [0.6, 0.5], [0.5, 0.5]])
    iv = rarefied_interval("s", [0, 1], table, share=0.5, n_units=16, level=0.9, seed=0, scheme="x")
    assert iv.score == pytest.approx((0.5, 0.5))
    var = np.var(table[:, 0], ddof=1)
    assert iv.se[0] == pytest.approx(np.sqrt(var * (1.0 + 1.0 / 3)))
    assert iv.se[1] == 0.0 and iv.degrees == 2
    wider = rarefied_interval(
        "s", [0, 1], table, share=0.75, n_units=16, level=0.9, seed=0, scheme="x"
    )
    assert wider.se[0] > iv.se[0]  # keeping more of the units, the subsets vary less than datasets
    with pytest.raises(ConvexityInputError, match="part of the data"):
        rarefied_interval(
            "s", [0], table[:, :1], share=1.0, n_units=4, level=0.9, seed=0, scheme=""
        )


def test_a_rarefied_curve_scores_subsets_of_the_asked_size():
    drawn = speaker_population(8, takes=1, seed=0).draw(np.random.default_rng(0))
    x, speakers = drawn.features, drawn.speakers
    seen = []
    curve = rarefied_curve(
        x,
        speakers,
        RarefySize(4, 4),
        3,
        ConvexityOptions(k=3, max_pairs_per_class=None, device="cpu"),
        name="speaker",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert curve.n_resamples == 3 and len(curve.score) == x.shape[1]
    assert curve.score == pytest.approx(np.mean(curve.resample_scores, axis=0))
    assert "4 classes x 4 clips each" in curve.question
    with pytest.raises(ConvexityInputError, match="keeps every clip"):
        rarefied_curve(x, speakers, RarefySize(8, None), 3, name="speaker")


@pytest.mark.slow  # ~20 s
def test_other_speakers_half_count_intervals_cover_the_population_mean():
    """Speaker labels, speakers drawn: 50 datasets of 16 speakers from a pool of 2,000; each 90 %
    interval of the mean score of 8 speakers (12 half-samples) against that mean over 60 datasets of
    8 speakers. Over the three layers (150 cases) coverage lies in 85-95 %, and no layer strays far
    (a coverage from 50 datasets is uncertain by +-4 %)."""
    table = simulate(n_truth=60, n_datasets=50, n_resamples=12, seed=11, labels="other-speakers")
    for layer, achieved in enumerate(table.coverage):
        assert 0.8 <= achieved <= 0.98, table.rows()[layer]
    assert 0.85 <= np.mean(table.coverage) <= 0.95, table.rows()
