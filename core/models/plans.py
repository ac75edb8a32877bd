"""Pruning plans: which of a model's L transformer layers to keep, in order.

A plan names the kept layers by their 1-based index among the L transformer layers (hidden state ``i``
is the output of layer ``i``). ``top(p, L)`` keeps layers 1..p, the classic prune point; ``drop`` and
``keep`` remove any other set, e.g. a block of near-identical middle layers. Every constructor
validates, so an empty plan, a layer out of range, a duplicate, an unordered list or a plan dropping
every layer is a one-line :class:`~core.errors.PruneError` before any model is touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import PruneError
from core.io.records import Record

__all__ = ["PruningPlan", "parse_layers", "parse_plan", "layer_ranges"]


def layer_ranges(layers: Iterable[int]) -> str:
    """Sorted layer indices as compact ranges: ``[1, 2, 5, 6, 7]`` -> ``"1-2, 5-7"``."""
    parts: list[str] = []
    run: list[int] = []
    for layer in layers:
        if run and layer == run[-1] + 1:
            run.append(layer)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [layer]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(parts)


def parse_layers(text: str) -> tuple[int, ...]:
    """Layer indices from ``"3-4"``, ``"3,4,7"`` or ``"1-2, 5-12"`` (order kept; validity checked by the plan)."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"([0-9]+)(?:\s*-\s*([0-9]+))?", part, flags=re.ASCII)
        if match is None:
            raise PruneError(f"layers must read like '3-4' or '3,5,7', got {text!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise PruneError(f"layer range {part!r} runs backwards; write it low-high")
        out.extend(range(first, last + 1))
    return tuple(out)


def _check_layers(layers: Iterable[object], n_layers: int, what: str) -> tuple[int, ...]:
    """The layers as a tuple of ints in 1..n_layers, strictly increasing, non-empty; PruneError if not."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise PruneError(f"a model needs at least one transformer layer, got L={n_layers!r}")
    given = tuple(layers)
    if not given:
        raise PruneError(f"no layers to {what}: name at least one of 1..{n_layers}")
    items: list[int] = []
    for layer in given:
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise PruneError(f"layers to {what} must be integers, got {layer!r}")
        items.append(layer)
        if not 1 <= layer <= n_layers:
            raise PruneError(
                f"layer {layer} is out of range: the model has {n_layers} transformer layers (1..{n_layers})"
            )
    if len(set(items)) != len(items):
        dup = sorted({x for x in items if items.count(x) > 1})
        raise PruneError(f"layers to {what} name layer {layer_ranges(dup)} twice")
    if items != sorted(items):
        raise PruneError(f"layers to {what} must be in increasing order, got {items}")
    return tuple(items)


@dataclass(frozen=True)
class PruningPlan(Record):
    """The transformer layers a pruned model keeps (1-based, increasing) out of ``n_layers``."""

    kept: tuple[int, ...]
    n_layers: int

    def __post_init__(self) -> None:
        _check_layers(self.kept, self.n_layers, "keep")

    @classmethod
    def top(cls, p: int, n_layers: int) -> PruningPlan:
        """Keep layers 1..p: the prune point ``p``."""
        if isinstance(p, bool) or not isinstance(p, int):
            raise PruneError(f"prune point must be an integer, got {p!r}")
        if not 1 <= p <= n_layers:
            raise PruneError(
                f"prune point p={p} is out of range: the model has {n_layers} transformer layers, "
                f"so p must satisfy 1 <= p <= {n_layers}"
            )
        return cls(kept=tuple(range(1, p + 1)), n_layers=n_layers)

    @classmethod
    def drop(cls, layers: Iterable[int], n_layers: int) -> PruningPlan:
        """Drop ``layers`` (increasing), keep the rest; dropping every layer is refused."""
        dropped = _check_layers(layers, n_layers, "drop")
        kept = tuple(i for i in range(1, n_layers + 1) if i not in dropped)
        if not kept:
            raise PruneError(f"dropping all {n_layers} transformer layers leaves no model")
        return cls(kept=kept, n_layers=n_layers)

    @classmethod
    def keep(cls, layers: Iterable[int], n_layers: int) -> PruningPlan:
        """Keep exactly ``layers`` (increasing)."""
        return cls(kept=_check_layers(layers, n_layers, "keep"), n_layers=n_layers)

    @property
    def dropped(self) -> tuple[int, ...]:
        """The layers the plan removes."""
        return tuple(i for i in range(1, self.n_layers + 1) if i not in self.kept)

    @property
    def size(self) -> int:
        """How many transformer layers the pruned model has."""
        return len(self.kept)

    @property
    def is_top(self) -> bool:
        """Whether the plan keeps layers 1..p (a prune point)."""
        return self.kept == tuple(range(1, len(self.kept) + 1))

    @property
    def is_full(self) -> bool:
        """Whether the plan keeps every layer."""
        return len(self.kept) == self.n_layers

    def describe(self) -> str:
        """``"keep 1-2, 5-12"`` or, when shorter, ``"drop 3-4"`` (``"keep all 12"`` for the full model)."""
        if self.is_full:
            return f"keep all {self.n_layers}"
        keep = f"keep {layer_ranges(self.kept)}"
        drop = f"drop {layer_ranges(self.dropped)}"
        return drop if len(drop) < len(keep) else keep

    def key(self) -> str:
        """A short stable key for caches and file names: ``"L12-k1-2.5-12"``."""
        return f"L{self.n_layers}-k" + layer_ranges(self.kept).replace(", ", ".")

    @classmethod
    def from_key(cls, key: str) -> PruningPlan:
        """The plan :meth:`key` wrote (``"L12-k1-2.5-12"``); PruneError (one line) for anything else."""
        match = re.fullmatch(r"L([0-9]+)-k([0-9.\-]+)", str(key), flags=re.ASCII)
        if match is None:
            raise PruneError(f"a plan key reads like 'L12-k1-2.5-12', got {key!r}")
        return cls.keep(parse_layers(match.group(2).replace(".", ",")), int(match.group(1)))

    def hidden_state_index(self) -> dict[int, int]:
        """Pruned hidden-state index -> the full model's hidden-state index (0 -> 0, i -> kept[i-1])."""
        return {0: 0, **{i + 1: layer for i, layer in enumerate(self.kept)}}


def parse_plan(text: str, n_layers: int) -> PruningPlan:
    """The plan ``text`` names for a model of ``n_layers`` layers: ``"drop 3-4"``, ``"keep 1-2, 5-12"``,
    ``"keep all 12"`` (what :meth:`PruningPlan.describe` writes) or ``"top 6"``; PruneError (one line)
    otherwise."""
    words = str(text).strip().split(None, 1)
    verb = words[0].lower() if words else ""
    rest = words[1].strip() if len(words) > 1 else ""
    if verb not in ("drop", "keep", "top") or not rest:
        raise PruneError(
            f"a plan reads like 'drop 3-4', 'keep 1-2, 5-12' or 'top 6', got {str(text).strip()!r}"
        )
    if verb == "top":
        if not rest.isdigit():
            raise PruneError(f"'top' takes one number of layers, got {rest!r}")
        return PruningPlan.top(int(rest), n_layers)
    if verb == "keep" and re.fullmatch(r"all(?:\s+[0-9]+)?", rest, flags=re.ASCII):
        stated = rest.split()[1:]
        if stated and int(stated[0]) != n_layers:
            raise PruneError(f"plan {text!r} is for {stated[0]} layers; this model has {n_layers}")
        return PruningPlan.keep(range(1, n_layers + 1), n_layers)
    layers = parse_layers(rest)
    return (
        PruningPlan.drop(layers, n_layers) if verb == "drop" else PruningPlan.keep(layers, n_layers)
    )
