"""What a fine-tuning run reports (``result.json``), as typed records that read old run folders too.

The JSON keys are the ones ``result.json`` has always had (``best_accuracy``, ``per_class_accuracy``,
``params.total``, ``test_accuracy`` ...); new keys (``n_test``, ``split_rule``, ``convexity.split``) are
optional on read, so folders written before them still load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from core.models.identity import ModelIdentity
from core.training.evaluation import EvalResult
from core.training.model_convexity import ConvexityScores

__all__ = ["FinetuneResult", "ParamCounts"]


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts by part (see ``core.models.pruning.count_parameters``)."""

    total: int
    front_end: int = 0
    transformer: int = 0
    head: int = 0
    trainable: int = 0

    def to_dict(self) -> dict[str, int]:
        """Plain dict for JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParamCounts:
        """Inverse of :meth:`to_dict` (missing parts read as 0)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in data.items() if k in names})


@dataclass(frozen=True)
class FinetuneResult:
    """One fine-tuning run: the model chosen on ``eval_split`` and its scores there and on ``test_split``.

    ``best`` is the best checkpoint re-scored on the selection split (``eval_split``); ``test`` the same
    checkpoint on ``test_split`` (None when the run had no separate test split). Report ``scored``.
    """

    model: str
    task: str
    prune_point: int
    n_layers: int
    labels: tuple[str, ...]
    n_train: int
    eval_split: str
    best_epoch: int
    best: EvalResult
    params: ParamCounts
    train_seconds: float
    epoch_seconds_median: float | None
    steps_per_epoch: int
    device: str
    checkpoints: dict[str, str] = field(default_factory=dict)
    test_split: str | None = None
    test: EvalResult | None = None
    convexity: ConvexityScores | None = None
    split_rule: str = ""  # how the dataset's splits were made for this task ("" in old folders)
    total_seconds: float = math.nan
    model_identity: ModelIdentity | None = None  # the weights trained (None in old folders)
    plan: str | None = None  # the layers kept when a plan named them ("drop 3-4"); None: top p

    @property
    def layers_text(self) -> str:
        """What the trained model kept: its plan (``"drop 3-4"``), ``"p = 8"`` or ``"full model"``."""
        if self.plan:
            return self.plan
        return f"p = {self.prune_point}"

    @property
    def best_accuracy(self) -> float:
        """Accuracy of the best checkpoint on the selection split."""
        return self.best.accuracy

    @property
    def test_accuracy(self) -> float | None:
        """Accuracy of the best checkpoint on the test split (None without one)."""
        return self.test.accuracy if self.test is not None else None

    @property
    def scored(self) -> EvalResult:
        """The figures to report: on the test split when there is one, else on the selection split."""
        return self.test if self.test is not None else self.best

    @property
    def scored_split(self) -> str:
        """The split :attr:`scored` belongs to."""
        return self.test_split if self.test is not None and self.test_split else self.eval_split

    def to_dict(self) -> dict[str, Any]:
        """``result.json``'s dict (the long-standing flat keys)."""
        out: dict[str, Any] = {
            "model": self.model,
            "task": self.task,
            "prune_point": self.prune_point,
            "n_layers": self.n_layers,
            **({"plan": self.plan} if self.plan else {}),
            "labels": list(self.labels),
            "n_train": self.n_train,
            "n_eval": self.best.n,
            "eval_split": self.eval_split,
            "best_epoch": self.best_epoch,
            "best_accuracy": self.best.accuracy,
            "best_loss": self.best.loss,
            "per_class_accuracy": dict(self.best.per_class),
            "params": self.params.to_dict(),
            "train_seconds": self.train_seconds,
            "epoch_seconds_median": self.epoch_seconds_median,
            "steps_per_epoch": self.steps_per_epoch,
            "device": self.device,
            "checkpoints": dict(self.checkpoints),
        }
        if self.convexity is not None:
            out["convexity"] = self.convexity.to_dict()
        if self.test is not None:
            out.update(
                test_split=self.test_split,
                test_accuracy=self.test.accuracy,
                test_loss=self.test.loss,
                test_per_class_accuracy=dict(self.test.per_class),
                n_test=self.test.n,
            )
        out["split_rule"] = self.split_rule
        out["total_seconds"] = self.total_seconds
        if self.model_identity is not None:
            out["model_identity"] = self.model_identity.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneResult:
        """Inverse of :meth:`to_dict`; reads ``result.json`` of older runs too."""
        best = EvalResult(
            accuracy=float(data["best_accuracy"]),
            loss=float(data.get("best_loss", math.nan)),
            n=int(data.get("n_eval", 0)),
            per_class=dict(data.get("per_class_accuracy") or {}),
        )
        test = None
        if data.get("test_accuracy") is not None:
            test = EvalResult(
                accuracy=float(data["test_accuracy"]),
                loss=float(data.get("test_loss", math.nan)),
                n=int(data.get("n_test", 0)),
                per_class=dict(data.get("test_per_class_accuracy") or {}),
            )
        conv = data.get("convexity")
        median = data.get("epoch_seconds_median")
        return cls(
            model=str(data["model"]),
            task=str(data["task"]),
            prune_point=int(data["prune_point"]),
            n_layers=int(data.get("n_layers", data["prune_point"])),
            labels=tuple(str(x) for x in data.get("labels", ())),
            n_train=int(data.get("n_train", 0)),
            eval_split=str(data.get("eval_split", "test")),
            best_epoch=int(data.get("best_epoch", 0)),
            best=best,
            params=ParamCounts.from_dict(data.get("params") or {"total": 0}),
            train_seconds=float(data.get("train_seconds", math.nan)),
            epoch_seconds_median=float(median) if median is not None else None,
            steps_per_epoch=int(data.get("steps_per_epoch", 0)),
            device=str(data.get("device", "")),
            checkpoints=dict(data.get("checkpoints") or {}),
            test_split=data.get("test_split"),
            test=test,
            convexity=ConvexityScores.from_dict(conv) if conv else None,
            split_rule=str(data.get("split_rule", "")),
            total_seconds=float(data.get("total_seconds", math.nan)),
            model_identity=ModelIdentity.from_dict(ident)
            if (ident := data.get("model_identity"))
            else None,
            plan=str(data["plan"]) if data.get("plan") else None,
        )
