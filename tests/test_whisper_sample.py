"""End to end on real weights and real speech: offline Whisper tiny.en on the bundled sample (all 805 clips).

Measured here (2 shared cores, 1 thread, trimmed input, k=10, exhaustive since classes are small):
extraction ~60-67 clips/s (~13 s); word convexity 0.160 (layer 0) -> 0.957 (layer 4); speaker
convexity 0.867, 0.873 (peak, layer 1), 0.729, 0.379, 0.142 (layer 4); word labels shuffled (seeds 0-2):
0.041-0.045 at layer 4 (chance ~ 1/35). Thresholds below leave wide margins around these.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.datasets import DATASETS
from core.data.features import FeatureSet, Selection, extract_features
from core.geometry.convexity import layerwise_convexity
from core.models.whisper_offline import offline_whisper_available

MODEL = "whisper-tiny.en-offline"
SAMPLE = DATASETS["sample"].default_root()


def sample_complete(root: Path) -> bool:
    """voices.json is written last by scripts/make_sample.py; its per-speaker clip counts match the files."""
    try:
        voices = json.loads((root / "voices.json").read_text())
        expected = sum(int(s["clips"]) for s in voices["speakers"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return expected > 0 and expected == sum(1 for _ in root.glob("*/*.flac"))


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not sample_complete(SAMPLE), reason="data/sample is not (completely) generated"
    ),
    pytest.mark.skipif(
        not offline_whisper_available(MODEL), reason=f"{MODEL} weights not installed"
    ),
]


@pytest.fixture(scope="module")
def features() -> FeatureSet:
    """Pooled features of every sample clip (single-threaded: fastest on a shared 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        fs = extract_features(MODEL, Selection("sample"), batch_size=32, cache=False)
        print(f"\nextracted {fs.features.shape} in {time.perf_counter() - t0:.1f} s "
              f"({fs.meta['clips_per_s']} clips/s)")  # fmt: skip
    finally:
        torch.set_num_threads(before)
    return fs


@pytest.fixture(scope="module")
def curves(features: FeatureSet) -> dict:
    """Word and speaker convexity per layer, plus seeded shuffled word labels at layers 0 and L."""
    shuffled = np.array(features.words)
    np.random.default_rng(0).shuffle(shuffled)
    top = features.n_layers
    real = layerwise_convexity(
        features.features, {"word": features.words, "speaker": features.speakers}, k=10
    )
    control = layerwise_convexity(features.features, list(shuffled), k=10, layers=[0, top])
    out = {
        "word": real["word"].scores,
        "speaker": real["speaker"].scores,
        "shuffled": control.scores,
    }
    print({k: np.round(v, 3).tolist() for k, v in out.items()})
    return out


def test_features_are_finite_and_complete(features: FeatureSet) -> None:
    assert features.features.shape == (805, 5, 384)
    assert np.isfinite(features.features).all()
    assert features.skipped == [] and features.meta["input_mode"] == "trimmed"
    assert len(set(features.words)) == 35 and len(set(features.speakers)) == 23


def test_word_convexity_rises_with_depth(curves: dict) -> None:
    word = curves["word"]  # measured 0.16 -> 0.96
    assert word[-1] > 0.7
    assert word[-1] - word[0] > 0.4


def test_speaker_convexity_peaks_early_and_falls(curves: dict) -> None:
    speaker = curves["speaker"]  # measured 0.87, 0.87, 0.73, 0.38, 0.14
    n_states = len(speaker)
    assert int(np.argmax(speaker)) < n_states / 2
    assert speaker.max() > 0.5
    assert speaker[-1] < 0.5 * speaker.max()


def test_shuffled_word_labels_collapse(curves: dict) -> None:
    shuffled_top = curves["shuffled"][-1]  # measured 0.04 (chance about 1/35)
    assert shuffled_top < 0.15
    assert shuffled_top < 0.25 * curves["word"][-1]
