"""Word and speaker convexity of a fine-tuned model next to its pretrained encoder, on the same clips.

``convexity.json`` of a run folder is a :class:`ConvexityComparison`: both curves come from the same
clips (the split the run is scored on), so "fine-tuning raised speaker convexity" compares like with
like. ``result.json`` keeps the scores only (:class:`ConvexityScores`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.geometry.curves import LayerCurve
from core.geometry.options import DEFAULT_K, ConvexityOptions
from core.io.records import Record
from core.models.classifier import autocast
from core.models.encoder import SpeechEncoder

__all__ = [
    "ConvexityComparison",
    "ConvexityScores",
    "LayerCurve",
    "convexity_curves",
    "pooled_features",
]


@dataclass(frozen=True)
class ConvexityScores(Record):
    """The scores of a comparison as stored in ``result.json``: label set -> score per hidden state."""

    pretrained: dict[str, tuple[float, ...]]
    finetuned: dict[str, tuple[float, ...]]
    split: str | None = None  # None: a run folder older than this field
    n_clips: int | None = None


@dataclass(frozen=True)
class ConvexityComparison(Record):
    """``convexity.json``: pretrained and fine-tuned curves per label set, on ``n_clips`` clips of ``split``."""

    split: str
    n_clips: int
    relevant: str = "word"  # the label set of the task: "word" or "speaker"
    pretrained: dict[str, LayerCurve] = field(default_factory=dict)
    finetuned: dict[str, LayerCurve] = field(default_factory=dict)

    def scores(self) -> ConvexityScores:
        """The scores only, for ``result.json``."""
        return ConvexityScores(
            pretrained={k: c.scores for k, c in self.pretrained.items()},
            finetuned={k: c.scores for k, c in self.finetuned.items()},
            split=self.split,
            n_clips=self.n_clips,
        )


def pooled_features(enc: SpeechEncoder, waves: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, L+1, D) mean-pooled hidden states of ``waves`` under ``enc`` (eval mode)."""
    was = enc.model.training
    enc.model.eval()
    try:
        with autocast(enc.device):
            out = enc.pooled(waves, batch_size=batch_size)
    finally:
        enc.model.train(was)
    return out.numpy()


def convexity_curves(
    features: np.ndarray,
    words: list[str],
    speakers: list[str],
    *,
    max_pairs: int | None = 5000,
    target_se: float | None = None,
    seed: int = 0,
    k: int = DEFAULT_K,
) -> dict[str, LayerCurve]:
    """Layerwise word and speaker convexity of pooled features (N, L+1, D) on a ``k``-NN graph, at the
    precision of ``max_pairs`` per class or, when given, ``target_se``; a label set without two classes
    of two clips each (a few test clips of many speakers) has no convexity and is left out, and so is
    everything when there are no more than ``k`` clips."""
    from collections import Counter

    from core.geometry.convexity import layerwise_convexity

    sets = {
        name: labels
        for name, labels in (("word", words), ("speaker", speakers))
        if sum(n >= 2 for lab, n in Counter(labels).items() if lab) >= 2
    }
    if not sets or len(words) <= k:
        return {}
    curves = layerwise_convexity(
        features,
        sets,
        ConvexityOptions(k=k, max_pairs_per_class=max_pairs, target_se=target_se, seed=seed),
    )
    return {name: LayerCurve.of(c) for name, c in curves.items()}
