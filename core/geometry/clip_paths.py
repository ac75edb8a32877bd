"""The shortest path between two clips on a layer's kNN graph, vertex by vertex, and a clip's neighbours.

Paths follow the convexity engine's definition exactly (``core.geometry.shortest_paths.path_tree``: one
lexicographic Dijkstra tree from the source; least total weight, then fewest edges, then the
lowest-index predecessor at every vertex), so a path shown here is the path the score counted. One tree
serves every class-mate, which is how the default partner is found: the class-mate whose path leaves
the class most (lowest pair score; ties: more interior vertices outside the class, then lowest index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import ConvexityInputError
from core.geometry.knn import Csr, KnnGraph, knn_graph
from core.geometry.options import DEFAULT_K
from core.geometry.shortest_paths import path_tree, tree_path
from core.geometry.validation import LabelsLike, as_features, as_labels


@dataclass(frozen=True)
class ClipPath:
    """One shortest path source -> target: its vertices, which are in the pair's class, and the score."""

    source: int
    target: int
    label: str
    vertices: tuple[int, ...]  # source .. target; empty when the target is unreachable
    in_class: tuple[bool, ...]  # per vertex: carries the pair's label
    distances: tuple[float, ...]  # per vertex: path weight from the source so far

    @property
    def reachable(self) -> bool:
        """Whether the target is reachable from the source in the kNN graph."""
        return bool(self.vertices)

    @property
    def interior(self) -> tuple[int, ...]:
        """The vertices strictly between source and target."""
        return self.vertices[1:-1]

    @property
    def score(self) -> float:
        """Share of interior vertices in the class (1 with none, 0 when unreachable): the pair's score."""
        if not self.reachable:
            return 0.0
        inside = self.in_class[1:-1]
        return float(np.mean(inside)) if inside else 1.0


@dataclass(frozen=True)
class LayerGraph:
    """One layer's exact kNN graph: the directed neighbour lists and the symmetrised CSR the paths use."""

    graph: KnnGraph
    csr: Csr

    @property
    def n_points(self) -> int:
        """Clips in the graph."""
        return self.graph.n_points

    def neighbours(self, clip: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of the clip's k nearest other clips, nearest first."""
        _check_clip(clip, self.n_points, "clip")
        return (
            self.graph.indices[clip].cpu().numpy(),
            self.graph.distances[clip].cpu().numpy(),
        )


def layer_graph(features: np.ndarray | torch.Tensor, k: int = DEFAULT_K) -> LayerGraph:
    """The exact kNN graph of one layer's features (N, D), as the convexity engine builds it (CPU)."""
    x = as_features(features, "N, D").to("cpu")
    if not isinstance(k, int | np.integer) or not 1 <= k < x.shape[0]:
        raise ConvexityInputError(f"k must be an integer with 1 <= k < N = {x.shape[0]}, got {k!r}")
    graph = knn_graph(x, int(k))
    return LayerGraph(graph, graph.csr())


def _check_clip(clip: int, n: int, what: str) -> None:
    if not isinstance(clip, int | np.integer) or not 0 <= clip < n:
        raise ConvexityInputError(f"{what} must be a clip index in 0..{n - 1}, got {clip!r}")


def _path(pred: np.ndarray, dist: np.ndarray, labels: np.ndarray, s: int, t: int) -> ClipPath:
    """The ClipPath of s -> t read off the tree from s."""
    vertices = tree_path(pred, s, t) or []
    return ClipPath(
        source=int(s),
        target=int(t),
        label=str(labels[s]),
        vertices=tuple(vertices),
        in_class=tuple(bool(labels[v] == labels[s]) for v in vertices),
        distances=tuple(float(dist[v]) for v in vertices),
    )


def class_paths(g: LayerGraph, labels: LabelsLike, source: int) -> list[ClipPath]:
    """Every path from ``source`` to its class-mates, from one tree (in class-mate index order)."""
    lab = as_labels(labels, g.n_points)
    _check_clip(source, g.n_points, "source")
    tree = path_tree(g.csr, int(source))
    dist, pred = tree.distance, tree.predecessor
    mates = np.flatnonzero(lab == lab[source])
    return [_path(pred, dist, lab, source, int(t)) for t in mates if t != source]


def leaving_partner(g: LayerGraph, labels: LabelsLike, source: int) -> int | None:
    """The class-mate whose path from ``source`` leaves the class most (None without class-mates)."""
    paths = class_paths(g, labels, source)
    if not paths:
        return None
    best = min(paths, key=lambda p: (p.score, -(len(p.interior) - sum(p.in_class[1:-1])), p.target))
    return best.target


def clip_path(
    g: LayerGraph, labels: LabelsLike, source: int, target: int | None = None
) -> ClipPath:
    """The shortest path source -> target (default: ``leaving_partner``) with every vertex on it.

    ConvexityInputError when a clip index is out of range or the source has no class-mate to default to.
    """
    lab = as_labels(labels, g.n_points)
    _check_clip(source, g.n_points, "source")
    if target is None:
        target = leaving_partner(g, lab, source)
        if target is None:
            raise ConvexityInputError(
                f"clip {source} has no class-mate ({lab[source]!r} has one clip)"
            )
    _check_clip(target, g.n_points, "target")
    tree = path_tree(g.csr, int(source))
    dist, pred = tree.distance, tree.predecessor
    return _path(pred, dist, lab, int(source), int(target))


def path_rows(path: ClipPath, columns: dict[str, Sequence[str]]) -> list[dict[str, object]]:
    """One row per vertex: step, clip, role, in class, distance so far, and the given per-clip columns."""
    rows = []
    last = len(path.vertices) - 1
    for step, (v, inside, d) in enumerate(
        zip(path.vertices, path.in_class, path.distances, strict=True)
    ):
        role = "source" if step == 0 else "target" if step == last else "interior"
        row: dict[str, object] = {"step": step, "clip": v, "role": role, "in_class": inside}
        row |= {name: values[v] for name, values in columns.items()}
        row["distance"] = d
        rows.append(row)
    return rows
