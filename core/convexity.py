"""Graph convexity of labelled point sets (Tětková et al.), per layer, exact and fast on CPU and GPU.

For one layer: build the exact k-nearest-neighbour graph (Euclidean, symmetrised, duplicates joined by
zero-weight edges); for every ordered pair (s, t) of distinct points of a class take the shortest weighted
path (ties: fewer edges, then lowest-index predecessors) and score the share of its interior vertices in the
class (no interior vertex: 1; unreachable: 0). Class score = mean over its pairs; layer score = mean over
classes with at least two points (the others are excluded and counted).

Estimator. One shortest-path tree from a source s scores every class-mate target of s at once, so instead
of sampling pairs we sample *sources*, each scoring all its n - 1 class-mates. The class score is the mean
of the m per-source means; every source has the same number of targets, so with m = n
(``max_pairs_per_class=None``, or small classes) it equals the exhaustive mean over all ordered pairs.
Sources are drawn uniformly without replacement (one seeded random ranking of all points; each class takes
its lowest-ranked members, so label sets computed together share sources and shortest-path trees).
Pairs from one source are correlated, so m sources are worth fewer than m (n - 1) independent pairs. With
P = ``max_pairs_per_class`` the class therefore gets, in two stages per layer: first
m0 = min(n, max(2, ceil(P / (n - 1)))) sources (at least P pairs); then, with ``match_pair_precision``
(default), more sources until the estimated standard error is no larger than that of P pairs drawn
uniformly without replacement (the authors' scheme), sigma_pair^2 / P * (1 - P / (n (n - 1))), estimated
from the first stage's pairs.

Standard error. The per-source means are a simple random sample without replacement from the class's n
per-source means, so SE_c = sqrt((1 - m/n) * s_r^2 / m), with s_r^2 their sample variance (0 when m = n,
i.e. exact). Classes are sampled independently, so the layer's SE = sqrt(sum_c SE_c^2) / C. This is the
standard error of the estimate of the exhaustive score; it differs from the authors' error bars
(std of pair scores / sqrt(points in class)), which describe spread rather than estimation error.

Note: the authors' implementations treat a stored 0 as "no edge" and so leave duplicate points
unconnected; here duplicates are ordinary neighbours at distance 0, as the definition requires.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from core.knn import knn_graph
from core.shortest_paths import scores_numba, scores_torch

Engine = Literal["auto", "numba", "torch"]


class ConvexityInputError(ValueError):
    """Input that graph convexity cannot be computed on; the message says what is wrong."""


@dataclass(frozen=True)
class ClassConvexity:
    """Score of one class: estimate, its standard error, and how much of the class was used.

    ``pair_std`` is the standard deviation of the scored pairs' scores; the authors' error bar is
    ``pair_std / sqrt(n_points)``.
    """

    score: float
    sem: float
    n_points: int
    n_pairs: int
    n_sources: int
    pair_std: float


@dataclass(frozen=True)
class ConvexityResult:
    """Graph convexity of one layer for one label set."""

    score: float
    sem: float
    per_class: dict[Hashable, ClassConvexity]
    n_excluded_classes: int
    excluded_classes: tuple[Hashable, ...]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (class labels become strings)."""
        return {
            "score": self.score,
            "sem": self.sem,
            "n_excluded_classes": self.n_excluded_classes,
            "excluded_classes": [str(c) for c in self.excluded_classes],
            "per_class": {str(c): vars(v) for c, v in self.per_class.items()},
            "settings": self.settings,
            "timings": self.timings,
        }


@dataclass(frozen=True)
class ConvexityCurve:
    """Per-layer convexity of one label set: ``results[i]`` belongs to hidden-state index ``layers[i]``."""

    name: str
    layers: tuple[int, ...]
    results: tuple[ConvexityResult, ...]

    @property
    def scores(self) -> np.ndarray:
        """Layer scores, in ``layers`` order."""
        return np.array([r.score for r in self.results])

    @property
    def sems(self) -> np.ndarray:
        """Standard errors of the layer scores."""
        return np.array([r.sem for r in self.results])

    def to_records(self) -> list[dict[str, Any]]:
        """One flat row per (layer, class) plus a ``class=None`` row per layer, for CSV/JSON export."""
        rows: list[dict[str, Any]] = []
        for layer, res in zip(self.layers, self.results, strict=True):
            rows.append(
                {
                    "labels": self.name,
                    "layer": layer,
                    "class": None,
                    "score": res.score,
                    "sem": res.sem,
                    "n_points": sum(c.n_points for c in res.per_class.values()),
                    "n_pairs": sum(c.n_pairs for c in res.per_class.values()),
                }
            )
            rows.extend(
                {
                    "labels": self.name,
                    "layer": layer,
                    "class": str(c),
                    "score": v.score,
                    "sem": v.sem,
                    "n_points": v.n_points,
                    "n_pairs": v.n_pairs,
                }
                for c, v in res.per_class.items()
            )
        return rows


@dataclass(frozen=True)
class _LabelSet:
    """Integer-coded labels of one label set and which classes have pairs."""

    name: str
    codes: np.ndarray  # (N,) int32
    classes: list[Hashable]
    counts: np.ndarray  # (C,) points per class

    @classmethod
    def encode(cls, name: str, labels: Sequence[Hashable] | np.ndarray | torch.Tensor) -> _LabelSet:
        """Codes in order of first appearance; any hashable labels are accepted."""
        if isinstance(labels, torch.Tensor):
            labels = labels.cpu().numpy()
        index: dict[Hashable, int] = {}
        codes = np.fromiter(
            (index.setdefault(_plain(x), len(index)) for x in labels), dtype=np.int32
        )
        return cls(name, codes, list(index), np.bincount(codes, minlength=len(index)))

    @property
    def kept(self) -> np.ndarray:
        """Codes of the classes with at least two points."""
        return np.flatnonzero(self.counts >= 2)

    def members(self, c: int, rank: np.ndarray) -> np.ndarray:
        """Points of class ``c``, lowest random rank first (the order sources are drawn in)."""
        members = np.flatnonzero(self.codes == c)
        return members[np.argsort(rank[members], kind="stable")]


def _plain(x: Hashable) -> Hashable:
    """numpy scalars become Python scalars so label keys print and serialise cleanly."""
    return x.item() if isinstance(x, np.generic) else x


@dataclass(frozen=True)
class _Plan:
    """Which points are shortest-path sources, shared by all label sets and all layers."""

    sources: np.ndarray  # (S,) int64, sorted
    active: np.ndarray  # (S, Q) bool: source sampled for label set q


def _as_plan(chosen: np.ndarray) -> _Plan:
    """Sources and their label sets from a (N, Q) choice matrix."""
    sources = np.flatnonzero(chosen.any(axis=1))
    return _Plan(sources.astype(np.int64), chosen[sources])


def _first_stage(sets: list[_LabelSet], rank: np.ndarray, max_pairs: int | None) -> np.ndarray:
    """(N, Q) choice of the first-stage sources: enough for ``max_pairs`` pairs per class, or all."""
    chosen = np.zeros((rank.shape[0], len(sets)), dtype=bool)
    for q, ls in enumerate(sets):
        for c in ls.kept:
            members = ls.members(c, rank)
            size = members.shape[0]
            m = size if max_pairs is None else min(size, max(2, math.ceil(max_pairs / (size - 1))))
            chosen[members[:m], q] = True
    return chosen


def _second_stage(
    sets: list[_LabelSet], rank: np.ndarray, plan: _Plan, sums: np.ndarray, max_pairs: int
) -> np.ndarray:
    """(N, Q) choice of extra sources so each class reaches the precision of ``max_pairs`` iid pairs."""
    extra = np.zeros((rank.shape[0], len(sets)), dtype=bool)
    for q, ls in enumerate(sets):
        src_codes = ls.codes[plan.sources]
        for c in ls.kept:
            n_c = int(ls.counts[c])
            population = n_c * (n_c - 1)
            picked = sums[plan.active[:, q] & (src_codes == c), q]
            m0 = picked.shape[0]
            if m0 >= n_c:
                continue
            r = picked[:, 0] / (n_c - 1)
            var_sources = float(np.var(r, ddof=1))
            if var_sources == 0.0:
                continue
            pair_mean = picked[:, 0].sum() / (m0 * (n_c - 1))
            var_pairs = max(0.0, picked[:, 1].sum() / (m0 * (n_c - 1)) - pair_mean**2)
            target = var_pairs / max_pairs * max(0.0, 1.0 - max_pairs / population)
            # (1 - m/n) var_sources / m <= target  <=>  m >= 1 / (target / var_sources + 1 / n)
            m = min(n_c, math.ceil(1.0 / (target / var_sources + 1.0 / n_c) - 1e-9))
            if m > m0:
                extra[ls.members(c, rank)[m0:m], q] = True
    return extra


def _summarise(
    ls: _LabelSet, q: int, plan: _Plan, sums: np.ndarray, settings: dict, timings: dict
) -> ConvexityResult:
    """Class and layer estimates with standard errors from the per-source score sums (S, Q, 2)."""
    src_codes = ls.codes[plan.sources]
    per_class: dict[Hashable, ClassConvexity] = {}
    for c in ls.kept:
        n_c = int(ls.counts[c])
        picked = sums[plan.active[:, q] & (src_codes == c), q]
        r = picked[:, 0] / (n_c - 1)
        m = r.shape[0]
        var = float(np.var(r, ddof=1)) if m > 1 else 0.0
        sem = math.sqrt(max(0.0, (1.0 - m / n_c) * var / m))
        n_pairs = m * (n_c - 1)
        mean = float(r.mean())
        pair_var = max(0.0, float(picked[:, 1].sum()) / n_pairs - mean * mean)
        per_class[ls.classes[c]] = ClassConvexity(
            mean, sem, n_c, n_pairs, m, math.sqrt(pair_var * n_pairs / max(1, n_pairs - 1))
        )
    excluded = tuple(ls.classes[c] for c in np.flatnonzero(ls.counts < 2))
    scores = np.array([v.score for v in per_class.values()])
    sems = np.array([v.sem for v in per_class.values()])
    return ConvexityResult(
        score=float(scores.mean()),
        sem=float(math.sqrt(float((sems**2).sum())) / len(scores)),
        per_class=per_class,
        n_excluded_classes=len(excluded),
        excluded_classes=excluded,
        settings=settings,
        timings=timings,
    )


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_engine(engine: Engine, device: torch.device) -> str:
    """``auto``: the batched torch engine on GPUs, the parallel Dijkstra engine on CPUs."""
    if engine == "auto":
        return "torch" if device.type == "cuda" else "numba"
    if engine not in ("numba", "torch"):
        raise ConvexityInputError(f"engine must be 'auto', 'numba' or 'torch', got {engine!r}")
    return engine


def _as_tensor(features: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Features as a torch tensor without copying when possible."""
    if isinstance(features, torch.Tensor):
        return features
    array = np.asarray(features)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ConvexityInputError(f"features must be real numbers, got dtype {array.dtype}")
    return torch.from_numpy(array)


def _check_inputs(x: torch.Tensor, ndim: int, label_sets: list[_LabelSet], k: int) -> None:
    """Clear errors for empty input, shape mismatches, bad k and too few classes."""
    what = "(N, D)" if ndim == 2 else "(N, layers, D)"
    if x.ndim != ndim:
        raise ConvexityInputError(f"features must have shape {what}, got {tuple(x.shape)}")
    n = x.shape[0]
    if n == 0 or x.shape[-1] == 0 or (ndim == 3 and x.shape[1] == 0):
        raise ConvexityInputError(f"features are empty: shape {tuple(x.shape)}")
    for ls in label_sets:
        if ls.codes.shape[0] != n:
            raise ConvexityInputError(
                f"labels '{ls.name}' have {ls.codes.shape[0]} entries but features have {n} points"
            )
        if ls.kept.shape[0] < 2:
            raise ConvexityInputError(
                f"labels '{ls.name}': need at least 2 classes with 2 or more points, "
                f"found {ls.kept.shape[0]} (of {len(ls.classes)} classes)"
            )
    if not isinstance(k, int | np.integer) or not 1 <= k < n:
        raise ConvexityInputError(f"k must be an integer with 1 <= k < N = {n}, got {k!r}")


def _check_finite(x: torch.Tensor, layer: int | None) -> None:
    """Reject NaN or infinite features, saying where they are."""
    bad = ~torch.isfinite(x).all(dim=-1)
    if bool(bad.any()):
        where = "" if layer is None else f" in layer {layer}"
        rows = torch.nonzero(bad).flatten()[:5].tolist()
        raise ConvexityInputError(
            f"features contain NaN or infinite values{where}: {int(bad.sum())} points (e.g. rows {rows})"
        )


class _Engine:
    """Everything shared across layers: device, label sets, sources, and the path-score kernel."""

    def __init__(
        self,
        sets: list[_LabelSet],
        *,
        k: int,
        max_pairs_per_class: int | None,
        seed: int,
        device: str | torch.device | None,
        engine: Engine,
        match_pair_precision: bool,
    ) -> None:
        if max_pairs_per_class is not None and max_pairs_per_class < 1:
            raise ConvexityInputError("max_pairs_per_class must be positive or None (exhaustive)")
        self.sets = sets
        self.k = int(k)
        self.max_pairs = max_pairs_per_class
        self.device = resolve_device(device)
        self.engine = _resolve_engine(engine, self.device)
        self.rank = np.random.default_rng(seed).permutation(sets[0].codes.shape[0])
        self.plan = _as_plan(_first_stage(sets, self.rank, max_pairs_per_class))
        self.codes = np.stack([ls.codes for ls in sets])
        exhaustive = bool(
            self.plan.active.sum(axis=0).tolist() == [int(ls.counts[ls.kept].sum()) for ls in sets]
        )
        self.second_stage = match_pair_precision and not exhaustive
        if exhaustive:
            estimator = "exhaustive"
        elif self.second_stage:
            estimator = "sampled sources, precision of uniform pairs"
        else:
            estimator = "sampled sources"
        self.settings = {
            "k": self.k,
            "max_pairs_per_class": max_pairs_per_class,
            "match_pair_precision": match_pair_precision,
            "seed": seed,
            "device": str(self.device),
            "engine": self.engine,
            "estimator": estimator,
            "n_points": int(self.codes.shape[1]),
        }
        if self.engine == "torch":
            self._t_codes = torch.from_numpy(self.codes.astype(np.int64)).to(self.device)

    def _path_sums(self, graph, plan: _Plan) -> np.ndarray:
        """Per-source score sums (S, Q, 2) for ``plan`` on this layer's graph."""
        if self.engine == "numba":
            return scores_numba(*graph, plan.sources, self.codes, plan.active)
        src, dst, w, n = graph
        return (
            scores_torch(
                src,
                dst,
                w,
                n,
                torch.from_numpy(plan.sources).to(self.device),
                self._t_codes,
                torch.from_numpy(plan.active).to(self.device, torch.float64),
            )
            .cpu()
            .numpy()
        )

    def layer(self, x: torch.Tensor, layer: int | None = None) -> list[ConvexityResult]:
        """Results of every label set for one layer's features (N, D), sharing one graph and one tree."""
        x = x.to(self.device, non_blocking=True)
        _check_finite(x, layer)
        t0 = time.perf_counter()
        graph = knn_graph(x, self.k)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t1 = time.perf_counter()
        edges = (
            graph.csr() if self.engine == "numba" else (*graph.undirected_edges(), graph.n_points)
        )
        plan = self.plan
        sums = self._path_sums(edges, plan)
        if self.second_stage:
            extra = _as_plan(_second_stage(self.sets, self.rank, plan, sums, self.max_pairs))
            if extra.sources.shape[0]:
                sums = np.concatenate([sums, self._path_sums(edges, extra)])
                plan = _Plan(
                    np.concatenate([plan.sources, extra.sources]),
                    np.concatenate([plan.active, extra.active]),
                )
        t2 = time.perf_counter()
        timings = {"knn_s": t1 - t0, "paths_s": t2 - t1, "fallback_rows": graph.n_fallback_rows}
        settings = dict(
            self.settings, layer=layer, n_shortest_path_trees=int(plan.sources.shape[0])
        )
        return [_summarise(ls, q, plan, sums, settings, timings) for q, ls in enumerate(self.sets)]


def graph_convexity(
    features: np.ndarray | torch.Tensor,
    labels: Sequence[Hashable] | np.ndarray | torch.Tensor,
    *,
    k: int = 10,
    max_pairs_per_class: int | None = 5000,
    seed: int = 0,
    device: str | torch.device | None = None,
    engine: Engine = "auto",
    match_pair_precision: bool = True,
) -> ConvexityResult:
    """Graph convexity of one layer: ``features`` (N, D), ``labels`` (N,) of any hashable type.

    ``max_pairs_per_class=None`` scores every ordered pair (exact); otherwise the estimate is as precise as
    that many uniformly sampled pairs per class (see the module docstring; ``match_pair_precision=False``
    stops after the first stage, faster and less precise). ``device=None`` uses CUDA when present.
    ``engine`` picks the shortest-path implementation (``auto``: torch on CUDA, numba on CPU); both give
    the same result. The same seed gives the same result on the same device.
    """
    x = _as_tensor(features)
    sets = [_LabelSet.encode("labels", labels)]
    _check_inputs(x, 2, sets, k)
    eng = _Engine(
        sets,
        k=k,
        max_pairs_per_class=max_pairs_per_class,
        seed=seed,
        device=device,
        engine=engine,
        match_pair_precision=match_pair_precision,
    )
    return eng.layer(x)[0]


def layerwise_convexity(
    features: np.ndarray | torch.Tensor,
    labels: Sequence[Hashable] | np.ndarray | torch.Tensor | Mapping[str, Sequence[Hashable]],
    *,
    k: int = 10,
    max_pairs_per_class: int | None = 5000,
    seed: int = 0,
    device: str | torch.device | None = None,
    engine: Engine = "auto",
    match_pair_precision: bool = True,
    layers: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ConvexityCurve | dict[str, ConvexityCurve]:
    """Convexity curve over layers of ``features`` (N, L+1, D) (may be a numpy memmap).

    ``labels`` is one label array (returns a ``ConvexityCurve``) or a mapping name -> labels, e.g.
    ``{"word": ..., "speaker": ...}`` (returns name -> curve): the label sets share each layer's kNN
    graph, the sampled sources and their shortest-path trees. ``layers`` selects hidden-state indices
    (default all); ``progress(done, total)`` is called after each layer.
    """
    single = not isinstance(labels, Mapping)
    named = {"labels": labels} if single else dict(labels)
    if not named:
        raise ConvexityInputError("no label sets given")
    sets = [_LabelSet.encode(name, lab) for name, lab in named.items()]
    x = _as_tensor(features)
    _check_inputs(x, 3, sets, k)
    chosen = list(range(x.shape[1])) if layers is None else [int(i) for i in layers]
    if any(not 0 <= i < x.shape[1] for i in chosen):
        raise ConvexityInputError(f"layers must lie in 0..{x.shape[1] - 1}, got {chosen}")
    eng = _Engine(
        sets,
        k=k,
        max_pairs_per_class=max_pairs_per_class,
        seed=seed,
        device=device,
        engine=engine,
        match_pair_precision=match_pair_precision,
    )
    per_layer = []
    for done, i in enumerate(chosen, start=1):
        per_layer.append(eng.layer(x[:, i, :], layer=i))
        if progress is not None:
            progress(done, len(chosen))
    curves = {
        ls.name: ConvexityCurve(ls.name, tuple(chosen), tuple(res[q] for res in per_layer))
        for q, ls in enumerate(sets)
    }
    return curves["labels"] if single else curves
