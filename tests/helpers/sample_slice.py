"""The bundled sample as the slow tests read it: whether it is complete, and one seeded slice's features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.data.datasets import DATASETS

SAMPLE = DATASETS["sample"].default_root()


def sample_complete(root: Path) -> bool:
    """voices.json is written last by scripts/make_sample.py; its per-speaker clip counts match the files."""
    try:
        voices = json.loads((root / "voices.json").read_text())
        expected = sum(int(s["clips"]) for s in voices["speakers"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return expected > 0 and expected == sum(1 for _ in root.glob("*/*.ogg"))


SAMPLE_SLICE_CLIPS = 960  # 40 per speaker: every speaker and word of the bundled sample


def extract_sample_slice(model: str):
    """Pooled features of a seeded per-speaker slice of the bundled sample (not cached; one thread),
    or a skip when the sample or the offline weights are missing."""
    from core.data.features import Selection, extract_features
    from core.models.whisper_offline import offline_whisper_available

    if not sample_complete(SAMPLE) or not offline_whisper_available(model):
        pytest.skip(f"needs the bundled sample and the offline {model} weights")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sel = Selection.of("sample", task="speakers", max_clips=SAMPLE_SLICE_CLIPS, seed=0)
        return extract_features(model, sel, batch_size=32, cache=False)
    finally:
        torch.set_num_threads(before)
