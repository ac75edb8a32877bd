"""Diagnostics find real problems (tests that can fail): flipped labels rank at the top of the
lowest-convexity table at the layer of peak convexity, and a speaker whose clips were made odd leads the
per-speaker breakdown. Synthetic layers in the fast loop; the bundled sample's real Whisper features in
the slow tests."""

from __future__ import annotations

import numpy as np
import pytest

from core.geometry.diagnostics import breakdown, diagnose_layers, precision_at
from core.geometry.synthetic import flip_labels

FLIP = 0.02  # share of clips whose label is changed
PRECISION = 0.6  # required precision at k = number flipped (chance: about FLIP)


def _layered(n: int, classes: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 4, dim) whose classes separate most at hidden state 2 (a convexity peak)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(size=(classes, dim))
    layers = [centres[labels] * s + rng.normal(size=(n, dim)) for s in (0.3, 0.8, 1.6, 1.0)]
    return np.stack(layers, axis=1), labels


def _at_peak(features: np.ndarray, labels: dict) -> tuple[int, dict]:
    """(layer of peak convexity of the first label set, that layer's tables)."""
    tables = diagnose_layers(features, labels, k=10)
    first = tables[next(iter(labels))]
    peak = int(np.argmax([t.score for t in first]))
    return peak, {name: per_layer[peak] for name, per_layer in tables.items()}


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_flipped_labels_rank_lowest_in_clip_convexity_at_the_peak_layer(seed):
    x, y = _layered(500, 10, 12, seed)
    flipped_labels, flipped = flip_labels(y, FLIP, seed=seed)
    peak, tables = _at_peak(x, {"word": flipped_labels})
    assert peak == 2
    assert precision_at(tables["word"], flipped) >= PRECISION
    untouched = np.setdiff1d(np.arange(len(y)), flipped)
    assert np.nanmean(tables["word"].convexity[flipped]) < np.nanmean(
        tables["word"].convexity[untouched]
    )


def test_a_speaker_whose_clips_were_made_odd_leads_the_per_speaker_breakdown():
    x, y = _layered(500, 10, 12, 2)
    speakers = np.array([f"spk{i % 20:02d}" for i in range(500)])
    odd = speakers == "spk07"
    rng = np.random.default_rng(0)
    x[odd] += rng.normal(size=x[odd].shape) * 1.5
    peak, tables = _at_peak(x, {"word": y})
    rows = breakdown(tables["word"], speakers)
    assert rows[0].group == "spk07"
    assert rows[0].lowest_share > max(r.lowest_share for r in rows[1:])


# -- the bundled sample's real features -----------------------------------------------------------


@pytest.fixture(scope="module")
def sample_features(tiny_en_sample):
    """Whisper tiny.en features of the bundled sample's seeded 960-clip slice (all speakers and words)."""
    return tiny_en_sample


@pytest.mark.slow
def test_flipped_word_labels_of_the_real_sample_rank_lowest_at_peak_word_convexity(
    sample_features,
):
    words = np.array(sample_features.words, dtype=object)
    flipped_labels, flipped = flip_labels(words, FLIP, seed=0)
    peak, tables = _at_peak(sample_features.features, {"word": flipped_labels})
    got = precision_at(tables["word"], flipped)
    print(f"\nprecision at {len(flipped)} flipped: {got:.2f} (hidden state {peak})")
    assert got >= PRECISION


@pytest.mark.slow
def test_a_real_speaker_made_odd_leads_the_per_speaker_breakdown(sample_features):
    x = np.array(sample_features.features, dtype=np.float32)
    speakers = np.array(sample_features.speakers, dtype=object)
    odd_speaker = sorted(set(speakers.tolist()))[5]
    odd = speakers == odd_speaker
    rng = np.random.default_rng(0)
    scale = 3.0 * x.std(axis=0, keepdims=True)  # 3x the spread, per hidden state and dimension
    x[odd] += (rng.normal(size=x[odd].shape) * scale).astype(np.float32)
    peak, tables = _at_peak(x, {"word": sample_features.words})
    rows = breakdown(tables["word"], speakers)
    print(
        f"\nper-speaker breakdown at hidden state {peak}: {[(r.group, round(r.convexity, 3)) for r in rows[:3]]}"
    )
    assert rows[0].group == odd_speaker
    assert rows[0].lowest_share > max(r.lowest_share for r in rows[1:])
