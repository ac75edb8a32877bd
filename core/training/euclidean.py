"""Euclidean convexity (Tětková et al.): do points on the segment between two same-class clips stay in the class?

For a fine-tuned classifier and a hidden-state index l: take a pair of clips of class c, their hidden
states at l (the whole frame sequence, as the network carries it), the 10 points
h = (1 - lam) h_s + lam h_t with lam = i / 11 (i = 1..10), run each through the rest of the network and
the head (layers l+1..L, final norm, pooling, classifier), and score the share predicted as c. Class score
= mean over sampled pairs, layer score = mean over classes.

The rest of the network is the model's own forward pass: a pre-hook on the module that receives hidden
state l (transformer layer l+1, or the head's projector for l = L) swaps in the interpolated states, so
every family is handled by transformers' own code. Standard error: pairs are sampled uniformly without
replacement, so SE_c = sd(pair scores) / sqrt(m) * sqrt(1 - m / M) (M unordered pairs; the segment is
the same set of points both ways), and the layer's SE = sqrt(sum_c SE_c^2) / C.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core.errors import TrainingError
from core.models.pruning import transformer_layers

LAMBDAS = tuple(i / 11 for i in range(1, 11))

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class EuclideanResult:
    """Euclidean convexity of one hidden state: layer score, its standard error, per-class details."""

    layer: int
    score: float
    sem: float
    per_class: dict[str, dict[str, float]]
    settings: dict[str, Any] = field(default_factory=dict)


def entry_module(clf: PreTrainedModel, layer: int) -> nn.Module:
    """The module whose input is hidden state ``layer``: transformer layer ``layer`` (0-based) or the head."""
    layers = transformer_layers(clf)
    if 0 <= layer < len(layers):
        return layers[layer]
    projector = getattr(clf, "projector", None)
    if layer == len(layers) and projector is not None:
        return projector
    raise TrainingError(f"layer must lie in 0..{len(layers)} for this classifier, got {layer}")


@contextmanager
def _swap_input(module: nn.Module, record: list | None, replace: torch.Tensor | None) -> Iterator:
    """Record the module's hidden-state input, or replace it, for the forward passes in the block."""

    def hook(_: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if args:
            current, args = args[0], args[1:]
        else:
            current = kwargs.pop("hidden_states")
        if record is not None:
            record.append(current.detach())
        new = current if replace is None else replace.to(current.dtype)
        return (new, *args), kwargs

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _hidden_inputs(
    clf: PreTrainedModel, inputs: Callable[[np.ndarray], dict], module: nn.Module, waves: np.ndarray
) -> torch.Tensor:
    """The hidden states that ``module`` receives for each clip (B, T, D)."""
    seen: list[torch.Tensor] = []
    with _swap_input(module, seen, None):
        clf(**inputs(waves))
    return seen[0]


@torch.no_grad()
def _pair_scores(
    clf: PreTrainedModel,
    inputs: Callable[[np.ndarray], dict],
    module: nn.Module,
    waves: np.ndarray,
    pairs: np.ndarray,
    target: int,
) -> np.ndarray:
    """Share of the 10 segment points predicted as ``target``, for each pair (B,) of clip indices."""
    h_s = _hidden_inputs(clf, inputs, module, waves[pairs[:, 0]])
    h_t = _hidden_inputs(clf, inputs, module, waves[pairs[:, 1]])
    lam = torch.tensor(LAMBDAS, dtype=h_s.dtype, device=h_s.device).view(1, -1, 1, 1)
    mixed = (1 - lam) * h_s[:, None] + lam * h_t[:, None]  # (B, 10, T, D)
    mixed = mixed.reshape(-1, *h_s.shape[1:])
    carrier = np.repeat(waves[pairs[:, 0]], len(LAMBDAS), axis=0)  # masks and shapes of clip s
    with _swap_input(module, None, mixed):
        logits = clf(**inputs(carrier)).logits
    hits = (logits.argmax(-1) == target).float().view(len(pairs), len(LAMBDAS))
    return hits.mean(dim=1).cpu().numpy()


def _sample_pairs(members: np.ndarray, max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``max_pairs`` unordered pairs of distinct members, uniformly without replacement."""
    every = np.array(list(combinations(members.tolist(), 2)), dtype=np.int64).reshape(-1, 2)
    if len(every) > max_pairs:
        every = every[np.sort(rng.choice(len(every), size=max_pairs, replace=False))]
    return every


def euclidean_convexity(
    clf: PreTrainedModel,
    inputs: Callable[[np.ndarray], dict],
    waves: np.ndarray,
    labels: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    pairs_per_class: int = 20,
    batch_pairs: int = 8,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[EuclideanResult]:
    """Euclidean convexity per hidden state of a fine-tuned classifier on labelled clips.

    ``inputs(waves)`` turns waveforms (B, S) into the classifier's keyword inputs on its device (e.g.
    ``core.models.classifier.model_inputs`` bound to the run's encoder). ``labels`` must be the classifier's own
    class names (``clf.config.label2id``); clips of other labels are ignored. The same pairs are used for
    every layer, so curves are comparable.
    """
    label2id = {str(k): int(v) for k, v in (clf.config.label2id or {}).items()}
    names = np.array([str(x) for x in labels])
    if len(names) != len(waves):
        raise TrainingError(f"{len(names)} labels for {len(waves)} clips")
    rng = np.random.default_rng(seed)
    chosen = {
        c: _sample_pairs(np.flatnonzero(names == c), pairs_per_class, rng)
        for c in sorted(set(names.tolist()) & set(label2id))
    }
    chosen = {c: p for c, p in chosen.items() if len(p)}
    if not chosen:
        raise TrainingError("no class of the classifier has two clips here")
    n_layers = len(transformer_layers(clf))
    todo = list(range(n_layers + 1)) if layers is None else [int(i) for i in layers]
    was_training = clf.training
    clf.eval()
    results = []
    for done, layer in enumerate(todo, start=1):
        module = entry_module(clf, layer)
        per_class: dict[str, dict[str, float]] = {}
        for c, pairs in chosen.items():
            n = int((names == c).sum())
            scores = np.concatenate(
                [
                    _pair_scores(
                        clf, inputs, module, waves, pairs[i : i + batch_pairs], label2id[c]
                    )
                    for i in range(0, len(pairs), batch_pairs)
                ]
            )
            m, population = len(scores), n * (n - 1) // 2
            sd = float(np.std(scores, ddof=1)) if m > 1 else 0.0
            sem = sd / math.sqrt(m) * math.sqrt(max(0.0, 1 - m / population))
            per_class[c] = {"score": float(scores.mean()), "sem": sem, "n_pairs": m}
        class_scores = np.array([v["score"] for v in per_class.values()])
        class_sems = np.array([v["sem"] for v in per_class.values()])
        results.append(
            EuclideanResult(
                layer=layer,
                score=float(class_scores.mean()),
                sem=float(math.sqrt(float((class_sems**2).sum())) / len(class_sems)),
                per_class=per_class,
                settings={
                    "pairs_per_class": pairs_per_class,
                    "lambdas": list(LAMBDAS),
                    "seed": seed,
                },
            )
        )
        if progress is not None:
            progress(done, len(todo))
    clf.train(was_training)
    return results
