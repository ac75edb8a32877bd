"""Which clips is one concept: a :class:`ClipSource` (dataset, folder, speaker and split rules) that
extraction's :class:`Selection` and a run's :class:`DataSelection` both hold whole. Feature keys and
the flat ``config.json`` stay what they were."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.data.source import ClipSource, Selection
from core.training.configs import (
    DataSelection,
    FinetuneConfig,
    Optimiser,
    SweepConfig,
    setting_fields,
)
from core.training.task_data import load_split

REGEX = r"^(?P<speaker>[a-z]+)\d+_"


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (
            Selection.of(),
            {
                "dataset": "sample",
                "task": "words",
                "split": "all",
                "max_clips": None,
                "seed": 0,
                "min_clips": None,
                "split_seed": 0,
            },
        ),
        (
            Selection.of(
                "folder",
                "/clips",
                task="speakers",
                split="test",
                max_clips=12,
                seed=3,
                min_clips=5,
                split_seed=2,
            ),
            {
                "dataset": "folder",
                "task": "speakers",
                "split": "test",
                "max_clips": 12,
                "seed": 3,
                "min_clips": 5,
                "split_seed": 2,
            },
        ),
        (
            Selection(ClipSource("folder", "/clips", speaker_regex=REGEX), split="train"),
            {
                "dataset": "folder",
                "task": "words",
                "split": "train",
                "max_clips": None,
                "seed": 0,
                "min_clips": None,
                "split_seed": 0,
                "speaker_regex": REGEX,
            },
        ),
    ],
)
def test_key_part_is_the_one_feature_keys_were_made_with(
    selection: Selection, expected: dict[str, Any]
) -> None:
    assert selection.key_part() == expected
    assert list(selection.key_part()) == list(expected)  # meta.json records it in this order


def test_a_dataset_name_with_its_fields_is_short_for_a_source() -> None:
    short = Selection.of("folder", "/clips", task="speakers", speaker_regex=REGEX, min_clips=5)
    source = ClipSource("folder", "/clips", speaker_regex=REGEX, min_clips=5)
    assert short == Selection(source, task="speakers") and short.source == source
    assert replace(short, split="train") == Selection(source, task="speakers", split="train")


def test_each_split_of_a_run_is_the_selection_extraction_uses(tree: Path) -> None:
    """A run's train, eval and test clips are Selections of its source: the same parameters (and so
    the same feature key) as extracting that split, and the very clips training reads."""
    source = ClipSource("folder", str(tree), split_seed=1, min_clips=2)
    data = DataSelection(
        source, task="speakers", max_train_clips=6, max_eval_clips=3, max_test_clips=3
    )
    expected = {
        "train": Selection(source, task="speakers", split="train", max_clips=6, seed=3),
        "eval": Selection(source, task="speakers", split="validation", max_clips=3, seed=3),
        "test": Selection(source, task="speakers", split="test", max_clips=3, seed=3),
    }
    cfg = FinetuneConfig(model="m", data=data, optimiser=Optimiser(seed=3))
    for role, selection in expected.items():
        assert data.selection(role, seed=3) == selection
        chosen = selection.table()
        assert 0 < len(chosen) <= (selection.max_clips or 0)
        read = load_split(cfg, selection.split, selection.max_clips)
        assert read.paths == list(chosen.paths)
    # without a test split of its own, a run is scored on its eval split
    alone = DataSelection(source, test_split=None, max_eval_clips=2)
    assert not alone.separate_test
    assert alone.selection("test") == Selection(source, split="validation", max_clips=2)


OLD_CONFIG = {  # a run folder's config.json before the source was a record: every setting a key
    "model": "whisper-tiny.en-offline",
    "prune_point": 2,
    "dataset": "folder",
    "root": "/data/clips",
    "task": "speakers",
    "speaker_regex": REGEX,
    "train_split": "train",
    "eval_split": "validation",
    "test_split": "test",
    "max_train_clips": 100,
    "max_eval_clips": None,
    "max_test_clips": 50,
    "min_clips": 4,
    "split_seed": 2,
    "epochs": 3,
}


def test_an_old_flat_config_loads_and_writes_back_the_same_keys() -> None:
    cfg = FinetuneConfig.from_dict(OLD_CONFIG)
    source = ClipSource("folder", "/data/clips", REGEX, 2, 4)
    assert cfg.data == DataSelection(
        source, task="speakers", max_train_clips=100, max_test_clips=50
    )
    flat = cfg.to_dict()
    assert {k: flat[k] for k in OLD_CONFIG} == OLD_CONFIG
    assert not {"data", "source"} & set(flat)
    assert FinetuneConfig.from_dict(flat) == cfg
    nested = {"model": "m", "data": {"task": "speakers", "source": source.to_dict()}}
    assert FinetuneConfig.from_dict(nested).data.source == source
    mixed = {"model": "m", "dataset": "folder", "data": {"root": "/data/clips"}}
    assert FinetuneConfig.from_dict(mixed).data.source == ClipSource("folder", "/data/clips")


def test_the_settings_keep_their_flat_names() -> None:
    """config.json keys and CLI options: one per setting, named as before the source was a record."""
    names = {f.name for f, _ in setting_fields(FinetuneConfig)}
    assert names == {
        *("model", "prune_point", "plan", "whisper_input", "model_identity"),
        *("dataset", "root", "task", "speaker_regex", "train_split", "eval_split", "test_split"),
        *("max_train_clips", "max_eval_clips", "max_test_clips", "min_clips", "split_seed"),
        *("epochs", "batch_size", "eval_batch_size", "lr", "weight_decay", "warmup_ratio"),
        *("grad_accum", "max_grad_norm", "freeze_front_end", "seed", "device", "bf16"),
        *("log_every", "max_steps_per_epoch", "keep_epochs", "convexity", "convexity_max_pairs"),
        *("trajectory", "trajectory_clips", "trajectory_target_se", "trajectory_every"),
    }
    assert set(FinetuneConfig(model="m").to_dict()) == names
    assert set(SweepConfig(model="m").to_dict()) == {f.name for f, _ in setting_fields(SweepConfig)}


def test_a_dataset_name_in_place_of_a_source_is_refused() -> None:
    with pytest.raises(TypeError, match="Selection.of"):
        Selection("sample")  # type: ignore[arg-type]
