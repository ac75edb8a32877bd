"""A fine-tune's settings are records (model, which clips, how it trains, what it measures), stored
flat in ``config.json`` as ever: an old flat file reads, a nested one too, and the CLI names every
setting once."""

from __future__ import annotations

import pytest

from core.data.source import ClipSource
from core.errors import LabError
from core.training.configs import (
    DataSelection,
    FinetuneConfig,
    Optimiser,
    Probes,
    SweepConfig,
    setting_fields,
)

OLD_FLAT = {  # a config.json written before plans and records: a prune point, every setting a key
    "model": "whisper-tiny.en-offline",
    "prune_point": 2,
    "dataset": "folder",
    "root": "/data/clips",
    "task": "speakers",
    "epochs": 3,
    "lr": 1e-4,
    "seed": 7,
    "convexity": False,
    "trajectory_clips": 64,
}


def test_an_old_flat_config_reads_into_its_records_and_writes_back_flat() -> None:
    cfg = FinetuneConfig.from_dict(OLD_FLAT)
    assert (cfg.prune_point, cfg.plan) == (2, None)
    assert cfg.data == DataSelection(ClipSource("folder", "/data/clips"), task="speakers")
    assert (cfg.optimiser.epochs, cfg.optimiser.lr, cfg.optimiser.seed) == (3, 1e-4, 7)
    assert cfg.probes == Probes(convexity=False, trajectory_clips=64)
    flat = cfg.to_dict()
    assert {k: flat[k] for k in OLD_FLAT} == OLD_FLAT  # the same keys and values on disk
    assert not {"data", "source", "optimiser", "probes"} & set(flat)
    assert FinetuneConfig.from_dict(flat) == cfg


def test_a_nested_config_and_a_sweeps_own_settings_read_too() -> None:
    nested = {"model": "m", "data": {"task": "speakers"}, "optimiser": {"epochs": 2}, "points": [1]}
    sweep = SweepConfig.from_dict(nested)
    assert sweep.data.task == "speakers" and sweep.optimiser.epochs == 2 and sweep.points == [1]
    assert SweepConfig.from_dict(sweep.to_dict()) == sweep
    assert FinetuneConfig.from_dict({"model": "m", "epochs": 2}).optimiser == Optimiser(epochs=2)


def test_a_setting_of_the_wrong_type_is_one_line() -> None:
    with pytest.raises(LabError, match="epochs") as info:
        FinetuneConfig.from_dict({**OLD_FLAT, "epochs": "many"})
    assert "\n" not in str(info.value)


def test_every_setting_is_named_once() -> None:
    names = [f.name for f, _ in setting_fields(SweepConfig)]
    assert len(names) == len(set(names))
    assert {"model", "task", "lr", "trajectory_every", "points"} <= set(names)
    assert not {"data", "source", "optimiser", "probes"} & set(names)


def test_the_settings_keep_the_clis_option_order() -> None:
    flat = [f.name for f, _ in setting_fields(SweepConfig) if f.metadata.get("cli", True)]
    assert flat == [
        *("model", "prune_point", "plan", "dataset", "root", "task", "speaker_regex"),
        *("train_split", "eval_split", "test_split"),
        *("max_train_clips", "max_eval_clips", "max_test_clips", "min_clips", "split_seed"),
        *("epochs", "batch_size", "eval_batch_size", "lr", "weight_decay", "warmup_ratio"),
        *("grad_accum", "max_grad_norm", "freeze_front_end", "seed", "device", "bf16"),
        *("whisper_input", "log_every", "max_steps_per_epoch", "convexity", "convexity_max_pairs"),
        *("keep_epochs", "trajectory", "trajectory_clips", "trajectory_target_se"),
        *("trajectory_every", "points", "fraction", "convexity_split", "convexity_max_clips"),
        "benchmark",
    ]  # `finetune --help` and `sweep --help` list them so, as when the configs were flat
