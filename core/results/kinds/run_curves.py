"""The ``finetune-convexity`` kind: a finished fine-tuning run's pretrained and fine-tuned convexity
curves on its evaluation split, copied from its run folder (keyed by the run id)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.io.records import Record
from core.results.registry import Computed, KindParts
from core.results.store import jsonable

__all__ = ["KIND", "PARTS", "RunCurve", "RunCurves", "encode_run_curves", "run_curves_request"]

KIND = "finetune-convexity"
STAGES = ("pretrained", "finetuned")


@dataclass(frozen=True)
class RunCurve(Record):
    """One label set's curve of a run: scores per hidden state (layers 0..L unless given), SEs."""

    scores: tuple[float, ...]
    layers: tuple[int, ...] = ()
    sems: tuple[float, ...] = ()


@dataclass(frozen=True)
class RunCurves(Record):
    """The JSON part of a run-curves entry: label set -> curve, before and after fine-tuning."""

    pretrained: dict[str, RunCurve] | None = None
    finetuned: dict[str, RunCurve] = field(default_factory=dict)

    def stages(self) -> dict[str, dict[str, RunCurve]]:
        """Stage name -> its curves (a stage without curves is left out)."""
        return {s: dict(getattr(self, s) or {}) for s in STAGES if getattr(self, s)}


def run_curves_request(run: str, split: Any) -> dict[str, Any]:
    """The key-relevant settings: the run id and its evaluation split."""
    return {"run": run, "split": split}


def encode_run_curves(conv: Mapping[str, Any], config: Mapping[str, Any]) -> Computed:
    """A run's ``convexity.json`` as stored, with the run's prune point and task as settings."""
    data = {k: conv.get(k) for k in ("pretrained", "finetuned", "split", "relevant")}
    settings = {"prune_point": config.get("prune_point"), "task": config.get("task")}
    return Computed(jsonable(data), {}, settings)


PARTS = KindParts(
    schema=RunCurves.from_dict,
    request=run_curves_request,
    compute=encode_run_curves,
    encode=encode_run_curves,
    decode=lambda entry: RunCurves.from_dict(entry.data),
)
