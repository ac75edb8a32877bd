"""The typed data of a checkpoint-series entry: which checkpoints, in order, and each one's curves.

Low in the results package (records only) so the store's schema check and the series module share one
definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.geometry.curves import LayerCurve
from core.io.records import Record

__all__ = ["Checkpoint", "CheckpointSeries"]


@dataclass(frozen=True)
class Checkpoint(Record):
    """One model of a series: its display name, what was loaded and the feature set measured."""

    name: str
    model: str
    feature_key: str
    weights: str
    n_layers: int


@dataclass(frozen=True)
class CheckpointSeries(Record):
    """Convexity curves of one clip selection under an ordered list of checkpoints, per label set."""

    checkpoints: tuple[Checkpoint, ...]
    label_sets: tuple[str, ...]
    curves: dict[str, tuple[LayerCurve, ...]]  # label set -> one curve per checkpoint
    precision: str

    @property
    def layers(self) -> tuple[int, ...]:
        """Hidden-state indices of the deepest checkpoint (shallower, pruned ones stop earlier)."""
        return tuple(range(max(c.n_layers for c in self.checkpoints) + 1))

    def matrix(self, label_set: str) -> np.ndarray:
        """Scores (checkpoints x hidden states) of ``label_set``; NaN past a checkpoint's depth."""
        out = np.full((len(self.checkpoints), len(self.layers)), np.nan)
        for i, curve in enumerate(self.curves.get(label_set, ())):
            out[i, list(curve.layers)] = curve.scores
        return out
