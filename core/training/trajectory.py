"""Word and speaker convexity of the model being trained, epoch by epoch, on one fixed probe set of clips.

A fine-tuning run measures, before its first step (epoch 0: the pretrained, possibly pruned encoder),
after every epoch and optionally every ``trajectory_every`` optimizer steps, the convexity of both label
sets at every hidden state of the encoder it trains, on a seeded, capped subset of the selection split
(the same clips every time, so the points of the trajectory compare like with like). Each measurement is
one ``metrics.jsonl`` row of kind ``"convexity"`` (written before the epoch's checkpoint, so a resumed run
neither repeats nor misses one); :func:`read_trajectory` turns a run's rows into a :class:`Trajectory`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LabError
from core.geometry.curves import LayerCurve
from core.io.records import Record
from core.io.run_folder import RunFolder
from core.models.encoder import SpeechEncoder
from core.training.model_convexity import convexity_curves, pooled_features

__all__ = [
    "KIND",
    "ProbeSet",
    "Trajectory",
    "TrajectoryPoint",
    "describe",
    "measure",
    "probe_set",
    "read_trajectory",
    "run_about",
    "run_trajectories",
    "trajectory_csv",
    "trajectory_rows",
]

KIND = "convexity"  # the metrics rows of a trajectory


@dataclass(frozen=True)
class ProbeSet:
    """The clips every trajectory point is measured on: waveforms and both label sets."""

    split: str
    waves: np.ndarray
    words: list[str]
    speakers: list[str]

    def __len__(self) -> int:
        return len(self.words)


def probe_set(
    split: str,
    waves: np.ndarray,
    words: Sequence[str],
    speakers: Sequence[str],
    cap: int | None,
    seed: int,
) -> ProbeSet:
    """A seeded subset of at most ``cap`` clips (all when ``cap`` is None), in their original order."""
    n = len(words)
    keep = np.arange(n)
    if cap is not None and n > cap:
        keep = np.sort(np.random.default_rng([seed, 23]).choice(n, size=cap, replace=False))
    return ProbeSet(
        split,
        waves[keep],
        [words[int(i)] for i in keep],
        [speakers[int(i)] for i in keep],
    )


@dataclass(frozen=True)
class TrajectoryPoint(Record):
    """Convexity per label set at one point of training: after ``epoch_progress`` of ``epoch``
    (epoch 0: before the first step), ``step`` optimizer steps in; ``seconds`` it took to measure."""

    epoch: int
    step: int
    epoch_progress: float
    seconds: float
    n_clips: int
    curves: dict[str, LayerCurve]

    @property
    def position(self) -> float:
        """Where in training the point lies, in epochs (1.5: half-way through the second epoch)."""
        return self.epoch - 1 + self.epoch_progress if self.epoch else 0.0

    def row(self) -> dict[str, Any]:
        """The ``metrics.jsonl`` row of this point."""
        return {"kind": KIND, **self.to_dict(), "time": time.time()}


def measure(
    enc: SpeechEncoder,
    probe: ProbeSet,
    *,
    epoch: int,
    step: int,
    epoch_progress: float,
    target_se: float,
    seed: int,
    batch_size: int,
) -> TrajectoryPoint:
    """Word and speaker convexity of ``enc`` (left in the train/eval mode it was in) on ``probe``."""
    t0 = time.perf_counter()
    features = pooled_features(enc, probe.waves, batch_size)
    curves = convexity_curves(
        features,
        probe.words,
        probe.speakers,
        target_se=target_se,
        seed=seed,
    )
    return TrajectoryPoint(
        epoch=epoch,
        step=step,
        epoch_progress=epoch_progress,
        seconds=time.perf_counter() - t0,
        n_clips=len(probe),
        curves=curves,
    )


@dataclass(frozen=True)
class Trajectory:
    """The convexity points of one run in training order, with the seconds its epochs took."""

    points: tuple[TrajectoryPoint, ...]
    epoch_seconds: Mapping[int, float]

    @property
    def label_sets(self) -> tuple[str, ...]:
        """The label sets measured (in the order of the first point that has them)."""
        names: dict[str, None] = {}
        for p in self.points:
            names.update(dict.fromkeys(p.curves))
        return tuple(names)

    @property
    def layers(self) -> tuple[int, ...]:
        """The hidden-state indices of the curves."""
        for p in self.points:
            for curve in p.curves.values():
                return curve.layers
        return ()

    def matrix(self, label_set: str) -> np.ndarray:
        """Scores (points x hidden states) of ``label_set``; NaN where a point lacks it."""
        out = np.full((len(self.points), len(self.layers)), np.nan)
        for i, p in enumerate(self.points):
            if label_set in p.curves:
                out[i] = p.curves[label_set].scores
        return out

    def overhead(self) -> float | None:
        """Seconds spent measuring during training over the seconds of the epochs measured (epoch 0 and
        points of epochs whose time is unknown do not count); None before the first epoch."""
        spent = sum(p.seconds for p in self.points if p.epoch in self.epoch_seconds)
        total = sum(
            self.epoch_seconds[e] for e in {p.epoch for p in self.points} & set(self.epoch_seconds)
        )
        return spent / total if total > 0 else None


def trajectory_of(rows: Sequence[Mapping[str, Any]]) -> Trajectory:
    """The trajectory in metrics rows: one point per (epoch, step), the last written; malformed rows skipped."""
    points: dict[tuple[int, int], TrajectoryPoint] = {}
    epoch_seconds: dict[int, float] = {}
    for row in rows:
        if (
            row.get("kind") == "eval"
            and isinstance(row.get("epoch"), int)
            and isinstance(row.get("epoch_seconds"), int | float)
        ):
            epoch_seconds[int(row["epoch"])] = float(row["epoch_seconds"])
        if row.get("kind") != KIND:
            continue
        try:
            point = TrajectoryPoint.from_dict(
                {k: v for k, v in row.items() if k not in ("kind", "time")}
            )
        except (LabError, TypeError, ValueError):
            continue
        points[(point.epoch, point.step)] = point
    ordered = tuple(sorted(points.values(), key=lambda p: (p.step, p.epoch)))
    return Trajectory(ordered, epoch_seconds)


def read_trajectory(run: str | Path) -> Trajectory:
    """The trajectory recorded in a run folder so far (empty when the run measured none)."""
    return trajectory_of(RunFolder(Path(run)).read_metrics())


def run_trajectories(run: str | Path) -> dict[str, Trajectory]:
    """The trajectories of a run that has any: its own (``""``, a fine-tuning run) or one per sweep point
    (``"p8"``)."""
    folder = RunFolder(Path(run))
    found = {"": read_trajectory(folder.path)}
    found.update({p.path.name: read_trajectory(p.path) for p in folder.points()})
    return {name: t for name, t in found.items() if t.points}


def describe(point: TrajectoryPoint) -> str:
    """One line: where in training, then each label set's scores per hidden state."""
    where = "pretrained" if point.epoch == 0 else f"epoch {point.position:g} (step {point.step})"
    curves = " | ".join(
        f"{name} " + " ".join(f"{s:.2f}" for s in curve.scores)
        for name, curve in point.curves.items()
    )
    return f"{where}: {curves or f'no curve ({point.n_clips} probe clips are too few)'}"


def trajectory_rows(traj: Trajectory) -> list[dict[str, Any]]:
    """One row per point, label set and hidden state (the CSV export's rows)."""
    rows = []
    for p in traj.points:
        for name, curve in p.curves.items():
            sems = curve.sems or (0.0,) * len(curve.scores)
            for layer, score, sem in zip(curve.layers, curve.scores, sems, strict=True):
                rows.append(
                    {
                        "label_set": name,
                        "epoch": p.epoch,
                        "step": p.step,
                        "position": round(p.position, 6),
                        "hidden_state": layer,
                        "score": score,
                        "sem": sem,
                        "n_clips": p.n_clips,
                    }
                )
    return rows


def trajectory_csv(traj: Trajectory, about: Mapping[str, Any]) -> str:
    """The trajectory as CSV, preceded by a ``# run: {json}`` line saying which run, model and probe."""
    import csv
    import io
    import json

    buf = io.StringIO()
    buf.write(f"# run: {json.dumps(dict(about), sort_keys=True)}\n")
    fields = ["label_set", "epoch", "step", "position", "hidden_state", "score", "sem", "n_clips"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(trajectory_rows(traj))
    return buf.getvalue()


def run_about(run: str | Path) -> dict[str, Any]:
    """What an export of a run's trajectory says it came from: run id, model, task, prune point, probe."""
    folder = RunFolder(Path(run))
    spec = folder.read_spec()
    config = dict(spec.config) if spec is not None else {}
    keys = ("model", "task", "prune_point", "dataset", "eval_split", "seed")
    probe = ("trajectory_clips", "trajectory_target_se", "trajectory_every")
    return {"run_id": folder.name} | {k: config.get(k) for k in keys + probe}
