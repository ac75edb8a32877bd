"""A run's ``metrics.jsonl`` as typed rows: training steps, epoch evaluations and resume marks.

Pages and figures read these records, never the rows' dict keys; a row that is none of them (a
convexity point, a row of a newer writer) or that lacks a field is left out, not a crash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from core.errors import LabError
from core.io.records import Record
from core.runs.folders import read_metrics

__all__ = ["EvalRow", "ResumeMark", "RunMetrics", "TrainRow", "metrics_of", "run_metrics"]


@dataclass(frozen=True)
class TrainRow(Record):
    """One logged optimizer step: its loss over the steps since the last row."""

    step: int
    epoch: int
    loss: float
    epoch_progress: float = 0.0
    lr: float | None = None
    time: float | None = None
    attempt: int = 0  # resumes logged before it (read from the file's order, not stored in the row)


@dataclass(frozen=True)
class EvalRow(Record):
    """One epoch's score on the selection split (it chooses the best checkpoint)."""

    step: int
    epoch: int
    accuracy: float
    loss: float
    split: str = ""
    epoch_seconds: float | None = None


@dataclass(frozen=True)
class ResumeMark(Record):
    """Where a run was resumed: after ``epoch`` completed epochs."""

    epoch: int


@dataclass(frozen=True)
class RunMetrics(Record):
    """Every typed row of one run, in file order per kind."""

    train: tuple[TrainRow, ...] = ()
    evals: tuple[EvalRow, ...] = ()
    resumes: tuple[ResumeMark, ...] = ()

    @property
    def attempt(self) -> int:
        """The run's current attempt: how many times it was resumed."""
        return len(self.resumes)

    @property
    def done_epochs(self) -> int:
        """Epochs whose evaluation is logged (0 before the first)."""
        return max((r.epoch for r in self.evals), default=0)

    @property
    def empty(self) -> bool:
        """No training step and no evaluation logged yet."""
        return not self.train and not self.evals

    @property
    def last_step(self) -> int:
        """The last optimizer step logged (0 before the first)."""
        return max((r.step for r in self.train), default=0)

    @property
    def last_accuracy(self) -> float | None:
        """The last epoch's selection accuracy (None before the first evaluation)."""
        return self.evals[-1].accuracy if self.evals else None


def _typed(record: type[Record], row: dict[str, Any]) -> Any:
    """``row`` as ``record``, or None when it is not one."""
    try:
        return record.from_dict(row)
    except (LabError, TypeError, ValueError):
        return None


def metrics_of(rows: list[dict[str, Any]]) -> RunMetrics:
    """Typed rows of raw ``metrics.jsonl`` rows (``kind`` train / eval, ``event`` resumed); each
    training step knows its attempt (the resumes before it in the file)."""
    train: list[TrainRow] = []
    evals: list[EvalRow] = []
    resumes: list[ResumeMark] = []
    for row in rows:
        if row.get("kind") == "train":
            step = _typed(TrainRow, row)
            if step is not None:
                train.append(replace(step, attempt=len(resumes)))
        elif row.get("kind") == "eval" and (score := _typed(EvalRow, row)) is not None:
            evals.append(score)
        elif row.get("event") == "resumed" and (mark := _typed(ResumeMark, row)) is not None:
            resumes.append(mark)
    return RunMetrics(tuple(train), tuple(evals), tuple(resumes))


def run_metrics(run_id: str | os.PathLike) -> RunMetrics:
    """The typed rows of a run's ``metrics.jsonl`` so far."""
    return metrics_of(read_metrics(run_id))
