"""Mimicking layers: each dropped block of consecutive layers replaced by one layer trained to reproduce it.

Dorszewski et al., "How Redundant Is the Transformer Stack in Speech Representation Models?" (ICASSP
2025, arXiv 2409.16302, Sec. "mimicking layers") replace redundant blocks, and finally the whole
transformer stack, by small layers trained by knowledge distillation on unlabelled speech to reproduce
the representation the removed layers produced, cutting the network by 95-98% at little loss. The
exact layer type, loss and schedule of their mimicking networks were not in the sources reachable here
(the abstract and summaries); what this module chooses, and why:

- **The mimicking layer is one transformer layer of the model's own family**, initialised from the
  block's *first* layer. So the result is the block's plan (keep the first layer, drop the rest; see
  ``core.geometry.redundancy``) with that layer's weights trained: a normal model of the same class,
  of depth ``plan.size``, that ``save_pretrained`` -> ``from_pretrained`` rebuilds and that the probes,
  the feature cache and fine-tuning take like any pruned model. Its size is one layer (e.g. 1.8 M
  parameters in Whisper tiny, 7.1 M in a base-size wav2vec2); a smaller bespoke layer would need
  custom code to load.
- **Starting from the first layer** makes "keep the first layer alone" (the retraining-free block
  plan) the untrained starting point, so training can only be compared against it.
- **Training target**: the frame-level output of the block's *last* layer in the full model, given the
  block's input (the output of layer ``first - 1``, which the pruned model computes unchanged), mean
  squared error over valid frames (see ``core.training.mimic_training``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn

from core.errors import PruneError
from core.io.records import Record
from core.models.plans import PruningPlan
from core.models.pruning import apply_plan, transformer_layers

__all__ = ["MimicBlock", "MimicPlan", "mimic_layers", "mimic_parameters", "mimic_model"]


@dataclass(frozen=True)
class MimicBlock(Record):
    """One block ``first..last`` (1-based, ``last > first``) replaced by a trained copy of layer ``first``."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not 1 <= self.first < self.last:
            raise PruneError(
                f"a mimicked block needs at least two layers, got {self.first}-{self.last}"
            )


@dataclass(frozen=True)
class MimicPlan(Record):
    """The blocks a model's mimicking layers replace, out of ``n_layers``."""

    blocks: tuple[MimicBlock, ...]
    n_layers: int

    def __post_init__(self) -> None:
        if not self.blocks:
            raise PruneError("no block to mimic: name at least one, e.g. 3-5")
        previous = 0
        for block in self.blocks:
            if block.last > self.n_layers:
                raise PruneError(
                    f"block {block.first}-{block.last} is out of range: the model has "
                    f"{self.n_layers} transformer layers"
                )
            if block.first <= previous:
                raise PruneError("mimicked blocks must be in increasing order and not overlap")
            previous = block.last

    @classmethod
    def of(cls, blocks: Iterable[tuple[int, int]], n_layers: int) -> MimicPlan:
        """From ``(first, last)`` pairs."""
        return cls(tuple(MimicBlock(int(a), int(b)) for a, b in blocks), int(n_layers))

    @property
    def plan(self) -> PruningPlan:
        """The pruning plan: every block's layers after its first dropped."""
        dropped = [i for b in self.blocks for i in range(b.first + 1, b.last + 1)]
        return PruningPlan.drop(dropped, self.n_layers)

    def positions(self) -> tuple[int, ...]:
        """Each mimicking layer's 1-based index in the pruned model (its hidden state there)."""
        kept = self.plan.kept
        return tuple(kept.index(b.first) + 1 for b in self.blocks)

    def describe(self) -> str:
        """'mimic 2-4 (drop 3-4)'."""
        spans = ", ".join(f"{b.first}-{b.last}" for b in self.blocks)
        return f"mimic {spans} ({self.plan.describe()})"


def mimic_model(model: Any, mimic: MimicPlan) -> Any:
    """``model`` pruned to the mimic plan (in place, like ``apply_plan``): its mimicking layers are the
    blocks' first layers, ready to train."""
    return apply_plan(model, mimic.plan)


def mimic_layers(model: Any, mimic: MimicPlan) -> list[nn.Module]:
    """The mimicking layers of a model already pruned by ``mimic_model``."""
    layers = transformer_layers(model)
    if len(layers) != mimic.plan.size:
        raise PruneError(
            f"the model has {len(layers)} layers; the mimic plan leaves {mimic.plan.size}"
        )
    return [layers[i - 1] for i in mimic.positions()]


def mimic_parameters(model: Any, mimic: MimicPlan) -> int:
    """Parameters of the mimicking layers (of a model pruned by ``mimic_model``)."""
    return sum(p.numel() for layer in mimic_layers(model, mimic) for p in layer.parameters())
