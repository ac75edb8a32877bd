"""End to end on real weights and real speech: the offline Whisper tiny.en and base on the bundled sample.

Pins the *shape* the paper reports (and held-out TTS voices show), not the digits: the speaker curve peaks
after hidden state 0 and falls by at least half towards the top; the word curve rises. A seeded 960-clip
slice (40 per speaker, all 24 speakers, every word) keeps each model under a minute on 2 cores. Curves of
the full sample, both models, are in ``data/sample/convexity_curves.json`` (and data/sample/README.md).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.data.features import FeatureSet
from core.geometry.convexity import convexity_curve, layerwise_convexity
from core.geometry.options import ConvexityOptions
from tests.helpers.sample_slice import (
    SAMPLE,
    SAMPLE_SLICE_CLIPS,
    extract_sample_slice,
    sample_complete,
)

MODELS = ("whisper-tiny.en-offline", "whisper-base-offline")
CLIPS = SAMPLE_SLICE_CLIPS


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sample_complete(SAMPLE), reason="data/sample is not (completely) generated"
    ),
]


@pytest.fixture(scope="module", params=MODELS)
def features(request: pytest.FixtureRequest) -> FeatureSet:
    """Pooled features of a seeded per-speaker slice (tiny.en's shared with the other slow tests)."""
    if request.param == "whisper-tiny.en-offline":
        return request.getfixturevalue("tiny_en_sample")
    t0 = time.perf_counter()
    fs = extract_sample_slice(request.param)
    print(f"\n{request.param}: {fs.features.shape} in {time.perf_counter() - t0:.1f} s")
    return fs


@pytest.fixture(scope="module")
def curves(features: FeatureSet) -> dict:
    """Word and speaker convexity per hidden state, plus seeded shuffled word labels at the top."""
    shuffled = np.array(features.words)
    np.random.default_rng(0).shuffle(shuffled)
    real = layerwise_convexity(
        features.features,
        {"word": features.words, "speaker": features.speakers},
        ConvexityOptions(k=10),
    )
    control = convexity_curve(
        features.features, list(shuffled), ConvexityOptions(k=10), layers=[features.n_layers]
    )
    out = {
        "word": real["word"].scores,
        "speaker": real["speaker"].scores,
        "shuffled": control.scores,
    }
    print({k: np.round(v, 3).tolist() for k, v in out.items()})
    return out


def test_slice_covers_every_speaker_and_word(features: FeatureSet) -> None:
    assert features.features.shape[0] == CLIPS and np.isfinite(features.features).all()
    assert len(set(features.speakers)) == 24 and len(set(features.words)) == 35
    assert features.skipped == [] and features.meta["input_mode"] == "trimmed"


def test_word_convexity_rises_with_depth(curves: dict) -> None:
    word = curves["word"]
    assert word[-1] > 0.5
    assert word[-1] - word[0] > 0.3
    assert int(np.argmax(word)) >= len(word) - 2  # highest at (or next to) the top


def test_speaker_convexity_peaks_after_the_input_and_falls_by_half(curves: dict) -> None:
    speaker = curves["speaker"]
    peak = int(np.argmax(speaker))
    assert peak >= 1, f"speaker curve peaks at hidden state 0: {speaker}"
    assert peak < len(speaker) / 2
    assert speaker[-1] <= 0.5 * speaker[peak]


def test_shuffled_word_labels_collapse(curves: dict) -> None:
    shuffled_top = curves["shuffled"][-1]  # chance about 1/35
    assert shuffled_top < 0.15
    assert shuffled_top < 0.25 * curves["word"][-1]
