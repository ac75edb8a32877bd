"""Feature and result cache keys are pinned: a refactor that changes a key silently orphans every cache."""

from __future__ import annotations

import os
from pathlib import Path

from core.data.features import Selection, feature_key
from core.results.kinds import convexity_request
from core.results.store import result_key
from tests.helpers.tiny_assets import write_tree

IDENTITY = {
    "model_key": "whisper-tiny.en",
    "model_id": "openai/whisper-tiny.en",
    "source": "offline",
    "weights": "sha256:abc",
    "input_mode": "trimmed",
    "n_layers": 4,
}


def test_feature_key_of_a_folder_selection_is_pinned(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "clips")
    for path in sorted(root.rglob("*.wav")):
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    selection = Selection.of("folder", root=str(root), task="words", max_clips=12, seed=3)
    table = selection.table()
    key = feature_key(IDENTITY, table.fingerprint(), selection.key_part())
    assert selection.key_part() == {
        "dataset": "folder",
        "task": "words",
        "split": "all",
        "max_clips": 12,
        "seed": 3,
        "min_clips": None,
        "split_seed": 0,
    }
    assert key == "8fd365f5fad992f754f791b4f899788ec300f523eb5b124247bf293bbc7e3902"


def test_feature_key_of_a_fixed_document_is_pinned() -> None:
    selection = {"dataset": "sample", "task": "words", "split": "all", "max_clips": None, "seed": 0}
    key = feature_key(IDENTITY, "fp123", selection)
    assert key == "4268bf4f3eb0a0c1dd7fd0bfb403d697e8269ff5034bb00f2a28973800707e12"


def test_convexity_result_key_is_pinned() -> None:
    request = convexity_request(["word", "speaker"])
    assert request == {
        "k": 10,
        "max_pairs_per_class": 5000,
        "seed": 0,
        "match_pair_precision": True,
        "layers": None,
        "target_se": None,
        "exact_threshold": 0.7,
        "label_sets": ["word", "speaker"],
    }
    key = result_key("f" * 64, "convexity", request)
    assert key == "f47509c5044112ecc2ff826f295e664f60e414a2d0caf347dd1bc55a416bea75"
