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
from core.errors import RunError, TrainingError
from core.models.loading import resolve_model
from core.training.configs import BenchmarkConfig, FinetuneConfig, SweepConfig
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
    """Refuse (one LabError line) settings no run of ``kind`` could use; the settings, weights pinned."""
    from core.training.finetune import check_run
    from core.training.sweep import resolve_points

    if kind in ("finetune", "sweep", "benchmark"):
        work = "a benchmark" if kind == "benchmark" else "fine-tuning"
        check_trainable(config.get("model"), config.get("dataset"), work=work)
    if kind == "finetune":
        check_run(FinetuneConfig.from_dict(dict(config)))
    elif kind == "sweep":
        sweep = SweepConfig.from_dict(dict(config))
        sweep.check()
        check_run(sweep)
        resolve_points(sweep.points, 1, resolve_model(sweep.model).n_layers)
    elif kind == "benchmark":
        bench = BenchmarkConfig.from_dict(dict(config))
        bench.check(resolve_model(bench.model).n_layers)
    else:
        raise RunError(f"unknown job kind {kind!r}")
    return pin_config(kind, config)
