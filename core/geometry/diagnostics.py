"""Which clips break a class's region: per-clip and per-class diagnostics from the convexity trees.

For one layer and each label set, from the same exact kNN graph and the same shortest-path trees as the
exhaustive convexity curve (``core.geometry.shortest_paths``, one tree per clip):

- **clip convexity**: the mean score of the clip's within-class paths with the clip as source (its row
  of the pair-score matrix; the class's mean of these is the class score). Exact where the clip's tree
  was run (``exact``): by default every clip's is. With ``max_sources_per_class=M`` only M seeded
  sources per class get a tree (large N): other clips' convexity is NaN and ``exact`` False, class
  scores are the mean of the sources' rows (unbiased under simple random sampling) and bridge counts
  are Horvitz-Thompson estimates (each class's counts scaled by n_c / m_c).
- **bridge**: how often the clip is an interior vertex of *other* classes' shortest paths, divided by
  the number of those paths (ordered pairs of every other class with at least two clips);
  ``bridge_paths`` is the raw count and ``inside_paths`` the count over its own class's paths.
- **purity**: the share of the clip's k nearest neighbours that carry its label.
- per class: its exact score, its size, and the connected components the class forms in the kNN graph
  (the class-induced subgraph, ``scipy.sparse.csgraph.connected_components``).

The kernel counts interior vertices in the trees it already builds (one reverse pass per tree), so the
diagnostics cost about what the exhaustive curve costs; memory is O(N) per label set (no pair matrix).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from core.errors import ConvexityInputError
from core.geometry.knn import Csr, KnnGraph, knn_graph
from core.geometry.options import DEFAULT_K
from core.geometry.shortest_paths import scores_numba, scores_torch
from core.geometry.validation import (
    LabelsLike,
    as_features,
    check_finite,
    encode_labels,
    resolve_device,
)
from core.io.records import Record

ENGINE_VERSION = "1"
CLIP_COLUMNS = ("convexity", "exact", "bridge", "bridge_paths", "inside_paths", "purity")


@dataclass(frozen=True)
class ClassDiagnostics:
    """One class of one label set at one layer: exact score, size, and pieces in the kNN graph."""

    label: str
    n_points: int
    convexity: float  # exhaustive class score (nan for classes with fewer than 2 clips)
    n_components: int  # connected components of the class-induced kNN subgraph
    largest_component: int  # clips in the largest of them
    purity: float  # mean kNN purity of the class's clips
    bridge_paths: float  # other classes' paths through the class's clips (estimated when sampled)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON and CSV."""
        return dict(vars(self))


@dataclass(frozen=True)
class LayerDiagnostics:
    """Per-clip columns (each (N,)) and per-class rows of one label set at one layer."""

    label_set: str
    layer: int | None
    k: int
    classes: tuple[str, ...]
    codes: np.ndarray  # (N,) int: index into ``classes``
    convexity: np.ndarray  # (N,) float64, nan where the clip's class has fewer than 2 clips
    exact: np.ndarray  # (N,) bool: the clip's own tree was run
    bridge: np.ndarray  # (N,) float64: bridge_paths / other classes' paths
    bridge_paths: np.ndarray  # (N,) float64 (whole numbers when exhaustive)
    inside_paths: np.ndarray  # (N,) float64
    purity: np.ndarray  # (N,) float64
    per_class: tuple[ClassDiagnostics, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_points(self) -> int:
        """Clips in the table."""
        return int(self.codes.shape[0])

    @property
    def labels(self) -> np.ndarray:
        """Each clip's label (strings)."""
        return np.asarray(self.classes, dtype=object)[self.codes]

    @property
    def score(self) -> float:
        """The layer's exhaustive convexity (mean over classes with at least two clips)."""
        kept = [c.convexity for c in self.per_class if c.n_points >= 2]
        return float(np.mean(kept))

    def column(self, name: str) -> np.ndarray:
        """One per-clip column by name (see ``CLIP_COLUMNS``)."""
        if name not in CLIP_COLUMNS:
            raise ConvexityInputError(
                f"no clip column {name!r}; columns: {', '.join(CLIP_COLUMNS)}"
            )
        return getattr(self, name)

    def ranked(self, by: str = "convexity", *, lowest: bool = True) -> np.ndarray:
        """Clip indices ordered by a column (lowest or highest first; ties by clip index), nan last."""
        values = np.asarray(self.column(by), dtype=np.float64)
        key = values if lowest else -values
        key = np.where(np.isnan(key), np.inf, key)
        return np.lexsort((np.arange(len(key)), key))


@dataclass(frozen=True)
class GroupSummary:
    """Per-clip diagnostics averaged over the clips of one group (a word, a speaker, ...)."""

    group: str
    n_clips: int
    convexity: float
    bridge: float
    purity: float
    lowest_share: float  # share of the group's clips among the table's lowest-convexity clips

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON and CSV."""
        return dict(vars(self))


def breakdown(
    table: LayerDiagnostics, groups: LabelsLike, *, lowest: int | None = None
) -> list[GroupSummary]:
    """Mean clip convexity, bridge and purity per group, lowest mean convexity first.

    ``groups`` gives each clip a group (e.g. its speaker, for a per-speaker breakdown of word
    diagnostics); ``lowest`` (default 5% of the clips) sets the bottom of the table whose share per
    group is reported: a group whose clips are odd crowds it.
    """
    names = np.asarray([str(g) for g in groups], dtype=object)
    if len(names) != table.n_points:
        raise ConvexityInputError(f"{len(names)} groups for {table.n_points} clips")
    n_low = lowest if lowest is not None else max(1, round(0.05 * table.n_points))
    bottom = np.zeros(table.n_points, dtype=bool)
    bottom[table.ranked("convexity")[:n_low]] = True
    out = []
    for g in dict.fromkeys(names.tolist()):
        mask = names == g
        conv = table.convexity[mask]
        out.append(
            GroupSummary(
                group=str(g),
                n_clips=int(mask.sum()),
                convexity=float(np.nanmean(conv)) if np.isfinite(conv).any() else math.nan,
                bridge=float(table.bridge[mask].mean()),
                purity=float(table.purity[mask].mean()),
                lowest_share=float(bottom[mask].mean()),
            )
        )
    return sorted(out, key=lambda s: (np.nan_to_num(s.convexity, nan=np.inf), s.group))


def _components(
    indptr: np.ndarray, nbr: np.ndarray, members: np.ndarray, n: int
) -> tuple[int, int]:
    """(components, size of the largest) of the kNN subgraph induced by ``members``."""
    adj = csr_matrix((np.ones(len(nbr), dtype=np.int8), nbr, indptr), shape=(n, n))
    sub = adj[members][:, members]
    count, which = connected_components(sub, directed=False)
    return int(count), int(np.bincount(which).max())


def _purity(graph: KnnGraph, codes: np.ndarray) -> np.ndarray:
    """Share of each clip's k nearest neighbours (its own list) with its label."""
    idx = graph.indices.cpu().numpy()
    return (codes[idx] == codes[:, None]).mean(axis=1)


def _design(codes: np.ndarray, max_sources: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(active (N, Q) bool, weights (N, Q)): which clips get a tree for which label set, and n_c / m_c."""
    n_sets, n = codes.shape
    if max_sources is None:
        return np.ones((n, n_sets), dtype=bool), np.ones((n, n_sets))
    rank = np.random.default_rng(seed).permutation(n)
    active = np.zeros((n, n_sets), dtype=bool)
    weights = np.zeros((n, n_sets))
    for q in range(n_sets):
        for c in np.unique(codes[q]):
            members = np.flatnonzero(codes[q] == c)
            chosen = members[np.argsort(rank[members], kind="stable")[:max_sources]]
            active[chosen, q] = True
            weights[chosen, q] = len(members) / len(chosen)
    return active, weights


TREE_CHUNK = 512  # sources per kernel call: progress is reported between calls


def _run_trees(
    graph: KnnGraph,
    codes: np.ndarray,
    active: np.ndarray,
    weights: np.ndarray,
    engine: str,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The chosen clips' trees: score sums (N, Q, 2) (zero where no tree) and traffic (Q, 2, N).

    The sources run in chunks of ``TREE_CHUNK``; ``progress(done, total)`` counts trees run."""
    n = graph.n_points
    sources = np.flatnonzero(active.any(axis=1))
    sums = np.zeros((n, codes.shape[0], 2))
    chunks = [sources[i : i + TREE_CHUNK] for i in range(0, len(sources), TREE_CHUNK)]
    if engine == "numba":
        traffic = np.zeros((codes.shape[0], 2, n))
        csr = graph.csr()
        for done, chunk in enumerate(chunks):
            sums[chunk], _ = scores_numba(
                csr.indptr,
                csr.indices,
                csr.weights,
                chunk,
                codes,
                active[chunk],
                traffic=traffic,
                source_weights=weights[chunk],
            )
            if progress is not None:
                progress(done * TREE_CHUNK + len(chunk), len(sources))
        return sums, traffic
    edges = graph.undirected_edges()
    src, dst, w = edges.src, edges.dst, edges.weight
    t_traffic = torch.zeros((codes.shape[0], 2, n), dtype=torch.float64, device=device)
    t_codes = torch.from_numpy(codes.astype(np.int64)).to(device)
    for done, chunk in enumerate(chunks):
        t_sums, _ = scores_torch(
            src,
            dst,
            w,
            n,
            torch.from_numpy(chunk).to(device),
            t_codes,
            torch.from_numpy(active[chunk]).to(device, torch.float64),
            traffic=t_traffic,
            source_weights=torch.from_numpy(weights[chunk]).to(device),
        )
        sums[chunk] = t_sums.cpu().numpy()
        if progress is not None:
            progress(done * TREE_CHUNK + len(chunk), len(sources))
    return sums, t_traffic.cpu().numpy()


@dataclass(frozen=True)
class _Trees:
    """One layer's graph and trees, shared by its label sets."""

    graph: KnnGraph
    csr: Csr
    sums: np.ndarray  # (N, Q, 2)
    traffic: np.ndarray  # (Q, 2, N)
    active: np.ndarray  # (N, Q)


def _one_set(
    q: int,
    name: str,
    codes: np.ndarray,
    classes: list[Hashable],
    trees: _Trees,
    layer: int | None,
    k: int,
    settings: dict[str, Any],
    timings: dict[str, float],
) -> LayerDiagnostics:
    """The table of label set ``q`` from the shared trees."""
    n = len(codes)
    sums, traffic, active = trees.sums[:, q], trees.traffic[q], trees.active[:, q]
    counts = np.bincount(codes, minlength=len(classes))
    size = counts[codes]
    with np.errstate(invalid="ignore", divide="ignore"):
        convexity = np.where((size >= 2) & active, sums[:, 0] / np.maximum(size - 1, 1), np.nan)
    pairs = counts * (counts - 1)
    other_paths = pairs.sum() - pairs[codes]
    bridge = np.where(other_paths > 0, traffic[1] / np.maximum(other_paths, 1), 0.0)
    purity = _purity(trees.graph, codes)
    indptr, nbr = trees.csr.indptr, trees.csr.indices
    per_class = []
    for c, label in enumerate(classes):
        members = np.flatnonzero(codes == c)
        sources = members[active[members]]
        n_comp, largest = _components(indptr, nbr, members, n)
        score = (
            float(sums[sources, 0].sum() / (len(sources) * (counts[c] - 1)))
            if counts[c] >= 2 and len(sources)
            else math.nan
        )
        per_class.append(
            ClassDiagnostics(
                label=str(label),
                n_points=int(counts[c]),
                convexity=score,
                n_components=n_comp,
                largest_component=largest,
                purity=float(purity[members].mean()),
                bridge_paths=float(traffic[1, members].sum()),
            )
        )
    return LayerDiagnostics(
        label_set=name,
        layer=layer,
        k=k,
        classes=tuple(str(c) for c in classes),
        codes=codes.astype(np.int32),
        convexity=convexity.astype(np.float64),
        exact=active.copy(),
        bridge=bridge.astype(np.float64),
        bridge_paths=traffic[1].astype(np.float64),
        inside_paths=traffic[0].astype(np.float64),
        purity=purity.astype(np.float64),
        per_class=tuple(per_class),
        settings=dict(settings),
        timings=dict(timings),
    )


def diagnose_layer(
    features: np.ndarray | torch.Tensor,
    labels: Mapping[str, LabelsLike],
    *,
    k: int = DEFAULT_K,
    layer: int | None = None,
    max_sources_per_class: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    engine: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, LayerDiagnostics]:
    """Per-clip and per-class diagnostics of one layer (N, D) for each named label set.

    The label sets share the kNN graph and the trees; ``engine``: ``auto`` (torch on CUDA, numba on
    CPU), ``numba`` or ``torch``; both count the same paths. ``max_sources_per_class=None`` runs every
    clip's tree (exact); an integer M >= 2 samples M sources per class with ``seed`` (module docstring).
    ``progress(done, total)`` counts the shortest-path trees run.
    """
    if not isinstance(labels, Mapping) or not labels:
        raise ConvexityInputError("labels must map one or more label-set names to labels")
    if max_sources_per_class is not None and (
        not isinstance(max_sources_per_class, int | np.integer) or max_sources_per_class < 2
    ):
        raise ConvexityInputError(
            f"max_sources_per_class must be an integer >= 2 or None, got {max_sources_per_class!r}"
        )
    x = as_features(features, "N, D")
    n = x.shape[0]
    if not isinstance(k, int | np.integer) or not 1 <= k < n:
        raise ConvexityInputError(f"k must be an integer with 1 <= k < N = {n}, got {k!r}")
    encoded = {name: encode_labels(lab, n, name) for name, lab in labels.items()}
    for name, (codes, _) in encoded.items():
        if int((np.bincount(codes) >= 2).sum()) < 2:
            raise ConvexityInputError(
                f"labels '{name}': need at least 2 classes with 2 or more points"
            )
    dev = resolve_device(device)
    if engine == "auto":
        engine = "torch" if dev.type == "cuda" else "numba"
    if engine not in ("numba", "torch"):
        raise ConvexityInputError(f"engine must be 'auto', 'numba' or 'torch', got {engine!r}")
    x = x.to(dev)
    check_finite(x, layer)
    t0 = time.perf_counter()
    graph = knn_graph(x, int(k))
    t1 = time.perf_counter()
    codes = np.stack([c for c, _ in encoded.values()]).astype(np.int32)
    active, weights = _design(codes, max_sources_per_class, seed)
    sums, traffic = _run_trees(graph, codes, active, weights, engine, dev, progress)
    t2 = time.perf_counter()
    trees = _Trees(graph, graph.csr(), sums, traffic, active)
    exhaustive = bool(active.all())
    settings = {
        "k": int(k),
        "layer": layer,
        "estimator": "exhaustive"
        if exhaustive
        else "sampled sources: clip convexity where the tree was run, class scores the mean of "
        "the sources' rows, bridge counts scaled by n_c / m_c",
        "exact": exhaustive,
        "max_sources_per_class": max_sources_per_class,
        "seed": seed,
        "engine": engine,
        "device": str(dev),
        "n_points": n,
        "n_shortest_path_trees": int(active.any(axis=1).sum()),
    }
    timings = {"knn_s": t1 - t0, "paths_s": t2 - t1}
    out = {
        name: _one_set(q, name, set_codes, classes, trees, layer, int(k), settings, timings)
        for q, (name, (set_codes, classes)) in enumerate(encoded.items())
    }
    t3 = time.perf_counter()
    for table in out.values():
        table.timings["tables_s"] = t3 - t2
    return out


def diagnose_layers(
    features: np.ndarray | torch.Tensor,
    labels: Mapping[str, LabelsLike],
    *,
    layers: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> dict[str, tuple[LayerDiagnostics, ...]]:
    """``diagnose_layer`` for each chosen hidden state of ``features`` (N, L+1, D); name -> per layer."""
    x = as_features(features, "N, layers, D")
    chosen = list(range(x.shape[1])) if layers is None else [int(i) for i in layers]
    if any(not 0 <= i < x.shape[1] for i in chosen):
        raise ConvexityInputError(f"layers must lie in 0..{x.shape[1] - 1}, got {chosen}")
    per_layer = []
    for done, i in enumerate(chosen, start=1):
        per_layer.append(diagnose_layer(x[:, i, :], labels, layer=i, **options))
        if progress is not None:
            progress(done, len(chosen))
    return {name: tuple(d[name] for d in per_layer) for name in labels}


def precision_at(table: LayerDiagnostics, truth: np.ndarray, *, by: str = "convexity") -> float:
    """Share of the ``len(truth)`` clips ranked lowest by ``by`` that are in ``truth`` (precision at k)."""
    truth = np.asarray(truth)
    if not len(truth):
        raise ConvexityInputError("precision_at needs at least one true clip")
    top = table.ranked(by, lowest=by != "bridge")[: len(truth)]
    return float(np.isin(top, truth).mean())


def clip_rows(
    table: LayerDiagnostics,
    columns: Mapping[str, Sequence[Any]] | None = None,
    order: np.ndarray | None = None,
) -> Iterator[dict[str, Any]]:
    """One row per clip (in ``order``, default clip order): clip, label, the clip columns and any
    per-clip ``columns`` (file, speaker ...); a generator, so large tables stream."""
    columns = dict(columns or {})
    names = table.classes
    for i in range(table.n_points) if order is None else order:
        i = int(i)
        row: dict[str, Any] = {"label_set": table.label_set, "layer": table.layer, "clip": i}
        row |= {name: values[i] for name, values in columns.items()}
        row["label"] = names[int(table.codes[i])]
        for col in CLIP_COLUMNS:
            value = table.column(col)[i]
            row[col] = value.item() if hasattr(value, "item") else value
        yield row


def class_rows(table: LayerDiagnostics) -> list[dict[str, Any]]:
    """One row per class: label set, layer and the class's diagnostics."""
    return [
        {"label_set": table.label_set, "layer": table.layer, **c.to_dict()} for c in table.per_class
    ]


# --------------------------------------------------------------------------------------------------
# Views for the Projections page: a selection of clips as a table, one clip's diagnostics in a line


@dataclass(frozen=True)
class SelectedClip(Record):
    """One clip of a selection on a projection: its labels and its diagnostics (nan without them)."""

    clip: int
    word: str
    speaker: str
    file: str
    convexity: float
    bridge: float
    bridge_paths: float
    purity: float


def selection_table(
    clips: Sequence[int],
    labels: Mapping[str, Sequence[str]],
    table: LayerDiagnostics | None = None,
) -> tuple[SelectedClip, ...]:
    """The selected ``clips`` (duplicates dropped, clip order) with ``labels`` (``word``, ``speaker``,
    ``file`` per clip) and, when ``table`` is given, the layer's clip convexity, bridge and purity."""
    chosen = sorted({int(c) for c in clips})
    n = len(labels["word"])
    if any(not 0 <= c < n for c in chosen):
        raise ConvexityInputError(f"selected clips must lie in 0..{n - 1}")

    def value(column: str, i: int) -> float:
        return math.nan if table is None else float(table.column(column)[i])

    return tuple(
        SelectedClip(
            clip=i,
            word=str(labels["word"][i]),
            speaker=str(labels["speaker"][i]),
            file=str(labels["file"][i]),
            convexity=value("convexity", i),
            bridge=value("bridge", i),
            bridge_paths=value("bridge_paths", i),
            purity=value("purity", i),
        )
        for i in chosen
    )


def selection_csv(rows: Sequence[SelectedClip]) -> str:
    """The selection table as CSV text (header row; empty cells where a diagnostic is missing)."""
    buf = io.StringIO()
    names = [f.name for f in fields(SelectedClip)]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        values = [getattr(row, name) for name in names]
        writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in values])
    return buf.getvalue()


def clip_summary(table: LayerDiagnostics, clip: int) -> str:
    """One clip's diagnostics in a line: clip convexity, bridge (with the paths through it) and purity."""
    paths = float(table.bridge_paths[clip])
    exact = bool(table.settings.get("exact", True))
    if paths == 0:
        through = "on no other class's path"
    else:
        count = f"{paths:,.0f}" if exact else f"about {paths:,.0f}"
        through = f"on {count} other classes' {'path' if round(paths) == 1 else 'paths'}"
    convexity = float(table.convexity[clip])
    conv = "not sampled" if math.isnan(convexity) else f"{convexity:.3f}"
    return (
        f"clip convexity ({table.label_set}) {conv} · bridge {float(table.bridge[clip]):.4f} "
        f"({through}) · kNN purity {float(table.purity[clip]):.1f}"
    )
