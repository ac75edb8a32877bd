"""Check a stored convexity result against a fresh computation on the cached features it names.

An imported result cannot be told from a forged one by its checksums (keys are built from public
facts), so ``results verify KEY`` recomputes it. The full curve is recomputed with the stored request
(same seed: the same numbers on the same device). Where that is costly, ``max_classes`` recomputes a
seeded subset of classes exactly instead: a class's score counts only path vertices of its own label,
so giving every other clip a label of its own (a singleton, excluded) leaves the chosen classes'
scores as they are in the full curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.data.features import load_cached_features
from core.errors import ResultError
from core.geometry.convexity import ConvexityCurve, layerwise_convexity
from core.geometry.options import ConvexityOptions
from core.io.records import Record
from core.results.kinds.convexity import KIND as CONVEXITY
from core.results.kinds.convexity import decode_curves
from core.results.store import StoredResult, load_result, resolve_result_key

__all__ = ["Agreement", "Verification", "verify_result"]

Z = 3.0  # sampled estimates agree when within this many combined standard errors
EXACT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Agreement(Record):
    """One stored number against its recomputation (a layer score, or one class's score)."""

    label_set: str
    layer: int
    what: str  # "layer" or the class label
    stored: float
    recomputed: float
    bound: float  # the largest difference that still agrees

    @property
    def agrees(self) -> bool:
        """Whether the two agree within the bound (NaN agrees with NaN only)."""
        if math.isnan(self.stored) or math.isnan(self.recomputed):
            return math.isnan(self.stored) and math.isnan(self.recomputed)
        return abs(self.stored - self.recomputed) <= self.bound


@dataclass(frozen=True)
class Verification(Record):
    """The outcome of ``verify_result``: every compared number, and what was compared."""

    key: str
    origin: str
    scope: str  # "full curve" or "N seeded classes per label set, exact"
    checks: tuple[Agreement, ...]

    @property
    def agrees(self) -> bool:
        """Whether every compared number agrees."""
        return all(c.agrees for c in self.checks)

    def disagreements(self) -> list[Agreement]:
        """The numbers that do not agree."""
        return [c for c in self.checks if not c.agrees]


def _bound(sem_a: float, sem_b: float) -> float:
    return Z * math.hypot(sem_a, sem_b) + EXACT_TOLERANCE


def _entry(key: str) -> StoredResult:
    full = resolve_result_key(key)
    entry = load_result(full)
    if entry is None:
        raise ResultError(f"stored result {full[:12]} is missing or invalid")
    if entry.kind != CONVEXITY:
        raise ResultError(
            f"results verify checks convexity curves; {full[:12]} is {entry.kind} "
            "(remove it with 'results rm' to have it computed here)"
        )
    return entry


def _class_subset(labels: list[str], max_classes: int, seed: int) -> tuple[list[str], set[str]]:
    """Labels where all but ``max_classes`` seeded classes (of 2+ clips) become singletons."""
    names, counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)
    eligible = sorted(str(n) for n, c in zip(names, counts, strict=True) if c >= 2)
    rng = np.random.default_rng(seed)
    chosen = set(rng.permutation(eligible)[:max_classes].tolist())
    relabelled = [lab if lab in chosen else f"\0other-{i}" for i, lab in enumerate(labels)]
    return relabelled, chosen


def _curve_checks(name: str, stored: ConvexityCurve, fresh: ConvexityCurve) -> list[Agreement]:
    return [
        Agreement(name, layer, "layer", float(a), float(b), _bound(float(sa), float(sb)))
        for layer, a, b, sa, sb in zip(
            stored.layers, stored.scores, fresh.scores, stored.sems, fresh.sems, strict=True
        )
    ]


def _class_checks(
    name: str, stored: ConvexityCurve, fresh: ConvexityCurve, chosen: set[str]
) -> list[Agreement]:
    out = []
    for layer, old, new in zip(stored.layers, stored.results, fresh.results, strict=True):
        for cls in sorted(chosen):
            a, b = old.per_class.get(cls), new.per_class.get(cls)
            if a is None or b is None:
                raise ResultError(f"class {cls!r} of {name} is not in the stored result")
            out.append(Agreement(name, layer, cls, a.score, b.score, _bound(a.sem, b.sem)))
    return out


def verify_result(key: str, max_classes: int | None = None, seed: int = 0) -> Verification:
    """Recompute the stored convexity result ``key`` on its cached features and compare: the full
    curve, or (``max_classes``) that many seeded classes per label set, exactly."""
    if max_classes is not None and max_classes < 1:
        raise ResultError(f"--classes must be >= 1, got {max_classes}")
    entry = _entry(key)
    fs = load_cached_features(entry.provenance.feature_key)
    stored = decode_curves(entry.data)
    options = ConvexityOptions.from_dict(entry.request)  # the request's key fields
    layers = entry.request.get("layers")
    checks: list[Agreement] = []
    if max_classes is None:
        labels = {name: list(fs.labels(name)) for name in stored}
        fresh = layerwise_convexity(fs.features, labels, options, layers=layers)
        for name in stored:
            checks += _curve_checks(name, stored[name], fresh[name])
        scope = "full curve, same request and seed"
    else:
        exact = options.with_(max_pairs_per_class=None, target_se=None)
        for name in stored:
            relabelled, chosen = _class_subset(list(fs.labels(name)), max_classes, seed)
            sub = {name: relabelled}
            fresh_curve = layerwise_convexity(fs.features, sub, exact, layers=layers)[name]
            checks += _class_checks(name, stored[name], fresh_curve, chosen)
        scope = f"{max_classes} seeded class(es) per label set, recomputed exactly"
    return Verification(entry.key, entry.origin.describe(), scope, tuple(checks))
