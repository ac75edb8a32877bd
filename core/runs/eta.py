"""Elapsed time and an estimate of time remaining of a fine-tune, from its ``metrics.jsonl`` rows.

Train rows carry ``epoch``, ``epoch_progress`` (fraction of the epoch's batches done) and ``time`` (Unix
seconds); eval rows close an epoch with ``epoch_seconds``. The per-epoch estimate is the median of finished
epochs, else the rate inside the current epoch; evaluation time is not included.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["TrainingEta", "training_eta"]


@dataclass(frozen=True)
class TrainingEta:
    """Where a fine-tune stands in time (seconds; None where there is not enough to estimate yet)."""

    elapsed: float
    epoch: int  # the epoch in progress (1-based), or the last one finished
    epochs: int
    epoch_fraction: float  # of the epoch in progress
    seconds_per_epoch: float | None
    epoch_remaining: float | None
    total_remaining: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingEta:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def training_eta(
    rows: list[dict[str, Any]], epochs: int, started: float | None = None, now: float | None = None
) -> TrainingEta:
    """Elapsed and remaining time of a run with ``epochs`` epochs, from its metrics rows so far."""
    now = time.time() if now is None else now
    train = [r for r in rows if r.get("kind") == "train" and "time" in r]
    evals = [r for r in rows if r.get("kind") == "eval"]
    stamps = [float(r["time"]) for r in rows if isinstance(r.get("time"), int | float)]
    start = started if started is not None else (min(stamps) if stamps else now)
    done = max((int(r.get("epoch", 0)) for r in evals), default=0)
    finished = [float(r["epoch_seconds"]) for r in evals if r.get("epoch_seconds")]
    current = [r for r in train if int(r.get("epoch", 0)) > done]
    fraction = float(current[-1].get("epoch_progress", 0.0)) if current else 0.0
    per_epoch = statistics.median(finished) if finished else None
    if per_epoch is None and len(current) >= 2:  # first epoch: its own rate so far
        dp = float(current[-1]["epoch_progress"]) - float(current[0]["epoch_progress"])
        dt = float(current[-1]["time"]) - float(current[0]["time"])
        per_epoch = dt / dp if dp > 0 else None
    epoch = min(done + 1, epochs) if done < epochs else epochs
    if per_epoch is None or done >= epochs:
        left = 0.0 if done >= epochs else None
        return TrainingEta(now - start, epoch, epochs, fraction, per_epoch, left, left)
    epoch_left = (1.0 - fraction) * per_epoch
    total = epoch_left + (epochs - done - 1) * per_epoch
    return TrainingEta(now - start, epoch, epochs, fraction, per_epoch, epoch_left, total)
