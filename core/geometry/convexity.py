"""Graph convexity of labelled point sets (Tětková et al.), per layer, exact and fast on CPU and GPU.

For one layer: build the exact k-nearest-neighbour graph (Euclidean, symmetrised, duplicates joined by
zero-weight edges); for every ordered pair (s, t) of distinct points of a class take the shortest weighted
path (ties: fewer edges, then lowest-index predecessors) and score the share of its interior vertices in the
class (no interior vertex: 1; unreachable: 0). Class score = mean over its pairs; layer score = mean over
classes with at least two points (the others are excluded and counted).

Estimator. One shortest-path tree from a source s scores every class-mate of s at once, so instead of
sampling pairs we sample *sources* (simple random sampling within each class), each scoring all its
n - 1 class-mates. The class estimate combines the sources' rows with the pairs among the sources into
an unbiased U-statistic whose variance falls as 1/m^2 in the number of sources (per-source means would
give 1/m; see ``core.geometry.sampling``); with every point a source (``max_pairs_per_class=None``, or
small classes) it equals the exhaustive mean over all ordered pairs. A pilot (P / (n - 1) sources per
class for P = ``max_pairs_per_class``, at least ``PILOT_SOURCES`` when a second stage follows, since a
few sources misjudge a class's variance; ``PILOT_SOURCES`` with a target SE) estimates each class's
variance; sources are then added, spread over classes where they cut the variance most, until the layer
score's standard error meets a target: ``target_se`` (precision as the knob) or, with
``match_pair_precision`` (default), the SE that P uniform pairs per class would have (the authors'
scheme; each class still gets at least P pairs). When the sampled route is predicted (by its tree
count) to need more than ``exact_threshold`` of all trees, every tree is computed and the result is
exact (``result.exact``). Label sets computed together share sources and their shortest-path trees
(one seeded random ranking orders every draw).

Shared-cut label sets (``shared_sources``, e.g. permuted labels for a chance level) are sampled by one
rank cut-off R instead of per-class allocation: a class's sources are its members ranked below R (at
least two), so all such sets use the same points, and R (fixed from the class sizes before any tree:
the largest cut whose expected count in every class of the other sets stays within that class's
pilot) puts nearly all of them among the other sets' pilot sources: their trees are shared, not
added. The rank is a uniform random order independent of the labels, so a class's members below R
are a simple random sample of it given their number, and the estimator and its SE hold unchanged.
These sets take no top-ups: their precision is what the shared sources give, and their SE says it.

Standard error: the design standard error of the class estimate (0 when exhaustive); classes are
sampled independently, so the layer's SE = sqrt(sum_c SE_c^2) / C. It is the standard error of the
estimate of the exhaustive score; the authors' error bars (std of pair scores / sqrt(points in class))
describe spread rather than estimation error and are available as ``pair_std / sqrt(n_points)``.

Note: the authors' implementations treat a stored 0 as "no edge" and so leave duplicate points
unconnected; here duplicates are ordinary neighbours at distance 0, as the definition requires.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.errors import ConvexityInputError
from core.geometry.knn import KnnGraph, default_block_size, knn_graph
from core.geometry.options import DEFAULT_OPTIONS, ConvexityOptions, Engine
from core.geometry.sampling import (
    ClassEstimate,
    ScoreTable,
    allocate,
    authors_target_variance,
    class_estimate,
    class_members,
    draw,
    first_stage_size,
    layer_variance,
)
from core.geometry.shortest_paths import scores_numba, scores_torch
from core.geometry.validation import (
    LabelsLike,
    as_features,
    check_finite,
    encode_labels,
    resolve_device,
)

PILOT_SOURCES = 12  # pilot sources per class when a target standard error is given
MAX_TOP_UPS = 5  # top-ups of a sample that missed its target before going exhaustive
AIM = 0.85  # top-ups size the sample for this share of the target variance, so one usually suffices
ROW_BYTES = 1 << 30  # sampled sources keep their class rows; beyond this, every tree is run instead


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
    exact: bool = False  # every ordered pair was scored: the score is the exhaustive mean, sem 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (class labels become strings)."""
        return {
            "score": self.score,
            "sem": self.sem,
            "exact": self.exact,
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

    @property
    def exact(self) -> tuple[bool, ...]:
        """Per layer: whether the score is exact (every pair scored) rather than an estimate."""
        return tuple(r.exact for r in self.results)

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
    def encode(cls, name: str, labels: LabelsLike, n: int) -> _LabelSet:
        """Checked codes in order of first appearance; any hashable labels are accepted."""
        codes, classes = encode_labels(labels, n, name)
        return cls(name, codes, classes, np.bincount(codes, minlength=len(classes)))

    @property
    def kept(self) -> np.ndarray:
        """Codes of the classes with at least two points."""
        return np.flatnonzero(self.counts >= 2)


def _summarise(
    ls: _LabelSet, estimates: list[ClassEstimate], settings: dict, timings: dict
) -> ConvexityResult:
    """Class and layer estimates with standard errors from the class estimates (in ``kept`` order)."""
    per_class = {
        ls.classes[c]: ClassConvexity(
            est.score,
            math.sqrt(est.variance),
            int(ls.counts[c]),
            est.n_pairs,
            est.n_sources,
            math.sqrt(est.pair_var),
        )
        for c, est in zip(ls.kept, estimates, strict=True)
    }
    excluded = tuple(ls.classes[c] for c in np.flatnonzero(ls.counts < 2))
    scores = np.array([v.score for v in per_class.values()])
    exact = all(v.n_sources == v.n_points for v in per_class.values())
    return ConvexityResult(
        score=float(scores.mean()),
        sem=math.sqrt(layer_variance(estimates)),
        per_class=per_class,
        n_excluded_classes=len(excluded),
        excluded_classes=excluded,
        settings=dict(settings, estimator="exhaustive" if exact else settings["estimator"]),
        timings=timings,
        exact=exact,
    )


def _resolve_engine(engine: Engine, device: torch.device) -> str:
    """``auto``: the batched torch engine on GPUs, the parallel Dijkstra engine on CPUs."""
    if engine == "auto":
        return "torch" if device.type == "cuda" else "numba"
    if engine not in ("numba", "torch"):
        raise ConvexityInputError(f"engine must be 'auto', 'numba' or 'torch', got {engine!r}")
    return engine


def _check_inputs(
    x: torch.Tensor, label_sets: list[_LabelSet], k: int, shared: Collection[str] = ()
) -> None:
    """Clear errors for empty input, shape mismatches, bad k and too few classes (x: (N, layers, D));
    a shared-cut set (internal, e.g. a pooled labelling) may have a single class."""
    if x.ndim != 3:
        raise ConvexityInputError(f"features must have shape (N, layers, D), got {tuple(x.shape)}")
    n = x.shape[0]
    if n == 0 or x.shape[-1] == 0 or x.shape[1] == 0:
        raise ConvexityInputError(f"features are empty: shape {tuple(x.shape)}")
    for ls in label_sets:
        if ls.codes.shape[0] != n:
            raise ConvexityInputError(
                f"labels '{ls.name}' have {ls.codes.shape[0]} entries but features have {n} points"
            )
        if ls.kept.shape[0] < (1 if ls.name in shared else 2):
            raise ConvexityInputError(
                f"labels '{ls.name}': need at least 2 classes with 2 or more points, "
                f"found {ls.kept.shape[0]} (of {len(ls.classes)} classes)"
            )
    if not isinstance(k, int | np.integer) or not 1 <= k < n:
        raise ConvexityInputError(f"k must be an integer with 1 <= k < N = {n}, got {k!r}")


def _knn_with_backoff(x: torch.Tensor, k: int) -> KnnGraph:
    """The kNN graph, halving the row block on GPU out-of-memory instead of failing."""
    block = default_block_size(x.shape[0], x.device)
    while True:
        try:
            return knn_graph(x, k, block_size=block)
        except torch.OutOfMemoryError as err:
            torch.cuda.empty_cache()
            if block <= 64:
                raise ConvexityInputError(
                    f"GPU out of memory building the kNN graph of {x.shape[0]} points even in blocks "
                    "of 64 rows; free GPU memory or use device='cpu'"
                ) from err
            block //= 2


class _Engine:
    """Everything shared across layers: device, label sets, sources, and the path-score kernel."""

    def __init__(
        self,
        sets: list[_LabelSet],
        options: ConvexityOptions,
        shared: Sequence[bool] | None = None,
    ) -> None:
        k, seed, target_se = options.k, options.seed, options.target_se
        max_pairs_per_class = options.max_pairs_per_class
        match_pair_precision = options.match_pair_precision
        self.sets = sets
        self.k = int(k)
        self.target_se = None if target_se is None else float(target_se)
        # with a target SE the pilot is small and fixed; otherwise it covers max_pairs pairs per class
        self.max_pairs = 1 if self.target_se is not None else max_pairs_per_class
        self.pilot_min = (
            PILOT_SOURCES if (self.target_se is not None or match_pair_precision) else 2
        )
        self.authors_pairs = max_pairs_per_class
        self.exact_threshold = float(options.exact_threshold)
        self.device = resolve_device(options.device)
        self.engine = _resolve_engine(options.engine, self.device)
        rng = np.random.default_rng(seed)
        self.rank = rng.permutation(sets[0].codes.shape[0])
        self.codes = np.stack([ls.codes for ls in sets])
        self.members = class_members(self.codes, [ls.kept for ls in sets])
        self.sizes = [np.array([len(g) for g in classes]) for classes in self.members]
        self.shared = np.zeros(len(sets), bool) if shared is None else np.asarray(shared, bool)
        self.all_sources = np.stack(
            [np.isin(ls.codes, ls.kept) for ls in sets], axis=1
        )  # (N, Q): the exhaustive design
        self.n_exhaustive = int(self.all_sources.any(axis=1).sum())
        sampled = self.max_pairs is not None and not all(
            first_stage_size(int(n), self.max_pairs, self.pilot_min) == n
            for ls in sets
            for n in ls.counts[ls.kept]
        )
        self.second_stage = sampled and (match_pair_precision or self.target_se is not None)
        if not sampled:
            estimator = "exhaustive"
        elif self.target_se is not None:
            estimator = "sampled sources, target standard error"
        elif self.second_stage:
            estimator = "sampled sources, precision of uniform pairs"
        else:
            estimator = "sampled sources"
        self.settings = {
            "k": self.k,
            "max_pairs_per_class": max_pairs_per_class,
            "match_pair_precision": match_pair_precision,
            "target_se": self.target_se,
            "exact_threshold": self.exact_threshold,
            "seed": seed,
            "device": str(self.device),
            "engine": self.engine,
            "estimator": estimator,
            "standard_error": "design variance of the source-sample U-statistic; 0 when exact",
            "n_points": int(self.codes.shape[1]),
        }
        if self.engine == "torch":
            self._t_codes = torch.from_numpy(self.codes.astype(np.int64)).to(self.device)

    def _run_trees(self, edges: tuple, need: np.ndarray, table: ScoreTable) -> int:
        """Run the trees of the (point, label set) choices in ``need`` (N, Q) into ``table``; returns trees."""
        sources = np.flatnonzero(need.any(axis=1))
        if not len(sources):
            return 0
        active = need[sources]
        if self.engine == "numba":
            indptr, indices, weights = edges
            sums, rows = scores_numba(
                indptr, indices, weights, sources, self.codes, active, table.pos, table.width
            )
        else:
            src, dst, w, n = edges
            t_sources = torch.from_numpy(sources).to(self.device)
            t_active = torch.from_numpy(active).to(self.device, torch.float64)
            t_pos = torch.from_numpy(table.pos.astype(np.int64)).to(self.device)
            t_sums, t_rows = scores_torch(
                src, dst, w, n, t_sources, self._t_codes, t_active, t_pos, table.width
            )
            sums, rows = t_sums.cpu().numpy(), t_rows.cpu().numpy()
        table.add(sources, sums, rows)
        return len(sources)

    def _cheaper_exhaustive(self, chosen: np.ndarray, table: ScoreTable) -> bool:
        """Cost model: trees of the sampled route vs every tree (or rows beyond the memory budget)."""
        trees = int(chosen.any(axis=1).sum())
        return (
            trees > self.exact_threshold * self.n_exhaustive or table.row_bytes(trees) > ROW_BYTES
        )

    def _estimates(
        self,
        chosen: np.ndarray,
        table: ScoreTable,
        before: list[list[ClassEstimate]] | None = None,
        changed: np.ndarray | None = None,
    ) -> list[list[ClassEstimate]]:
        """Per label set, the estimate of each kept class (kept from ``before`` where the set's
        sources did not ``change``)."""
        return [
            [class_estimate(chosen, q, g, table) for g in classes]
            if before is None or changed is None or changed[q]
            else before[q]
            for q, classes in enumerate(self.members)
        ]

    def _targets(self, estimates: list[list[ClassEstimate]]) -> list[float]:
        """Target variance of each label set's layer score: given, or that of the authors' pairs."""
        if self.target_se is not None:
            return [self.target_se**2] * len(self.sets)
        if self.authors_pairs is None:  # every pair: the target is the exact curve, variance 0
            return [0.0] * len(self.sets)
        return [
            authors_target_variance(ests, self.sizes[q], self.authors_pairs)
            for q, ests in enumerate(estimates)
        ]

    def _top_up_sizes(
        self,
        estimates: list[list[ClassEstimate]],
        targets: list[float],
        missed: list[bool],
        aim: float,
    ) -> list[np.ndarray]:
        """Sources per class for each label set: enough for ``aim`` x its target where it was missed."""
        sizes = []
        for q, (ests, target) in enumerate(zip(estimates, targets, strict=True)):
            now = np.array([e.n_sources for e in ests])
            budget = aim * target * len(ests) ** 2
            sizes.append(allocate(ests, self.sizes[q], now, budget) if missed[q] else now)
        return sizes

    def _pilot_sizes(self) -> list[np.ndarray]:
        """First-stage sources per class; a shared set's are its members ranked below the cut-off."""
        sizes = [
            np.array([first_stage_size(int(n), self.max_pairs, self.pilot_min) for n in nq])
            for nq in self.sizes
        ]
        if not self.shared.any():
            return sizes
        n = self.codes.shape[1]
        own = [q for q in range(len(self.sets)) if not self.shared[q]] or range(len(self.sets))
        cut = min(
            int(m) * n // int(c) for q in own for m, c in zip(sizes[q], self.sizes[q], strict=True)
        )
        for q in np.flatnonzero(self.shared):
            below = [int((self.rank[g] < cut).sum()) for g in self.members[q]]
            sizes[q] = np.minimum(self.sizes[q], np.maximum(below, 2))
        return sizes

    def _sample(self, edges: tuple) -> tuple[list[list[ClassEstimate]], int]:
        """Choose sources and run their trees (pilot, top-ups until the target holds, or all trees);
        returns the class estimates of every label set and the number of trees."""
        sizes = self._pilot_sizes()
        chosen = draw(self.members, sizes, self.rank, self.codes.shape[1])
        table = ScoreTable(self.codes, self.members, record=True)
        if self._cheaper_exhaustive(chosen, table):
            table = ScoreTable(self.codes, self.members, record=False)
            n_trees = self._run_trees(edges, self.all_sources, table)
            return self._estimates(self.all_sources, table), n_trees
        n_trees = self._run_trees(edges, chosen, table)
        estimates = self._estimates(chosen, table)
        targets = self._targets(estimates)
        for attempt in range(MAX_TOP_UPS + 1 if self.second_stage else 0):
            missed = [
                not shared and layer_variance(e) > t
                for e, t, shared in zip(estimates, targets, self.shared, strict=True)
            ]
            if not any(missed):
                break
            sizes = self._top_up_sizes(estimates, targets, missed, AIM if attempt else 1.0)
            more = draw(self.members, sizes, self.rank, self.codes.shape[1]) | chosen
            if attempt == MAX_TOP_UPS or self._cheaper_exhaustive(more, table):
                more = self.all_sources  # the target is a promise: finish with every tree
            added = more & ~chosen
            n_trees += self._run_trees(edges, added, table)
            chosen = more
            estimates = self._estimates(chosen, table, estimates, added.any(axis=0))
        return estimates, n_trees

    def layer(
        self,
        x: torch.Tensor,
        layer: int,
        on_graph: Callable[[int, KnnGraph], None] | None = None,
    ) -> list[ConvexityResult]:
        """Results of every label set for one layer's features (N, D), sharing one graph and its trees."""
        x = x.to(self.device, non_blocking=True)
        check_finite(x, layer)
        t0 = time.perf_counter()
        graph = _knn_with_backoff(x, self.k)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t1 = time.perf_counter()
        if on_graph is not None:
            on_graph(layer, graph)
        if self.engine == "numba":
            csr = graph.csr()
            edges: tuple = (csr.indptr, csr.indices, csr.weights)
        else:
            e = graph.undirected_edges()
            edges = (e.src, e.dst, e.weight, graph.n_points)
        estimates, n_trees = self._sample(edges)
        t2 = time.perf_counter()
        timings = {"knn_s": t1 - t0, "paths_s": t2 - t1, "fallback_rows": graph.n_fallback_rows}
        settings = dict(self.settings, layer=layer, n_shortest_path_trees=n_trees)
        return [_summarise(ls, estimates[q], settings, timings) for q, ls in enumerate(self.sets)]


def graph_convexity(
    features: np.ndarray | torch.Tensor,
    labels: Sequence[Hashable] | np.ndarray | torch.Tensor,
    options: ConvexityOptions = DEFAULT_OPTIONS,
) -> ConvexityResult:
    """Graph convexity of one layer: ``features`` (N, D), ``labels`` (N,) of any hashable type,
    estimated as ``options`` say (``ConvexityOptions``: k, precision, seed, device, engine). The same
    seed gives the same result on the same device; both engines give the same result.
    """
    x = as_features(features, "N, D")
    return layerwise_convexity(x[:, None, :], {"labels": labels}, options)["labels"].results[0]


def layerwise_convexity(
    features: np.ndarray | torch.Tensor,
    labels: Mapping[str, LabelsLike],
    options: ConvexityOptions = DEFAULT_OPTIONS,
    *,
    layers: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_graph: Callable[[int, KnnGraph], None] | None = None,
    shared_sources: Collection[str] = (),
) -> dict[str, ConvexityCurve]:
    """Convexity curves over layers of ``features`` (N, L+1, D) (may be a numpy memmap), one per label set.

    ``labels`` maps a name to one label per point, e.g. ``{"word": ..., "speaker": ...}`` (one label
    array: :func:`convexity_curve`); returns name -> curve. The label sets share each layer's kNN
    graph, the sampled sources and their shortest-path trees. ``layers`` selects hidden-state indices
    (default all); ``progress(done, total)`` is called after each layer; ``on_graph(layer, graph)``
    receives each layer's exact kNN graph so other criteria (e.g. kNN accuracy) can reuse it.
    ``options`` (k, precision, seed, device, engine) act per layer and label set.
    ``shared_sources`` names label sets sampled by one rank cut-off so that they reuse the others'
    trees (module docstring), e.g. the permuted labels of a chance level.
    """
    if not isinstance(labels, Mapping):
        raise ConvexityInputError(
            f"labels must map a label-set name to labels, got {type(labels).__name__}"
        )
    named = dict(labels)
    if not named:
        raise ConvexityInputError("no label sets given")
    x = as_features(features, "N, layers, D")
    sets = [_LabelSet.encode(name, lab, x.shape[0]) for name, lab in named.items()]
    _check_inputs(x, sets, options.k, shared_sources)
    unknown = set(shared_sources) - set(named)
    if unknown:
        raise ConvexityInputError(f"shared_sources names unknown label sets: {sorted(unknown)}")
    chosen = list(range(x.shape[1])) if layers is None else [int(i) for i in layers]
    if any(not 0 <= i < x.shape[1] for i in chosen):
        raise ConvexityInputError(f"layers must lie in 0..{x.shape[1] - 1}, got {chosen}")
    eng = _Engine(sets, options, shared=[ls.name in shared_sources for ls in sets])
    per_layer = []
    for done, i in enumerate(chosen, start=1):
        per_layer.append(eng.layer(x[:, i, :], layer=i, on_graph=on_graph))
        if progress is not None:
            progress(done, len(chosen))
    return {
        ls.name: ConvexityCurve(ls.name, tuple(chosen), tuple(res[q] for res in per_layer))
        for q, ls in enumerate(sets)
    }


def convexity_curve(
    features: np.ndarray | torch.Tensor,
    labels: LabelsLike,
    options: ConvexityOptions = DEFAULT_OPTIONS,
    **runtime: Any,
) -> ConvexityCurve:
    """The convexity curve of one label set over the layers of ``features`` (N, L+1, D).

    ``runtime``: :func:`layerwise_convexity`'s ``layers``, ``progress`` or ``on_graph``; several label
    sets are cheaper together there (they share graphs and trees).
    """
    return layerwise_convexity(features, {"labels": labels}, options, **runtime)["labels"]
