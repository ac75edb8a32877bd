"""Curves from stored results side by side: depth alignment, error bars, prune points, class differences.

A stored convexity entry gives one :class:`CurveSeries` per label set; a fine-tune entry one per (label
set, pretrained/fine-tuned). Relative depth maps hidden state i of an L-layer model to i / L (0 = input,
1 = last layer), so a 4-layer and a 6-layer model share an axis. Two error bars are offered: the standard
error of the estimate (0 for exact curves) and the authors' spread bar, per class pair_std / sqrt(points),
averaged over the classes of the layer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LabError
from core.geometry.convexity import ConvexityCurve
from core.geometry.curve_statistics import CurveStatistics, LabelSetStatistics
from core.geometry.prune_point import suggest_prune_point
from core.results.kinds import convexity as convexity_kind
from core.results.kinds import run_curves as run_curves_kind
from core.results.kinds import statistics as statistics_kind
from core.results.provenance import Provenance


@dataclass(frozen=True)
class CurveSeries:
    """One per-layer curve of a stored result, with what is needed to overlay and compare it."""

    entry_key: str
    label_set: str
    layers: tuple[int, ...]
    scores: np.ndarray
    sems: np.ndarray
    spread: np.ndarray | None
    per_class: dict[str, np.ndarray] = field(default_factory=dict)
    exact: bool = False
    provenance: Provenance | None = None
    n_layers: int = 0

    @property
    def id(self) -> str:
        """Stable short id for links: ``<key prefix>:<label set>``."""
        return f"{self.entry_key[:12]}:{self.label_set}"

    def label(self) -> str:
        """Legend text: model (and fine-tuning run), data, label set, graph and estimate, key prefix."""
        return f"{self.describe()} · {self.entry_key[:6]}"

    def describe(self) -> str:
        """What tells this curve from others without its key: model or run, data, labels, settings."""
        p = self.provenance
        if p is None:
            return f"? · {self.label_set}"
        model = p.model_key or p.model_id
        run = p.extra.get("run")
        source = f"run {run} ({model})" if run else model
        split = (p.selection or {}).get("split")
        data = f"{p.dataset}{f' {split}' if split and split != 'all' else ''} · {p.n_clips} clips"
        parts = [source, data, self.label_set]
        if p.k is not None:
            parts.append(f"k={p.k}")
        if not run:
            parts.append("exact" if self.exact else "sampled")
        if p.origin is not None and not p.origin.is_computed:
            parts.append(p.origin.tag())  # imported (or of unrecorded origin): not computed here
        return " · ".join(parts)

    def x(self, relative: bool) -> np.ndarray:
        """Layer axis values: hidden-state index, or relative depth index / L."""
        layers = np.asarray(self.layers, dtype=float)
        return layers / max(self.n_layers, 1) if relative else layers

    def bars(self, which: str) -> np.ndarray | None:
        """Error bar values: ``se`` (standard error), ``spread`` (authors') or ``none``."""
        if which == "se":
            return self.sems
        if which == "spread":
            return self.spread
        return None


def picker_labels(series: list[CurveSeries]) -> dict[str, str]:
    """Curve id -> a picker label that tells the curves apart by what they are (model, run, data,
    labels, settings), adding when each was stored, and the key only where even that ties."""
    base = {s.id: s.describe() for s in series}
    clashes = Counter(base.values())
    out = {}
    for s in series:
        text = base[s.id]
        if clashes[text] > 1 and s.provenance is not None and s.provenance.created:
            text += f" · stored {s.provenance.created[:16].replace('T', ' ')}"
        out[s.id] = text
    again = Counter(out.values())
    return {i: t if again[t] == 1 else f"{t} · {i.split(':')[0][:6]}" for i, t in out.items()}


def default_curves(series: list[CurveSeries]) -> list[str]:
    """The curves Compare opens on: two of one label set from different results, sharing the most
    classes (so their per-class difference has rows); else the first curve alone."""
    best: tuple[int, int, int] | None = None
    for i, a in enumerate(series):
        for j in range(i + 1, len(series)):
            b = series[j]
            if a.entry_key == b.entry_key or a.label_set != b.label_set:
                continue
            shared = len(set(a.per_class) & set(b.per_class))
            if best is None or shared > best[0]:
                best = (shared, i, j)
    if best is not None:
        return [series[best[1]].id, series[best[2]].id]
    return [series[0].id] if series else []


def series_label(entry: Any) -> str:
    """A checkpoint series' picker label: its checkpoints in order with where each came from (the
    fine-tuning run or model, not a truncated cache path), the clips, and when it was stored."""
    checkpoints = (entry.data or {}).get("checkpoints") or []
    named = []
    for c in checkpoints:
        model = Path(str(c.get("model", "")))
        parts = model.parts
        if "runs" in parts[:-1]:
            origin = f"run {parts[parts.index('runs') + 1]}"
        elif model.is_absolute():
            origin = "/".join(parts[-2:])
        else:
            origin = str(c.get("model", "?"))  # a preset key or a hub id
        named.append(f"{c.get('name', '?')} ({origin})")
    p = entry.provenance
    when = p.created[:16].replace("T", " ") if p.created else "?"
    return f"{' → '.join(named) or '?'} · {p.dataset} · {p.n_clips} clips · stored {when}"


def spread_bars(curve: ConvexityCurve) -> np.ndarray:
    """The authors' error bar per layer: mean over classes of pair_std / sqrt(points in class)."""
    return np.array(
        [
            np.mean([c.pair_std / np.sqrt(c.n_points) for c in r.per_class.values()])
            if r.per_class
            else np.nan
            for r in curve.results
        ]
    )


def class_scores(curve: ConvexityCurve) -> dict[str, np.ndarray]:
    """Class -> score per layer (NaN where a layer lacks the class)."""
    classes = sorted({str(c) for r in curve.results for c in r.per_class})
    table = [{str(c): v.score for c, v in r.per_class.items()} for r in curve.results]
    return {c: np.array([row.get(c, np.nan) for row in table], dtype=float) for c in classes}


def is_exact(curve: ConvexityCurve) -> bool:
    """Whether every layer of ``curve`` scored all pairs (the engine's ``exact`` flag or estimator)."""
    flags = [
        r.settings.get("exact", r.settings.get("estimator") == "exhaustive") for r in curve.results
    ]
    return bool(flags) and all(flags)


def _convexity_series(key: str, data: dict[str, Any], prov: Provenance) -> list[CurveSeries]:
    """One curve per label set of a convexity entry."""
    return [
        CurveSeries(
            key,
            name,
            c.layers,
            c.scores,
            c.sems,
            spread_bars(c),
            class_scores(c),
            is_exact(c),
            prov,
            prov.n_layers or max(c.layers),
        )
        for name, c in convexity_kind.decode_curves(data).items()
    ]


def _run_series(key: str, data: dict[str, Any], prov: Provenance) -> list[CurveSeries]:
    """One curve per (label set, stage) of a fine-tuning run's curves."""
    out = []
    for stage, curves in run_curves_kind.RunCurves.from_dict(data).stages().items():
        for name, c in curves.items():
            scores = np.asarray(c.scores, dtype=float)
            layers = c.layers or tuple(range(len(scores)))
            sems = np.asarray(c.sems, dtype=float) if c.sems else np.zeros_like(scores)
            out.append(
                CurveSeries(
                    key,
                    f"{name} ({stage})",
                    layers,
                    scores,
                    sems,
                    None,
                    {},
                    False,
                    prov,
                    prov.n_layers or max(layers),
                )
            )
    return out


# The stored kinds whose entries hold curves, and how each reads as curves.
SERIES_READERS: dict[str, Callable[[str, dict[str, Any], Provenance], list[CurveSeries]]] = {
    convexity_kind.KIND: _convexity_series,
    run_curves_kind.KIND: _run_series,
}
CURVE_KINDS = tuple(SERIES_READERS)


def series_of(key: str, kind: str, data: dict[str, Any], prov: Provenance) -> list[CurveSeries]:
    """The curves of one stored entry (its key, kind, JSON data and provenance); none for a kind
    without curves."""
    reader = SERIES_READERS.get(kind)
    return [] if reader is None else reader(key, data, prov)


def prune_table(series: list[CurveSeries], fraction: float) -> list[dict[str, Any]]:
    """One row per curve: peak (score, layer, depth) and suggested prune point (layer, depth)."""
    rows = []
    for s in series:
        by_layer = dict(zip(s.layers, s.scores, strict=True))
        full = np.array([by_layer.get(i, np.nan) for i in range(s.n_layers + 1)])
        peak_i = int(np.nanargmax(s.scores))
        p = suggest_prune_point(full, fraction) if s.n_layers >= 1 else 0
        rows.append(
            {
                "curve": s.label(),
                "layers": s.n_layers,
                "peak": round(float(s.scores[peak_i]), 4),
                "peak layer": s.layers[peak_i],
                "peak depth": round(s.layers[peak_i] / max(s.n_layers, 1), 3),
                "prune point": p,
                "prune depth": round(p / max(s.n_layers, 1), 3),
                "error": "exact" if s.exact else "sampled (SE)",
            }
        )
    return rows


@dataclass(frozen=True)
class ClassDifference:
    """A - B per class on A's layers: ``z`` is (classes x layers of A) at positions ``x``;
    ``resampled``: B was interpolated at A's relative depths (x is then relative depth)."""

    classes: list[str]
    x: np.ndarray
    z: np.ndarray
    resampled: bool


def class_difference(a: CurveSeries, b: CurveSeries) -> ClassDifference:
    """A - B per class on A's layers, for the classes present in both.
    When the depths differ, B's class curves are linearly interpolated at A's
       relative depths (``resampled`` True) and x is relative depth; otherwise x is the hidden-state index.
    """
    classes = sorted(set(a.per_class) & set(b.per_class))
    resampled = a.n_layers != b.n_layers or a.layers != b.layers
    xa, xb = a.x(resampled), b.x(resampled)
    z = np.full((len(classes), len(a.layers)), np.nan)
    for i, c in enumerate(classes):
        other = np.interp(xa, xb, b.per_class[c]) if resampled else b.per_class[c]
        z[i] = a.per_class[c] - other
    return ClassDifference(classes, xa, z, resampled)


# --------------------------------------------------------------------------------------------------
# Curve statistics beside stored curves: chance levels, intervals, paired differences


@dataclass(frozen=True)
class StatisticsMatch:
    """The stored curve statistics of one curve's feature set and label set."""

    entry_key: str
    stats: LabelSetStatistics
    provenance: Provenance


def statistics_by_curve(entries: list[Any]) -> dict[tuple[str, str], StatisticsMatch]:
    """(feature key, label set) -> the newest stored curve statistics (entries: ``list_results``)."""
    out: dict[tuple[str, str], StatisticsMatch] = {}
    for e in entries:
        if e.kind != statistics_kind.KIND:
            continue
        try:
            parsed = CurveStatistics.from_dict(e.data)
        except LabError:
            continue
        for name, s in parsed.sets.items():
            out.setdefault(
                (e.provenance.feature_key, name), StatisticsMatch(e.key, s, e.provenance)
            )
    return out


def comparability_note(series: list[CurveSeries]) -> str | None:
    """Why raw scores of these curves should not be read against each other, or None."""
    clips = {s.provenance.n_clips for s in series if s.provenance is not None}
    classes = {len(s.per_class) for s in series if s.per_class}
    parts = []
    if len(classes) > 1:
        parts.append(f"classes ({', '.join(str(c) for c in sorted(classes))})")
    if len(clips) > 1:
        parts.append(f"clips ({', '.join(str(c) for c in sorted(clips))})")
    if not parts:
        return None
    return (
        "These curves come from data with different numbers of " + " and ".join(parts) + ": graph "
        "convexity and its chance level move with both, so raw scores do not compare; the "
        "chance-normalised score (score - chance) / (1 - chance) puts them on one scale."
    )


def same_clips(a: Provenance, b: Provenance) -> bool:
    """Whether two results were computed on the same clips (dataset, selection, fingerprint, count)."""
    return (a.dataset_fingerprint, a.selection, a.n_clips, a.dataset) == (
        b.dataset_fingerprint,
        b.selection,
        b.n_clips,
        b.dataset,
    )
