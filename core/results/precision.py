"""How precisely a convexity curve is asked for: a target standard error, the authors' pair budget, or
every pair. One definition for the CLI and the dashboard, so a curve computed by either has the same
store request and opens in the other as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import ConvexityInputError
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions
from core.geometry.sampling import DEFAULT_TARGET_SE

__all__ = ["DEFAULT_PRECISION", "PRESETS", "Precision", "preset"]


@dataclass(frozen=True)
class Precision:
    """One precision setting: ``target_se`` (sources added until the layer SE is at most this),
    else ``max_pairs_per_class`` (the authors' scheme), else every pair (exact)."""

    label: str
    target_se: float | None = None
    max_pairs_per_class: int | None = None

    def __post_init__(self) -> None:
        if self.target_se is not None and not 0 < self.target_se < 1:
            raise ConvexityInputError(f"target SE must lie in (0, 1), got {self.target_se}")
        if self.max_pairs_per_class is not None and self.max_pairs_per_class < 1:
            raise ConvexityInputError(
                f"pairs per class must be >= 1, got {self.max_pairs_per_class}"
            )

    @classmethod
    def target(cls, se: float) -> Precision:
        """A target standard error of the layer score."""
        return cls(f"± {se:g}", target_se=float(se))

    @classmethod
    def pairs(cls, n: int) -> Precision:
        """The authors' scheme: the precision of ``n`` sampled pairs per class."""
        return cls(f"authors' {n:,} pairs", max_pairs_per_class=int(n))

    @classmethod
    def exact(cls) -> Precision:
        """Every ordered pair scored."""
        return cls("exact")

    def options(self, base: ConvexityOptions = DEFAULT_OPTIONS, **changes: Any) -> ConvexityOptions:
        """``base`` (with ``changes``: k, seed, device, ...) estimated at this precision."""
        options = base.with_(**changes)
        if self.target_se is not None:
            return options.with_(target_se=self.target_se)
        return options.with_(target_se=None, max_pairs_per_class=self.max_pairs_per_class)

    def key_part(self) -> dict[str, Any]:
        """This precision's one setting, as a checkpoint series' store key holds it."""
        if self.target_se is not None:
            return {"target_se": self.target_se}
        return {"max_pairs_per_class": self.max_pairs_per_class}

    def describe(self) -> str:
        """One phrase for logs and captions."""
        if self.target_se is not None:
            return f"target standard error {self.target_se:g}"
        if self.max_pairs_per_class is not None:
            return f"precision of {self.max_pairs_per_class} pairs/class"
        return "exhaustive"


DEFAULT_PRECISION = Precision.target(DEFAULT_TARGET_SE)
PRESETS: dict[str, Precision] = {
    p.label: p
    for p in (
        Precision.target(0.01),
        DEFAULT_PRECISION,
        Precision.target(0.002),
        Precision.pairs(5000),
        Precision.exact(),
    )
}


def preset(label: str) -> Precision:
    """The preset named ``label`` (as the dashboard lists them)."""
    if label not in PRESETS:
        raise ConvexityInputError(f"unknown precision {label!r}; choose {', '.join(PRESETS)}")
    return PRESETS[label]
