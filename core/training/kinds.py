"""The kinds of run (``finetune``, ``sweep``, ``benchmark``) as one registry table of specs.

``RUN_KINDS`` maps a kind's name to what every layer needs of it: its settings record, the check that
refuses settings no run could use, the job itself, the record its result file holds, the view a page
reads its progress by, and whether its prune points are runs of their own. A new kind is one entry
here; :func:`check_kinds` refuses an entry missing any part. The heavy training stack is imported only
when a job runs or a result is read, so listing runs and ``--help`` stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import RunError
from core.io.records import Record
from core.io.run_folder import RunFolder
from core.training.configs import BenchmarkConfig, FinetuneConfig, SweepConfig

__all__ = ["RUN_KINDS", "VIEWS", "RunKind", "check_kinds", "run_kind"]

StopCheck = Callable[[], bool]
Progress = Callable[[dict[str, Any]], None]
VIEWS = (
    "epochs",
    "points",
    "rounds",
)  # how a run's progress reads: metric rows, sweep points, rounds


@dataclass(frozen=True)
class RunKind:
    """Registry entry: one kind of run, from its settings to the page that shows it.

    ``check(config)`` raises a one-line LabError; ``run(config, folder, stop, progress)`` is the job and
    returns its result; ``result`` names the result record (``module:Class``, imported on use) that
    ``result_file`` holds; ``view`` is one of :data:`VIEWS`; ``work`` names the work in a refusal.
    """

    name: str
    config: type[Record]
    check: Callable[[Any], None]
    run: Callable[[Any, Path, StopCheck, Progress], Any]
    result: str
    result_file: str
    view: str
    work: str
    points: bool = False  # its prune points are fine-tunes of their own (a sweep)

    def settings(self, config: Mapping[str, Any]) -> Any:
        """The settings record of a run's ``config.json`` settings."""
        return self.config.from_dict(dict(config))

    def result_type(self) -> type[Record]:
        """The record class of this kind's result file (imported now)."""
        module, name = self.result.split(":")
        return getattr(importlib.import_module(module), name)


def _check_finetune(cfg: FinetuneConfig) -> None:
    """A fine-tune's settings, data, classes, model and prune point."""
    from core.training.finetune import check_run

    check_run(cfg)


def _check_sweep(cfg: SweepConfig) -> None:
    """A sweep's settings, its fine-tune's checks and its prune points against the model's depth."""
    from core.models.loading import resolve_model
    from core.training.finetune import check_run
    from core.training.sweep import resolve_points

    cfg.check()
    check_run(cfg)
    resolve_points(cfg.points, 1, resolve_model(cfg.model).n_layers)


def _check_benchmark(cfg: BenchmarkConfig) -> None:
    """A benchmark's settings and its prune point against the model's depth."""
    from core.models.loading import resolve_model

    cfg.check(resolve_model(cfg.model).n_layers)


def _run_finetune(cfg: FinetuneConfig, run: Path, stop: StopCheck, progress: Progress) -> Any:
    """Fine-tune into the run folder (resuming from its checkpoint)."""
    from core.training.finetune import finetune

    return finetune(cfg, run, should_stop=stop, on_progress=progress)


def _run_sweep(cfg: SweepConfig, run: Path, stop: StopCheck, progress: Progress) -> Any:
    """Fine-tune every prune point of the sweep in the run folder, each with its benchmark."""
    from core.training.sweep import run_sweep

    return run_sweep(cfg, run, should_stop=stop, on_progress=progress)


def _run_benchmark(cfg: BenchmarkConfig, run: Path, stop: StopCheck, progress: Progress) -> Any:
    """Time the full and the pruned model side by side and save the benchmark in the run folder."""
    from core.training.benchmark import run_benchmark, save_benchmark

    bench = run_benchmark(cfg, on_progress=progress, should_stop=stop)
    save_benchmark(bench, run)
    return bench


RUN_KINDS: dict[str, RunKind] = {
    "finetune": RunKind(
        name="finetune",
        config=FinetuneConfig,
        check=_check_finetune,
        run=_run_finetune,
        result="core.training.finetune_result:FinetuneResult",
        result_file=RunFolder.RESULT,
        view="epochs",
        work="fine-tuning",
    ),
    "sweep": RunKind(
        name="sweep",
        config=SweepConfig,
        check=_check_sweep,
        run=_run_sweep,
        result="core.training.sweep:SweepResult",
        result_file=RunFolder.SWEEP_RESULTS,
        view="points",
        work="fine-tuning",
        points=True,
    ),
    "benchmark": RunKind(
        name="benchmark",
        config=BenchmarkConfig,
        check=_check_benchmark,
        run=_run_benchmark,
        result="core.training.benchmark:BenchmarkResult",
        result_file=RunFolder.BENCHMARK,
        view="rounds",
        work="a benchmark",
    ),
}


def run_kind(name: Any) -> RunKind:
    """The spec of kind ``name``; RunError (one line, naming the kinds) for any other."""
    spec = RUN_KINDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise RunError(f"unknown job kind {name!r}; kinds: {', '.join(RUN_KINDS)}")
    return spec


def check_kinds(kinds: Mapping[str, RunKind] = RUN_KINDS) -> None:
    """Refuse (RunError) an entry missing a part: every field set, callables callable, its view known,
    its settings a record with ``from_dict``, its result record importable."""
    for name, spec in kinds.items():
        missing = [f.name for f in fields(spec) if getattr(spec, f.name) in (None, "")]
        if missing:
            raise RunError(f"run kind {name!r} lacks {', '.join(missing)}")
        if spec.name != name:
            raise RunError(f"run kind {name!r} is registered as {spec.name!r}")
        if not (callable(spec.check) and callable(spec.run)):
            raise RunError(f"run kind {name!r}: check and run must be callables")
        if not hasattr(spec.config, "from_dict"):
            raise RunError(
                f"run kind {name!r}: its config {spec.config!r} is not a settings record"
            )
        if spec.view not in VIEWS:
            raise RunError(f"run kind {name!r}: view {spec.view!r} is not one of {VIEWS}")
        try:
            result = spec.result_type()
        except (ImportError, AttributeError, ValueError) as exc:
            raise RunError(f"run kind {name!r}: result {spec.result!r} not found ({exc})") from None
        if not hasattr(result, "from_dict"):
            raise RunError(f"run kind {name!r}: its result {spec.result!r} is not a record")
