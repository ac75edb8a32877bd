"""Scoring a classifier on labelled clips: accuracy, mean cross-entropy and per-class accuracy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from core.io.records import Record
from core.models.classifier import autocast, model_inputs
from core.models.encoder import SpeechEncoder

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["EvalResult", "evaluate"]


@dataclass(frozen=True)
class EvalResult(Record):
    """A classifier's figures on ``n`` clips: accuracy, mean cross-entropy, accuracy per class label."""

    accuracy: float
    loss: float = math.nan
    n: int = 0
    per_class: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def evaluate(
    clf: PreTrainedModel,
    enc: SpeechEncoder,
    waves: np.ndarray,
    targets: np.ndarray,
    *,
    batch_size: int = 64,
    bf16: bool = True,
) -> EvalResult:
    """Accuracy, mean cross-entropy and per-class accuracy of ``clf`` on clips (N, S) with class ids (N,)."""
    was_training = clf.training
    clf.eval()
    preds = np.empty(len(waves), dtype=np.int64)
    loss_sum = 0.0
    for i in range(0, len(waves), batch_size):
        inputs = model_inputs(enc, waves[i : i + batch_size])
        y = torch.from_numpy(targets[i : i + batch_size]).to(enc.device)
        with autocast(enc.device, bf16):
            logits = clf(**inputs).logits.float()
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        preds[i : i + len(y)] = logits.argmax(-1).cpu().numpy()
    clf.train(was_training)
    correct = preds == targets
    id2label = {int(k): str(v) for k, v in (clf.config.id2label or {}).items()}
    per_class = {
        str(id2label[int(c)]): float(correct[targets == c].mean()) for c in np.unique(targets)
    }
    return EvalResult(
        accuracy=float(correct.mean()) if len(waves) else math.nan,
        loss=loss_sum / max(1, len(waves)),
        n=len(waves),
        per_class=per_class,
    )
