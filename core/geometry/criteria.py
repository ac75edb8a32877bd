"""Per-layer layer-selection criteria that researchers compare with graph convexity, behind one interface.

Every criterion is a function of per-clip features (N, L+1, D) (and labels, and kNN graphs where it uses
them) returning a ``CriterionResult``: a per-layer curve (L+1,) or a layer x layer matrix (L+1, L+1), its
uncertainty, the settings used, and a documented rule that turns it into a proposed prune point p
(1 <= p <= L: keep transformer layers 1..p, read hidden state p). ``CRITERIA`` maps names to
``CriterionSpec`` entries; adding a criterion is adding an entry.

Criteria (layer i = hidden-state index i):
- ``linear_probe``: stratified k-fold accuracy of a multinomial logistic regression on standardised
  features (optionally PCA first); uncertainty = std over folds.
- ``knn_accuracy``: leave-one-out k-NN majority vote on the *same* exact kNN graphs the convexity engine
  builds (collect them with ``GraphCollector`` via ``layerwise_convexity(..., on_graph=...)``); vote ties
  go to the class of the nearest tied neighbour; uncertainty = sqrt(p (1 - p) / N).
- ``nearest_centroid``: leave-one-out nearest-class-mean accuracy (Euclidean): each clip goes to the
  nearest class mean, its own class's mean taken without it (exact, in closed form: the distance to that
  mean is n/(n-1) times the distance to the full mean; scikit-learn's ``NearestCentroid`` would be refitted
  once per clip); a global counterpart of the local kNN vote; uncertainty = sqrt(p (1 - p) / N).
- ``linear_cka``: linear CKA (Kornblith et al. 2019) on centred features, feature-space (Gram-free) form
  ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), float64, O(N D^2) per pair.
- ``mutual_knn``: mutual k-NN alignment (Huh et al. 2024): mean over points of |kNN_A(i) ∩ kNN_B(i)| / k,
  from the same Euclidean kNN graphs (Huh et al. use cosine neighbours; here the convexity graphs).
- ``block_influence``: ShortGPT (arXiv 2403.03853) BI_l = 1 - mean_clips cos(h_{l-1}, h_l), on the pooled
  per-clip vectors rather than tokens; BI_0 is undefined (NaN).
- ``angular_distance``: Gromov et al. (arXiv 2403.17887) mean over clips of arccos(cos(h_i, h_j)) / pi for
  every pair of layers (angles computed stably from unit-vector differences); the prune rule uses the block
  size ``n`` (their d(l, l+n)).

Prune rules (``PRUNE_RULES``; layer 0 is never proposed): accuracy and convexity curves -> first layer
reaching ``fraction`` (0.95) of the maximum over layers 1..L; block influence -> first layer where the
cumulative BI reaches ``fraction`` of the total; CKA and mutual kNN -> start of the last block p..L whose
pairwise similarities all reach ``threshold`` (0.9 and 0.5); angular distance -> argmin_{l>=1} d(l, l+n).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from core.errors import ConvexityInputError
from core.geometry.knn import KnnGraph, knn_graph
from core.geometry.options import DEFAULT_K
from core.geometry.prune_point import DEFAULT_FRACTION, suggest_prune_point
from core.geometry.validation import as_feature_array, check_finite, encode_labels

Kind = Literal["curve", "matrix"]
Features = np.ndarray | torch.Tensor
Labels = Sequence[Hashable] | np.ndarray | torch.Tensor


# ----------------------------------------------------------------------------------------------------
# Result type and prune rules
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionResult:
    """One criterion over layers: a curve (L+1,) or matrix (L+1, L+1), its uncertainty and its prune rule.

    ``prune_rule`` names an entry of ``PRUNE_RULES``; ``proposed_prune_point`` applies it, with
    ``fraction``/``threshold``/``n`` overriding the defaults stored in ``settings``. ``uncertainty`` has the
    shape of ``values`` (what it is is stated in ``settings["uncertainty"]``) or is None.
    """

    name: str
    kind: Kind
    values: np.ndarray
    uncertainty: np.ndarray | None
    settings: dict[str, Any]
    higher_is_better: bool
    prune_rule: str
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        """Number of hidden states (L+1)."""
        return int(self.values.shape[0])

    @property
    def rule_text(self) -> str:
        """One-line description of the prune rule."""
        return PRUNE_RULES[self.prune_rule][1]

    def proposed_prune_point(
        self,
        fraction: float | None = None,
        threshold: float | None = None,
        n: int | None = None,
    ) -> int:
        """Prune point p in 1..L proposed by this criterion's documented rule (see ``PRUNE_RULES``)."""
        params = {
            "fraction": self.settings.get("fraction", DEFAULT_FRACTION)
            if fraction is None
            else fraction,
            "threshold": self.settings.get("threshold") if threshold is None else threshold,
            "n": self.settings.get("n") if n is None else n,
        }
        return PRUNE_RULES[self.prune_rule][0](self.values, **params)


def _check_candidates(n_layers: int) -> None:
    """A prune point needs at least one transformer layer (L >= 1)."""
    if n_layers < 2:
        raise ConvexityInputError(
            f"need at least 2 hidden states (L >= 1) to propose a prune point, got {n_layers}"
        )


def _rule_fraction_of_max(values: np.ndarray, *, fraction: float, **_: Any) -> int:
    """Curve rule: first layer >= 1 reaching ``fraction`` x max over layers 1..L."""
    return suggest_prune_point(values, fraction)


def _rule_cumulative_share(values: np.ndarray, *, fraction: float, **_: Any) -> int:
    """Per-layer-change rule: first p >= 1 where sum_{l<=p} v_l reaches ``fraction`` of sum_{l>=1} v_l."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64)[1:], nan=0.0).clip(min=0.0)
    _check_candidates(v.shape[0] + 1)
    total = v.sum()
    if total <= 0:
        return 1
    cum = np.cumsum(v)
    return int(np.flatnonzero(cum >= fraction * total - 1e-12 * total)[0]) + 1


def _rule_last_block(values: np.ndarray, *, threshold: float, **_: Any) -> int:
    """Matrix rule: smallest p >= 1 with M[i, j] >= threshold for all i, j in p..L (start of the top block)."""
    m = np.asarray(values, dtype=np.float64)
    last = m.shape[0] - 1
    _check_candidates(m.shape[0])
    if threshold is None:
        raise ConvexityInputError("this rule needs a threshold")
    p = last
    while p > 1:
        block = m[p - 1 :, p - 1 :]
        if np.all(np.nan_to_num(block, nan=-np.inf) >= threshold):
            p -= 1
        else:
            break
    return p


def _rule_gromov_block(values: np.ndarray, *, n: int, **_: Any) -> int:
    """Angular-distance rule: p = argmin_{1 <= l <= L-n} d(l, l+n) (ties: lowest l)."""
    m = np.asarray(values, dtype=np.float64)
    last = m.shape[0] - 1
    if n is None or not 1 <= n <= last - 1:
        raise ConvexityInputError(f"block size n must satisfy 1 <= n <= L-1 = {last - 1}, got {n}")
    d = np.array([m[layer, layer + n] for layer in range(1, last - n + 1)])
    return int(np.nanargmin(d)) + 1


PRUNE_RULES: dict[str, tuple[Callable[..., int], str]] = {
    "fraction_of_max": (
        _rule_fraction_of_max,
        "first layer >= 1 whose value reaches fraction x the maximum over layers 1..L",
    ),
    "cumulative_share": (
        _rule_cumulative_share,
        "first layer p >= 1 where the summed per-layer change of layers 1..p reaches fraction of the "
        "total (the dropped layers p+1..L change the representation least)",
    ),
    "last_block": (
        _rule_last_block,
        "start p >= 1 of the last block p..L whose pairwise similarities all reach threshold "
        "(layers above p add little beyond layer p)",
    ),
    "gromov_block": (
        _rule_gromov_block,
        "p = argmin over l >= 1 of d(l, l+n): Gromov et al. drop layers l+1..l+n where hidden states l "
        "and l+n are closest; truncating at p drops that block and everything above it",
    ),
}


# ----------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------


def _as_array(features: Features) -> np.ndarray:
    """Features (N, L+1, D) as a numpy array (no copy when possible; memmaps stay lazy)."""
    features = as_feature_array(features, "N, L+1, D")
    if features.shape[0] < 2 or features.shape[1] < 1 or features.shape[2] < 1:
        raise ConvexityInputError(f"features are too small: shape {tuple(features.shape)}")
    return features


def _layer(features: np.ndarray, layer: int, dtype: type | None = np.float64) -> np.ndarray:
    """One layer (N, D) as a contiguous array of ``dtype`` (None: keep the stored dtype)."""
    out = np.ascontiguousarray(features[:, layer, :], dtype=dtype)
    check_finite(out, layer)
    return out


# ----------------------------------------------------------------------------------------------------
# kNN graphs shared with the convexity engine
# ----------------------------------------------------------------------------------------------------


class GraphCollector(dict):
    """Dict layer -> KnnGraph that is also an ``on_graph`` callback for ``layerwise_convexity``."""

    def __call__(self, layer: int, graph: KnnGraph) -> None:
        """Store the layer's graph (indices and distances moved to the CPU)."""
        self[int(layer)] = KnnGraph(
            graph.indices.cpu(), graph.distances.cpu(), n_fallback_rows=graph.n_fallback_rows
        )


def knn_graphs(
    features: Features,
    k: int = DEFAULT_K,
    graphs: Mapping[int, KnnGraph] | None = None,
    layers: Sequence[int] | None = None,
) -> dict[int, KnnGraph]:
    """Exact kNN graphs per layer, reusing those in ``graphs`` (with >= k neighbours) and building the rest."""
    x = _as_array(features)
    chosen = range(x.shape[1]) if layers is None else layers
    out: dict[int, KnnGraph] = {}
    for layer in chosen:
        given = None if graphs is None else graphs.get(int(layer))
        if given is not None and given.indices.shape[1] >= k and given.n_points == x.shape[0]:
            out[int(layer)] = given
        else:
            out[int(layer)] = knn_graph(torch.from_numpy(_layer(x, layer, None)), k)
    return out


def _graph_indices(graph: KnnGraph, k: int) -> np.ndarray:
    """The first k neighbour columns (nearest first) of a graph with at least k neighbours, as numpy."""
    if graph.indices.shape[1] < k:
        raise ConvexityInputError(
            f"graph has {graph.indices.shape[1]} neighbours per point, need k = {k}"
        )
    return graph.indices[:, :k].cpu().numpy()


def _graphs_k(graphs: Mapping[int, KnnGraph], k: int | None) -> int:
    """k to use: the given one, else the smallest neighbour count among the graphs."""
    if not graphs:
        raise ConvexityInputError("no graphs given")
    return int(k) if k is not None else min(int(g.indices.shape[1]) for g in graphs.values())


# ----------------------------------------------------------------------------------------------------
# Supervised curves
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ProbeFit:
    """How each layer's probe is fitted: optional PCA, the logistic regression's limits, and threads."""

    pca_dims: int | None
    C: float
    max_iter: int
    tol: float
    n_jobs: int
    blas_threads: int | None

    def pipeline(self, xl: np.ndarray) -> Any:
        """A fresh StandardScaler [-> PCA, when it reduces] -> multinomial LBFGS pipeline for one layer."""
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        steps: list[Any] = [StandardScaler()]
        if self.pca_dims is not None and self.pca_dims < min(xl.shape):
            steps.append(PCA(self.pca_dims, svd_solver="covariance_eigh"))
        steps.append(
            LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol, solver="lbfgs")
        )
        return make_pipeline(*steps)

    def fold_accuracy(self, xl: np.ndarray, y: np.ndarray, folds: Any) -> tuple[np.ndarray, int]:
        """Accuracy on each fold and the number of fits that did not converge (BLAS threads capped)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import cross_val_score
        from threadpoolctl import threadpool_limits

        with (
            warnings.catch_warnings(record=True) as caught,
            threadpool_limits(limits=self.blas_threads, user_api="blas"),
        ):
            warnings.simplefilter("always", ConvergenceWarning)
            acc = cross_val_score(
                self.pipeline(xl), xl, y, cv=folds, scoring="accuracy", n_jobs=self.n_jobs
            )
        return acc, sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def _probe_points(codes: np.ndarray, n_splits: int) -> np.ndarray:
    """Mask of the points whose class has at least ``n_splits`` points (each fold needs every class)."""
    counts = np.bincount(codes)
    keep = counts[codes] >= n_splits
    if len(np.unique(codes[keep])) < 2:
        raise ConvexityInputError(f"need at least 2 classes with >= n_splits = {n_splits} points")
    return keep


def _probe_settings(
    fit: _ProbeFit,
    n_splits: int,
    seed: int,
    codes: np.ndarray,
    keep: np.ndarray,
    n_classes: int,
    fraction: float,
) -> dict[str, Any]:
    """The settings a linear-probe result records: its options and the points and classes it used."""
    y = codes[keep]
    n_excluded = int((np.bincount(codes) < n_splits).sum())
    return {
        "n_splits": n_splits,
        "seed": seed,
        "pca_dims": fit.pca_dims,
        "C": fit.C,
        "max_iter": fit.max_iter,
        "tol": fit.tol,
        "solver": "lbfgs (multinomial)",
        "blas_threads": fit.blas_threads,
        "n_jobs": fit.n_jobs,
        "scaler": "StandardScaler (fit per fold)",
        "n_points": int(keep.sum()),
        "n_classes": n_classes - n_excluded,
        "n_excluded_classes": n_excluded,
        "chance": float(np.max(np.bincount(y)) / len(y)),
        "uncertainty": "std over folds (ddof=1)",
        "fraction": fraction,
    }


def linear_probe(
    features: Features,
    labels: Labels,
    *,
    n_splits: int = 5,
    seed: int = 0,
    pca_dims: int | None = None,
    C: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-4,
    n_jobs: int = 1,
    blas_threads: int | None = 1,
    fraction: float = DEFAULT_FRACTION,
) -> CriterionResult:
    """Stratified k-fold linear-probe accuracy per layer: StandardScaler [-> PCA] -> multinomial LBFGS.

    Classes with fewer than ``n_splits`` points are left out (counted in settings). ``pca_dims`` (e.g. 256)
    adds a per-fold PCA for speed; off by default because it can discard class signal spread thinly over
    many dimensions. Folds are seeded (``StratifiedKFold(shuffle=True, random_state=seed)``).
    ``blas_threads`` caps BLAS threads during the fits (None: no cap): the fits' matrix products are
    small, and on a busy 2-core machine multithreaded OpenBLAS ran them about 14x slower than one thread;
    ``n_jobs`` runs folds in parallel processes instead.
    """
    from sklearn.model_selection import StratifiedKFold

    t0 = time.perf_counter()
    x = _as_array(features)
    codes, classes = encode_labels(labels, x.shape[0])
    keep = _probe_points(codes, n_splits)
    y = codes[keep]
    fit = _ProbeFit(pca_dims, C, max_iter, tol, n_jobs, blas_threads)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    values = np.empty(x.shape[1])
    stds = np.empty(x.shape[1])
    per_fold, per_layer_s, unconverged = [], [], 0
    for layer in range(x.shape[1]):
        t = time.perf_counter()
        acc, n_unconverged = fit.fold_accuracy(_layer(x, layer, np.float64)[keep], y, folds)
        unconverged += n_unconverged
        values[layer], stds[layer] = acc.mean(), acc.std(ddof=1) if len(acc) > 1 else 0.0
        per_fold.append(acc.tolist())
        per_layer_s.append(time.perf_counter() - t)
    return CriterionResult(
        name="linear_probe",
        kind="curve",
        values=values,
        uncertainty=stds,
        settings=_probe_settings(fit, n_splits, seed, codes, keep, len(classes), fraction),
        higher_is_better=True,
        prune_rule="fraction_of_max",
        seconds=time.perf_counter() - t0,
        details={
            "fold_accuracy": per_fold,
            "layer_seconds": per_layer_s,
            "unconverged_fits": unconverged,
        },
    )


def knn_vote(neighbour_codes: np.ndarray) -> np.ndarray:
    """Majority label of each row of neighbour labels (N, k) sorted nearest first; ties go to the nearest."""
    nb = np.asarray(neighbour_codes)
    counts = (nb[:, :, None] == nb[:, None, :]).sum(axis=2)  # votes for the label at each position
    best = np.argmax(
        counts, axis=1
    )  # argmax picks the first, i.e. nearest, position among the ties
    return nb[np.arange(nb.shape[0]), best]


def knn_accuracy_from_graphs(
    graphs: Mapping[int, KnnGraph],
    labels: Labels,
    *,
    k: int | None = None,
    fraction: float = DEFAULT_FRACTION,
) -> CriterionResult:
    """Leave-one-out kNN accuracy per layer from precomputed graphs (layers 0..L, e.g. from convexity).

    ``k`` defaults to the graphs' neighbour count; a smaller k uses each row's k nearest (rows are sorted).
    A graph never lists a point as its own neighbour, so the vote is leave-one-out.
    """
    t0 = time.perf_counter()
    codes, _ = encode_labels(labels)
    k = _graphs_k(graphs, k)
    layers = sorted(graphs)
    if layers != list(range(len(layers))):
        raise ConvexityInputError(f"graphs must cover layers 0..L, got {layers}")
    values = np.empty(len(layers))
    for layer in layers:
        idx = _graph_indices(graphs[layer], k)
        if codes.shape[0] != idx.shape[0]:
            raise ConvexityInputError(
                f"labels have {codes.shape[0]} entries but the graphs have {idx.shape[0]} points"
            )
        values[layer] = float((knn_vote(codes[idx]) == codes).mean())
    return _accuracy_curve(
        "knn_accuracy",
        values,
        codes,
        fraction,
        t0,
        k=k,
        metric="euclidean (exact graph shared with convexity)",
        vote="majority, ties to the nearest tied neighbour's class",
    )


def _accuracy_curve(
    name: str,
    values: np.ndarray,
    codes: np.ndarray,
    fraction: float,
    started: float,
    **settings: Any,
) -> CriterionResult:
    """An accuracy per layer as a criterion: binomial standard errors, chance (the largest class's
    share), the fraction-of-max rule; ``settings`` first, then the counts."""
    n = codes.shape[0]
    return CriterionResult(
        name=name,
        kind="curve",
        values=values,
        uncertainty=np.sqrt(values * (1 - values) / n),
        settings={
            **settings,
            "n_points": n,
            "n_classes": int(codes.max()) + 1,
            "chance": float(np.max(np.bincount(codes)) / n),
            "uncertainty": "binomial standard error sqrt(p(1-p)/N)",
            "fraction": fraction,
        },
        higher_is_better=True,
        prune_rule="fraction_of_max",
        seconds=time.perf_counter() - started,
    )


def knn_accuracy(
    features: Features,
    labels: Labels,
    *,
    k: int = DEFAULT_K,
    graphs: Mapping[int, KnnGraph] | None = None,
    fraction: float = DEFAULT_FRACTION,
) -> CriterionResult:
    """Leave-one-out kNN accuracy per layer, building exact kNN graphs only for layers not in ``graphs``."""
    t0 = time.perf_counter()
    all_graphs = knn_graphs(features, k, graphs)
    result = knn_accuracy_from_graphs(all_graphs, labels, k=k, fraction=fraction)
    return _with_seconds(result, time.perf_counter() - t0)


def _class_means(x: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean feature vector of each class (C, D), summed in class order."""
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.add.reduceat(x[order], starts, axis=0) / counts[:, None]


def nearest_centroid_predictions(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Leave-one-out nearest-class-mean predictions of clips (N, D) with class codes 0..C-1 (each
    class present). A clip alone in its class cannot be given it (no mean is left without it)."""
    counts = np.bincount(codes)
    means = _class_means(x, codes, counts)
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ means.T + (means * means).sum(1)[None, :]
    own = counts[codes]
    rows = np.arange(x.shape[0])
    to_own = np.maximum(d2[rows, codes], 0.0) * (own / np.maximum(own - 1, 1)) ** 2
    d2[rows, codes] = np.where(own > 1, to_own, np.inf)
    return np.argmin(d2, axis=1)


def nearest_centroid(
    features: Features, labels: Labels, *, fraction: float = DEFAULT_FRACTION
) -> CriterionResult:
    """Leave-one-out nearest-class-mean accuracy per layer (Euclidean, float64)."""
    t0 = time.perf_counter()
    x = _as_array(features)
    codes, _ = encode_labels(labels, x.shape[0])
    values = np.array(
        [
            float((nearest_centroid_predictions(_layer(x, layer), codes) == codes).mean())
            for layer in range(x.shape[1])
        ]
    )
    return _accuracy_curve(
        "nearest_centroid",
        values,
        codes,
        fraction,
        t0,
        metric="euclidean",
        scheme="leave-one-out: each clip's own class mean taken without it",
        single_clip_classes=int((np.bincount(codes) == 1).sum()),
    )


def _with_seconds(result: CriterionResult, seconds: float) -> CriterionResult:
    """The same result with its wall time replaced (to include graph building)."""
    return CriterionResult(**{**vars(result), "seconds": seconds})


# ----------------------------------------------------------------------------------------------------
# Layer x layer similarity
# ----------------------------------------------------------------------------------------------------


def linear_cka(
    features: Features, *, threshold: float = 0.9, fraction: float = DEFAULT_FRACTION
) -> CriterionResult:
    """Linear CKA between every pair of layers, Gram-free: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), float64.

    Features are centred per layer; a constant layer has undefined CKA (NaN). Cost O(N D^2) per pair.
    """
    t0 = time.perf_counter()
    x = _as_array(features)
    n_layers = x.shape[1]

    def centred(layer: int) -> torch.Tensor:
        xl = torch.from_numpy(_layer(x, layer, np.float64))
        return xl - xl.mean(dim=0, keepdim=True)

    cross = np.zeros((n_layers, n_layers))
    for i in range(n_layers):
        xi = centred(i)
        for j in range(i, n_layers):
            xj = xi if j == i else centred(j)
            cross[i, j] = cross[j, i] = float(torch.linalg.matrix_norm(xi.T @ xj) ** 2)
    norms = np.sqrt(np.diag(cross))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = cross / np.outer(norms, norms)
    return CriterionResult(
        name="linear_cka",
        kind="matrix",
        values=values,
        uncertainty=None,
        settings={
            "form": "feature-space (Gram-free), centred, float64",
            "n_points": int(x.shape[0]),
            "threshold": threshold,
            "fraction": fraction,
            "uncertainty": "none",
        },
        higher_is_better=True,
        prune_rule="last_block",
        seconds=time.perf_counter() - t0,
    )


def mutual_knn_from_graphs(
    graphs: Mapping[int, KnnGraph],
    *,
    k: int | None = None,
    threshold: float = 0.5,
    fraction: float = DEFAULT_FRACTION,
) -> CriterionResult:
    """Mutual kNN alignment between layers: mean over points of |kNN_A(i) ∩ kNN_B(i)| / k, from graphs."""
    t0 = time.perf_counter()
    k = _graphs_k(graphs, k)
    layers = sorted(graphs)
    if layers != list(range(len(layers))):
        raise ConvexityInputError(f"graphs must cover layers 0..L, got {layers}")
    idx = [np.sort(_graph_indices(graphs[layer], k), axis=1) for layer in layers]
    n = idx[0].shape[0]
    values = np.eye(len(layers))
    sems = np.zeros((len(layers), len(layers)))
    for a in range(len(layers)):
        for b in range(a + 1, len(layers)):
            # neighbours within a row are distinct, so counting equal entries counts the intersection
            overlap = (idx[a][:, :, None] == idx[b][:, None, :]).sum(axis=(1, 2)) / k
            values[a, b] = values[b, a] = overlap.mean()
            sems[a, b] = sems[b, a] = overlap.std(ddof=1) / math.sqrt(n)
    return CriterionResult(
        name="mutual_knn",
        kind="matrix",
        values=values,
        uncertainty=sems,
        settings={
            "k": k,
            "metric": "euclidean (exact graphs shared with convexity)",
            "n_points": n,
            "threshold": threshold,
            "fraction": fraction,
            "uncertainty": "standard error over points",
        },
        higher_is_better=True,
        prune_rule="last_block",
        seconds=time.perf_counter() - t0,
    )


def mutual_knn(
    features: Features,
    *,
    k: int = DEFAULT_K,
    graphs: Mapping[int, KnnGraph] | None = None,
    threshold: float = 0.5,
    fraction: float = DEFAULT_FRACTION,
) -> CriterionResult:
    """Mutual kNN alignment between layers, building exact kNN graphs only for layers not in ``graphs``."""
    t0 = time.perf_counter()
    all_graphs = knn_graphs(features, k, graphs)
    result = mutual_knn_from_graphs(all_graphs, k=k, threshold=threshold, fraction=fraction)
    return _with_seconds(result, time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------------
# Layer-to-layer change (layer-dropping literature)
# ----------------------------------------------------------------------------------------------------


def _unit(features: np.ndarray, layer: int, rows: slice) -> np.ndarray:
    """Unit-norm float64 rows of one layer (zero vectors stay zero)."""
    xl = np.asarray(features[rows, layer, :], dtype=np.float64)
    norm = np.linalg.norm(xl, axis=1, keepdims=True)
    return np.divide(xl, norm, out=np.zeros_like(xl), where=norm > 0)


def _pair_angles(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row cosine and angle/pi of unit vectors, stable near 0: angle = 2 atan2(|u - v|, |u + v|)."""
    minus = np.linalg.norm(u - v, axis=1)
    plus = np.linalg.norm(u + v, axis=1)
    return 1.0 - 0.5 * minus**2, 2.0 * np.arctan2(minus, plus) / math.pi


def _chunks(n: int, d: int, n_layers: int) -> list[slice]:
    """Row slices keeping all layers' unit vectors of a chunk near 256 MB."""
    rows = max(1, (256 << 20) // max(1, 8 * d * n_layers))
    return [slice(s, min(n, s + rows)) for s in range(0, n, rows)]


def consecutive_cosine(features: Features) -> tuple[np.ndarray, np.ndarray]:
    """Mean over clips of cos(h_{l-1}, h_l) for l = 1..L and its standard error (entry 0 is NaN)."""
    x = _as_array(features)
    n, n_layers, d = x.shape
    total, total_sq = np.zeros(n_layers), np.zeros(n_layers)
    for rows in _chunks(n, d, 2):
        prev = _unit(x, 0, rows)
        for layer in range(1, n_layers):
            cur = _unit(x, layer, rows)
            cos, _ = _pair_angles(prev, cur)
            total[layer] += cos.sum()
            total_sq[layer] += (cos**2).sum()
            prev = cur
    mean = total / n
    sem = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0) * n / max(1, n - 1) / n)
    mean[0] = sem[0] = np.nan
    return mean, sem


def block_influence(features: Features, *, fraction: float = DEFAULT_FRACTION) -> CriterionResult:
    """ShortGPT block influence BI_l = 1 - mean_clips cos(h_{l-1}, h_l) per layer l >= 1 (BI_0 = NaN)."""
    t0 = time.perf_counter()
    x = _as_array(features)
    cos, sem = consecutive_cosine(x)
    return CriterionResult(
        name="block_influence",
        kind="curve",
        values=1.0 - cos,
        uncertainty=sem,
        settings={
            "pooling": "per-clip pooled vectors (ShortGPT averages over tokens)",
            "n_points": int(x.shape[0]),
            "fraction": fraction,
            "uncertainty": "standard error over clips",
        },
        higher_is_better=True,
        prune_rule="cumulative_share",
        seconds=time.perf_counter() - t0,
        details={"mean_cosine": cos},
    )


def angular_distance(
    features: Features, *, n: int | None = None, fraction: float = DEFAULT_FRACTION
) -> CriterionResult:
    """Mean over clips of arccos(cos(h_i, h_j)) / pi for all layer pairs; ``n`` is the block size of the rule.

    ``n`` defaults to max(1, L // 4) (Gromov et al. sweep n; a quarter of the layers is a typical removable
    block). ``values[l, l + n]`` is their d(l, l+n).
    """
    t0 = time.perf_counter()
    x = _as_array(features)
    n_pts, n_layers, d = x.shape
    last = n_layers - 1
    n = max(1, last // 4) if n is None else int(n)
    if last >= 2 and not 1 <= n <= last - 1:
        raise ConvexityInputError(f"block size n must satisfy 1 <= n <= L-1 = {last - 1}, got {n}")
    total = np.zeros((n_layers, n_layers))
    total_sq = np.zeros((n_layers, n_layers))
    for rows in _chunks(n_pts, d, n_layers):
        units = [_unit(x, layer, rows) for layer in range(n_layers)]
        for i in range(n_layers):
            for j in range(i + 1, n_layers):
                _, ang = _pair_angles(units[i], units[j])
                total[i, j] += ang.sum()
                total_sq[i, j] += (ang**2).sum()
    total, total_sq = total + total.T, total_sq + total_sq.T
    mean = total / n_pts
    var = np.maximum(total_sq / n_pts - mean**2, 0.0) * n_pts / max(1, n_pts - 1)
    return CriterionResult(
        name="angular_distance",
        kind="matrix",
        values=mean,
        uncertainty=np.sqrt(var / n_pts),
        settings={
            "n": n,
            "pooling": "per-clip pooled vectors (Gromov et al. average over tokens)",
            "n_points": int(n_pts),
            "fraction": fraction,
            "uncertainty": "standard error over clips",
        },
        higher_is_better=False,
        prune_rule="gromov_block",
        seconds=time.perf_counter() - t0,
    )


def angular_distance_curve(result: CriterionResult, n: int | None = None) -> np.ndarray:
    """d(l, l+n) for l = 0..L from an ``angular_distance`` result (NaN where l + n > L)."""
    n = int(result.settings["n"] if n is None else n)
    m = result.values
    out = np.full(m.shape[0], np.nan)
    for layer in range(m.shape[0] - n):
        out[layer] = m[layer, layer + n]
    return out


# ----------------------------------------------------------------------------------------------------
# Convexity as a criterion, registry, comparison table
# ----------------------------------------------------------------------------------------------------


def from_convexity_curve(
    curve: Any, name: str = "convexity", fraction: float = DEFAULT_FRACTION
) -> CriterionResult:
    """A ``ConvexityCurve`` (over all layers 0..L) or a plain score array as a ``CriterionResult``."""
    if hasattr(curve, "scores"):
        layers = list(curve.layers)
        if layers != list(range(len(layers))):
            raise ConvexityInputError(f"convexity curve must cover layers 0..L, got {layers}")
        values, sems = np.asarray(curve.scores, float), np.asarray(curve.sems, float)
        settings = dict(curve.results[0].settings) if curve.results else {}
    else:
        values, sems, settings = np.asarray(curve, dtype=np.float64), None, {}
    settings = {
        **settings,
        "fraction": fraction,
        "uncertainty": "convexity estimator standard error",
    }
    return CriterionResult(
        name=name,
        kind="curve",
        values=values,
        uncertainty=sems,
        settings=settings,
        higher_is_better=True,
        prune_rule="fraction_of_max",
    )


@dataclass(frozen=True)
class CriterionSpec:
    """Registry entry: how to compute a criterion and what it needs."""

    compute: Callable[..., CriterionResult]
    description: str
    needs_labels: bool
    uses_graphs: bool


CRITERIA: dict[str, CriterionSpec] = {
    "linear_probe": CriterionSpec(
        linear_probe, "linear-probe accuracy (stratified k-fold logistic regression)", True, False
    ),
    "knn_accuracy": CriterionSpec(
        knn_accuracy, "leave-one-out kNN accuracy on the convexity kNN graphs", True, True
    ),
    "nearest_centroid": CriterionSpec(
        nearest_centroid, "leave-one-out nearest-class-mean accuracy (Euclidean)", True, False
    ),
    "linear_cka": CriterionSpec(linear_cka, "linear CKA layer x layer", False, False),
    "mutual_knn": CriterionSpec(
        mutual_knn, "mutual kNN alignment layer x layer (same kNN graphs)", False, True
    ),
    "block_influence": CriterionSpec(
        block_influence, "ShortGPT block influence 1 - cos(h_{l-1}, h_l)", False, False
    ),
    "angular_distance": CriterionSpec(
        angular_distance,
        "Gromov et al. angular distance arccos(cos)/pi, layer x layer",
        False,
        False,
    ),
}


def run_criteria(
    features: Features,
    labels: Labels | None = None,
    *,
    names: Sequence[str] | None = None,
    graphs: Mapping[int, KnnGraph] | None = None,
    k: int = DEFAULT_K,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, CriterionResult]:
    """Compute the named criteria (default all; label-free ones only when ``labels`` is None).

    kNN graphs are built once (only for layers missing from ``graphs``) and shared by the graph criteria;
    ``options`` maps criterion name -> keyword arguments.
    """
    chosen = (
        list(names)
        if names is not None
        else [
            name for name, spec in CRITERIA.items() if labels is not None or not spec.needs_labels
        ]
    )
    unknown = [name for name in chosen if name not in CRITERIA]
    if unknown:
        raise ConvexityInputError(f"unknown criteria {unknown}; known: {list(CRITERIA)}")
    shared: dict[int, KnnGraph] | None = None
    out: dict[str, CriterionResult] = {}
    for name in chosen:
        spec = CRITERIA[name]
        kwargs = dict((options or {}).get(name, {}))
        args: list[Any] = [features]
        if spec.needs_labels:
            if labels is None:
                raise ConvexityInputError(f"criterion {name!r} needs labels")
            args.append(labels)
        t0 = time.perf_counter()
        if spec.uses_graphs:
            if shared is None:
                shared = knn_graphs(features, k, graphs)
            kwargs.setdefault("k", k)
            kwargs["graphs"] = shared
        result = spec.compute(*args, **kwargs)
        out[name] = _with_seconds(result, time.perf_counter() - t0)
    return out


def compare_prune_points(
    results: Mapping[str, CriterionResult],
    convexity_curve: Any = None,
    fraction: float = DEFAULT_FRACTION,
) -> list[dict[str, Any]]:
    """Table rows (criterion, layer, rule, kind) of each criterion's proposed prune point, convexity first.

    ``convexity_curve`` may be a ``ConvexityCurve``, a mapping name -> curve (one row each, named
    ``convexity[name]``) or a score array. ``fraction`` applies to the fraction-based rules; thresholds and
    block sizes come from each result's settings.
    """
    items: list[tuple[str, CriterionResult]] = []
    if convexity_curve is not None:
        if isinstance(convexity_curve, Mapping):
            items += [
                (f"convexity[{key}]", from_convexity_curve(c, f"convexity[{key}]"))
                for key, c in convexity_curve.items()
            ]
        else:
            items.append(("convexity", from_convexity_curve(convexity_curve)))
    items += list(results.items())
    rows = []
    for name, res in items:
        layer = res.proposed_prune_point(fraction=fraction)
        params = {
            key: res.settings.get(key)
            for key in ("threshold", "n")
            if res.settings.get(key) is not None
        }
        if res.prune_rule in ("fraction_of_max", "cumulative_share"):
            params = {"fraction": fraction}
        rows.append(
            {
                "criterion": name,
                "layer": layer,
                "rule": res.rule_text,
                "parameters": params,
                "kind": res.kind,
            }
        )
    return rows
