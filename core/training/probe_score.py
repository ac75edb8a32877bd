"""Accuracy without retraining: a pruning plan's frozen encoder scored by probes fitted on its pooled output.

For a plan, the pruned encoder's output (its last hidden state, mean-pooled over valid frames, as
``core.data.features`` pools) is scored by each probe of :data:`PROBES` (a standardised multinomial
logistic regression and a k-nearest-neighbour vote), fitted on the train split and evaluated on the
test split of the selection's clips. Nothing is fine-tuned, so a plan is scored in seconds and beside
the full model under the same probes.

Where the features come from:

- A top-p plan (keep 1..p) of a model *without* a final LayerNorm: the pruned model's output is exactly
  hidden state p of the full model, so the full model's cached features are reused (column p).
- A top-p plan of a model *with* a final LayerNorm (Whisper, stable-layer-norm variants), p < L: the
  pruned model applies the LayerNorm to layer p's frames before pooling, which the pooled cache cannot
  reproduce (a LayerNorm does not commute with the mean), so the pruned encoder runs over the clips.
- Any other plan: the pruned encoder runs over the clips once; its features are cached like any feature
  set, under a key that adds the plan's kept layers to the model identity (so "drop 3-4" and "keep
  1-10" never share an entry).

The interval: a percentile bootstrap interval of the test accuracy over test clips resampled with
replacement (the fitted probe held fixed), so it covers the variation due to which test clips were drawn,
not the variation of refitting the probe on another train set.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.data.datasets import ClipTable
from core.data.features import (
    CacheEntry,
    FeatureSet,
    Selection,
    commit_entry,
    compute_rows,
    encoder_facts,
    entry_lock,
    entry_part,
    feature_key,
    key_identity,
    plan_entry,
    read_valid_entry,
)
from core.errors import TrainingError
from core.geometry.options import DEFAULT_K
from core.io.records import Record
from core.models.encoder import SpeechEncoder
from core.models.plans import PruningPlan
from core.models.pruning import apply_plan, params_by_plan
from core.results.kinds.plans import INTERVAL, PlanScore, ProbeScore

__all__ = [
    "INTERVAL",
    "PROBES",
    "PlanScore",
    "ProbeOptions",
    "ProbeScore",
    "ProbeSpec",
    "plan_features",
    "probe_scores",
    "score_plan",
    "selection_entry",
    "split_rows",
]


@dataclass(frozen=True)
class ProbeOptions(Record):
    """How plans are scored: the labels, the kNN's k, the bootstrap and the seed."""

    labels: str = "word"
    k: int = DEFAULT_K
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    max_iter: int = 1000

    def __post_init__(self) -> None:
        if self.labels not in ("word", "speaker"):
            raise TrainingError(f"labels must be 'word' or 'speaker', got {self.labels!r}")
        if not 0 < self.confidence < 1:
            raise TrainingError(f"confidence must lie in (0, 1), got {self.confidence}")
        if self.resamples < 1 or self.k < 1:
            raise TrainingError("resamples and k must be at least 1")

    @property
    def task(self) -> str:
        """The dataset task whose splits are used ("words" or "speakers")."""
        return "words" if self.labels == "word" else "speakers"


@dataclass(frozen=True)
class ProbeSpec:
    """One probe: its name, what it is, and how to build an unfitted estimator for the options."""

    name: str
    describe: str
    build: Callable[[ProbeOptions], Any]


PROBES: dict[str, ProbeSpec] = {
    "logistic": ProbeSpec(
        "logistic",
        "standardised features, multinomial logistic regression (L2, C=1)",
        lambda o: make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=o.max_iter, random_state=o.seed)
        ),
    ),
    "knn": ProbeSpec(
        "knn",
        "k-nearest-neighbour majority vote, Euclidean",
        lambda o: KNeighborsClassifier(n_neighbors=o.k),
    ),
}


@dataclass(frozen=True)
class SplitRows:
    """Row indices of a feature set's train and test clips, and every row's label."""

    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray


def split_rows(features: FeatureSet, table: ClipTable, options: ProbeOptions) -> SplitRows:
    """Which rows of ``features`` are train and test clips of ``options``'s task (by clip path)."""
    split_of = dict(zip(table.paths, table.splits(options.task), strict=True))
    splits = np.array([split_of.get(p, "") for p in features.paths])
    labels = np.asarray(features.labels(options.labels))
    train, test = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "test")
    if len(train) == 0 or len(test) == 0 or len(set(labels[train].tolist())) < 2:
        raise TrainingError(
            f"probe scores need train and test clips of at least two {options.labels} labels; "
            f"this selection has {len(train)} train and {len(test)} test clips"
        )
    if options.k > len(train):
        raise TrainingError(f"the kNN probe's k={options.k} exceeds the {len(train)} train clips")
    return SplitRows(train, test, labels)


def probe_scores(x: np.ndarray, rows: SplitRows, options: ProbeOptions) -> tuple[ProbeScore, ...]:
    """Every probe of :data:`PROBES` fitted on the train rows of ``x`` (N, D), scored on the test rows."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(options.seed)
    n_test = len(rows.test)
    draws = rng.integers(0, n_test, size=(options.resamples, n_test))
    alpha = (1.0 - options.confidence) / 2
    out = []
    for spec in PROBES.values():
        model = spec.build(options).fit(x[rows.train], rows.labels[rows.train])
        correct = (model.predict(x[rows.test]) == rows.labels[rows.test]).astype(np.float64)
        boot = correct[draws].mean(axis=1)
        low, high = np.quantile(boot, [alpha, 1 - alpha])
        out.append(ProbeScore(spec.name, float(correct.mean()), float(low), float(high)))
    return tuple(out)


def pruned_encoder(full: SpeechEncoder, plan: PruningPlan) -> SpeechEncoder:
    """A pruned copy of ``full`` (the full encoder is left whole); it keeps the resolved model it came from."""
    pruned = copy.copy(full)
    pruned.model = apply_plan(copy.deepcopy(full.model), plan)
    return pruned


def plan_entry_for(
    encoder: SpeechEncoder,
    plan: PruningPlan,
    base: CacheEntry,
    variant: dict[str, Any] | None = None,
) -> CacheEntry:
    """The feature-cache entry of ``encoder`` (already pruned by ``plan``) over ``base``'s clips: a top plan
    keys exactly as extracting that pruned encoder would; any other plan adds its kept layers to the key,
    and ``variant`` (e.g. trained mimicking layers' weights) is added when given."""
    identity = key_identity(encoder)
    if identity is None:
        raise TrainingError("the model's weights are not identified; cannot cache its features")
    if not plan.is_top:
        identity = {**identity, "plan": list(plan.kept)}
    if variant:
        identity = {**identity, **variant}
    key = feature_key(identity, base.fingerprint, base.selection)
    return CacheEntry(key, identity, base.table, base.fingerprint, base.selection)


def plan_features(
    full: SpeechEncoder,
    plan: PruningPlan,
    base: CacheEntry,
    *,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    encoder: SpeechEncoder | None = None,
    variant: dict[str, Any] | None = None,
) -> FeatureSet:
    """The pruned encoder's features (N, size+1, D) over ``base``'s clips, from the cache when valid
    (``progress(done, total)`` counts clips while they run). ``encoder``: an already pruned model of
    ``plan`` to run instead (keyed apart by ``variant``)."""
    if encoder is None:
        encoder = pruned_encoder(full, plan)
    elif encoder.n_layers != plan.size or not variant:
        raise TrainingError("a given pruned encoder needs the plan's depth and a variant key")
    entry = plan_entry_for(encoder, plan, base, variant)
    found, _ = read_valid_entry(entry.directory, entry.key)
    if found is not None:
        return found
    with entry_lock(entry.key):
        found, _ = read_valid_entry(entry.directory, entry.key)  # another process may have finished
        if found is not None:
            return found
        with entry_part(entry.directory) as tmp:
            rows = compute_rows(encoder, entry.table, tmp, batch_size=batch_size, progress=progress)
            kept, skipped, stats = rows.kept, rows.skipped, rows.stats
            del rows  # the memmap is released before the entry is committed
        return commit_entry(entry, tmp, encoder_facts(encoder), kept, skipped, stats)


def reuses_cache(full: SpeechEncoder, plan: PruningPlan) -> bool:
    """Whether the plan's output is a column of the full model's pooled features (see the module docstring)."""
    return plan.is_top and (plan.is_full or not full.final_layer_norm)


def score_plan(
    full: SpeechEncoder,
    full_features: FeatureSet,
    base: CacheEntry,
    plan: PruningPlan,
    options: ProbeOptions,
    progress: Callable[[int, int], None] | None = None,
    *,
    encoder: SpeechEncoder | None = None,
    variant: dict[str, Any] | None = None,
) -> PlanScore:
    """The plan's probe scores on the clips of ``full_features`` (rows matched to the split by path);
    ``progress`` counts clips where the pruned encoder has to run. ``encoder`` / ``variant``: score
    that model of the plan (e.g. with trained mimicking layers) instead of the plain pruned one."""
    t0 = time.perf_counter()
    rows = split_rows(full_features, base.table, options)
    if encoder is None and reuses_cache(full, plan):
        x = np.asarray(full_features.features[:, plan.size, :])
        source = f"cached full-model features, hidden state {plan.size}"
    else:
        pruned = plan_features(
            full, plan, base, progress=progress, encoder=encoder, variant=variant
        )
        if list(pruned.paths) != list(full_features.paths):
            raise TrainingError(
                "the pruned encoder read a different set of clips than the full model"
            )
        x = np.asarray(pruned.features[:, plan.size, :])
        what = "pruned encoder" if encoder is None else "trained pruned encoder"
        source = f"{what} run over the clips" + (" (cached)" if pruned.from_cache else "")
    scores = probe_scores(x, rows, options)
    parameters = params_by_plan(full.model, plan)["total"]
    return PlanScore(
        plan=plan,
        parameters=int(parameters),
        features=source,
        scores=scores,
        n_train=len(rows.train),
        n_test=len(rows.test),
        seconds=time.perf_counter() - t0,
    )


def selection_entry(full: SpeechEncoder, selection: Selection) -> CacheEntry:
    """The full model's cache entry for ``selection`` (its clips, fingerprint and key)."""
    entry, _ = plan_entry(full, selection, None)
    return entry
