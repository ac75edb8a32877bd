"""What the Convexity page shows, shaped from the stored curves: class tables, run-level settings,
the curves' measured cost, and notes on precision and prune-point stability.

Plain functions over ``ConvexityCurve`` and ``CurveStatistics`` returning frozen records or text, so
the page only lays them out (and tests read them without a browser).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.geometry.convexity import ConvexityCurve
from core.geometry.prune_stability import PruneStability
from core.io.records import Record
from core.results.compare import class_scores, is_exact

__all__ = [
    "CLASS_ORDERS",
    "ClassTable",
    "class_table",
    "run_settings",
    "curve_seconds",
    "precision_note",
    "stability_text",
]

# How the per-class heatmap orders its rows, top to bottom.
CLASS_ORDERS = ("score at prune point", "name")
LAYER_FIELDS = ("layer", "n_shortest_path_trees", "estimator")  # per layer, not per run


@dataclass(frozen=True)
class ClassTable(Record):
    """Per-class convexity of one label set: rows are classes in display order (top first)."""

    label_set: str
    classes: tuple[str, ...]
    layers: tuple[int, ...]
    scores: tuple[tuple[float, ...], ...]  # (classes, layers), NaN where a layer lacks the class
    sems: tuple[tuple[float, ...], ...]  # each class's own SE per layer
    exact: bool
    order: str

    def z(self) -> np.ndarray:
        """Scores as a (classes, layers) array."""
        return np.asarray(self.scores, dtype=float).reshape(len(self.classes), len(self.layers))

    def se(self) -> np.ndarray:
        """Each class's SE as a (classes, layers) array."""
        return np.asarray(self.sems, dtype=float).reshape(len(self.classes), len(self.layers))

    def largest_se(self) -> float:
        """The largest per-class SE shown (NaN if none)."""
        se = self.se()
        return float(np.nanmax(se)) if np.isfinite(se).any() else float("nan")


def class_table(curve: ConvexityCurve, prune_point: int, order: str) -> ClassTable:
    """Per-class scores and SEs of ``curve``, ordered by name (A to Z) or by score at the prune
    point (highest first; classes without a score there last)."""
    if order not in CLASS_ORDERS:
        raise ValueError(f"class order must be one of {CLASS_ORDERS}, got {order!r}")
    layers = [int(i) for i in curve.layers]
    per_class = class_scores(curve)
    classes = [str(c) for c in per_class]
    z = np.array([per_class[c] for c in per_class], dtype=float).reshape(len(classes), len(layers))
    se = np.full_like(z, np.nan)
    row = {c: i for i, c in enumerate(classes)}
    for j, result in enumerate(curve.results):
        for c, v in result.per_class.items():
            se[row[str(c)], j] = v.sem
    if order == "name":
        rank = sorted(range(len(classes)), key=lambda i: classes[i].casefold())
    else:
        col = layers.index(prune_point) if prune_point in layers else len(layers) - 1
        key = np.nan_to_num(z[:, col], nan=-np.inf)
        rank = sorted(range(len(classes)), key=lambda i: (-key[i], classes[i].casefold()))
    return ClassTable(
        label_set=curve.name,
        classes=tuple(classes[i] for i in rank),
        layers=tuple(layers),
        scores=tuple(tuple(float(v) for v in z[i]) for i in rank),
        sems=tuple(tuple(float(v) for v in se[i]) for i in rank),
        exact=is_exact(curve),
        order=order,
    )


def run_settings(curves: Mapping[str, ConvexityCurve]) -> dict[str, Any]:
    """The settings of the whole run (not of its first layer): the engine's settings less the
    per-layer fields, every layer computed, and per label set which layers were exact."""
    first = next(iter(curves.values()))
    settings = {k: v for k, v in first.results[0].settings.items() if k not in LAYER_FIELDS}
    settings["layers"] = [int(i) for i in first.layers]
    settings["exact"] = all(is_exact(c) for c in curves.values())
    settings["exact_layers"] = {
        name: [int(i) for i, e in zip(c.layers, c.exact, strict=True) if e]
        for name, c in curves.items()
    }
    settings["estimator_per_layer"] = {
        str(int(i)): r.settings.get("estimator")
        for i, r in zip(first.layers, first.results, strict=True)
    }
    return settings


def curve_seconds(curves: Mapping[str, ConvexityCurve]) -> float | None:
    """Measured seconds of the curves' own engine call (graphs and trees over every layer; the
    label sets share them), or None when the stored result carries no timings."""
    first = next(iter(curves.values()))
    total = 0.0
    for r in first.results:
        t = r.timings or {}
        if "knn_s" not in t or "paths_s" not in t:
            return None
        total += float(t["knn_s"]) + float(t["paths_s"])
    return total or None


def precision_note(name: str, curve: ConvexityCurve) -> str:
    """'word: exact' or 'speaker: ± 0.0041 at most (2 of 5 layers exact)'."""
    if is_exact(curve):
        return f"{name}: exact"
    n_exact = sum(curve.exact)
    return (
        f"{name}: ± {float(np.max(curve.sems)):.4f} at most "
        f"({n_exact} of {len(curve.exact)} layers exact)"
    )


def stability_text(name: str, stability: PruneStability) -> str:
    """One line per rule: point, margin, distribution, stable or not, at the stability's fraction."""
    parts = []
    for rule in (stability.threshold, stability.local_peak):
        margin = f"margin {rule.margin:+.3f}"
        if rule.margin_before is not None:
            margin += f"; layer {rule.point - 1} misses the bar by {rule.margin_before:.3f}"
        flag = "stable" if rule.stable else "**moves: not a fact**"
        parts.append(f"{rule.rule} p = {rule.point} ({margin}): {rule.summary()}, {flag}")
    return (
        f"**{name}** prune-point stability (threshold at {stability.fraction:.0%}): "
        + " · ".join(parts)
    )
