"""Every run's settings checked before its folder exists: one place for the CLI and the dashboard.

A fine-tune is refused for its settings, data, speaker rule, classes, model or prune point
(:func:`core.training.finetune.check_run`); a sweep for those and its prune points against the
model's depth; a benchmark for its settings and prune point. Any of them is refused first when it
names an imported feature set (:func:`check_trainable`): those have no encoder to train or time.
Each refusal is one ``LabError`` line, raised before any work, in the foreground and before a
background run is queued. The settings come back with the model's weights pinned
(:func:`core.training.pinning.pin_config`): a run whose name now stands for other weights than its
pin is refused here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.data.imported import is_imported
from core.errors import TrainingError
from core.training.kinds import run_kind
from core.training.pinning import pin_config

__all__ = ["check_settings", "check_trainable"]


def check_trainable(model: Any, dataset: Any = None, *, work: str = "fine-tuning") -> None:
    """Refuse (one TrainingError line) a model or dataset that names imported features: they have
    no encoder to fine-tune, prune or time, and no audio to train on. ``work`` names what needs one."""
    if is_imported(str(model or ""), str(dataset or "")):
        what = str(model) if is_imported(str(model or "")) else f"dataset {dataset!r}"
        raise TrainingError(
            f"{what} is an imported feature set: {work} needs a model (a preset, a Hugging Face "
            "id or a model folder) and its audio; extract features with one on Setup "
            "(python -m core extract) to fine-tune"
        )


def check_settings(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse (one LabError line) settings no run of ``kind`` could use (its kind's own check); the
    settings with the model's weights pinned and a plan in the words results name it by."""
    spec = run_kind(kind)
    check_trainable(config.get("model"), config.get("dataset"), work=spec.work)
    spec.check(spec.settings(config))
    return pin_config(kind, config)
