"""The light curve type: a label set's convexity per hidden state, without per-class detail.

There are two curve types, each for a reason: :class:`core.geometry.convexity.ConvexityCurve` is the
engine's full answer (every layer's per-class estimates, pair counts and settings: what the results
store keeps and exports); :class:`LayerCurve` is what a run folder, a sweep, the bundled sample's
stored curves and a plot need (scores, standard errors, exactness per hidden state), small enough to
live inside other records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ConvexityInputError
from core.io.records import Record

__all__ = ["LayerCurve"]


@dataclass(frozen=True)
class LayerCurve(Record):
    """Convexity per hidden-state index ``layers`` with standard errors (0 where exact)."""

    scores: tuple[float, ...]
    sems: tuple[float, ...] = ()
    layers: tuple[int, ...] = ()
    exact: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.scores)
        if not self.layers:
            object.__setattr__(self, "layers", tuple(range(n)))
        if not n or any(len(part) not in (0, n) for part in (self.sems, self.exact)):
            raise ConvexityInputError(
                "a curve needs one score (and SE, exactness) per hidden state"
            )
        if len(self.layers) != n:
            raise ConvexityInputError(f"a curve of {n} scores has {len(self.layers)} layers")

    @property
    def all_exact(self) -> bool:
        """Whether every hidden state's score is exact (every pair scored, SE 0)."""
        return bool(self.exact) and all(self.exact)

    @classmethod
    def of(cls, curve: Any) -> LayerCurve:
        """The light form of an engine :class:`~core.geometry.convexity.ConvexityCurve`."""
        return cls(
            scores=tuple(float(s) for s in curve.scores),
            sems=tuple(float(s) for s in curve.sems),
            layers=tuple(int(i) for i in curve.layers),
            exact=tuple(bool(e) for e in curve.exact),
        )
