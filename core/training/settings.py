"""Every run's settings checked before its folder exists: one place for the CLI and the dashboard.

A fine-tune is refused for its settings, data, speaker rule, classes, model or prune point
(:func:`core.training.finetune.check_run`); a sweep for those and its prune points against the
model's depth; a benchmark for its settings and prune point. Each refusal is one ``LabError`` line,
raised before any work, in the foreground and before a background run is queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import RunError
from core.models.registry import resolve_model
from core.training.configs import BenchmarkConfig, FinetuneConfig, SweepConfig

__all__ = ["check_settings"]


def check_settings(kind: str, config: Mapping[str, Any]) -> None:
    """Refuse (one LabError line) settings no run of ``kind`` could use."""
    from core.training.finetune import check_run
    from core.training.sweep import resolve_points

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
