"""Checkpoint series: the convexity of one clip selection under an ordered list of models, and an aligned
UMAP of one hidden state across them.

A checkpoint is a preset key, a hub id, a model folder, or ``name=<any of these>`` to name it; a run's
checkpoints come from :func:`run_checkpoints` (its pretrained model, then every epoch it kept, else its
best and last checkpoints). Each checkpoint's features go through the feature cache and its curves
through the results store (kind ``"convexity"``), so a series made again with one more checkpoint
computes only that one. The series itself is a ``"series"`` entry keyed by its checkpoints' feature
keys and names, the label sets and the precision; the aligned layout an ``"aligned-umap"`` entry keyed by
the series and the UMAP settings (:mod:`core.geometry.aligned`: each checkpoint's layout starts from and
is fitted onto the previous one, so a slider across checkpoints shows clips move).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data.features import FeatureSet, Selection, extract_features
from core.errors import ResultError
from core.geometry.curves import LayerCurve
from core.geometry.options import DEFAULT_UMAP, UmapOptions
from core.io.run_folder import RunFolder
from core.models.loading import resolve_model
from core.models.request import ModelRequest
from core.results.kinds import aligned_umap as aligned_kind
from core.results.kinds import series as series_kind
from core.results.kinds.aligned_umap import aligned_request
from core.results.kinds.convexity import stored_convexity
from core.results.precision import Precision
from core.results.provenance import provenance_from_meta
from core.results.series_data import Checkpoint, CheckpointSeries
from core.results.store import (
    StoredResult,
    get_or_compute,
    list_results,
    load_result,
    result_key,
)

__all__ = [
    "ALIGNED_KIND",
    "SERIES_KIND",
    "CheckpointRef",
    "aligned_umap",
    "load_series",
    "make_series",
    "parse_checkpoint",
    "run_checkpoints",
    "aligned_request",
    "stored_aligned_umap",
    "stored_series",
]

SERIES_KIND = series_kind.KIND
ALIGNED_KIND = aligned_kind.KIND
LABEL_SETS = ("word", "speaker")
MAX_CHECKPOINTS = 64
NAME = re.compile(r"^[\w .:+()/-]{1,80}$")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint before it is measured: its display name and the model to load."""

    name: str
    model: str


def parse_checkpoint(text: str) -> CheckpointRef:
    """``name=model`` or ``model`` (named by its last path part) as a :class:`CheckpointRef`."""
    name, sep, model = text.partition("=")
    if not sep:
        name, model = Path(text.rstrip("/")).name or text, text
    name, model = name.strip(), model.strip()
    if not model or not NAME.match(name):
        raise ResultError(
            f"checkpoint {text!r}: give a model (preset key, hub id or folder), optionally as "
            "name=model with a name of letters, digits and ' .:+()/-'"
        )
    return CheckpointRef(name, model)


def run_checkpoints(run: str | Path) -> list[CheckpointRef]:
    """A fine-tuning run's checkpoints in training order: the pretrained model, every kept epoch, else
    the best and last checkpoints."""
    folder = RunFolder(Path(run))
    spec = folder.read_spec()
    if spec is None or spec.kind != "finetune" or not spec.config.get("model"):
        raise ResultError(
            f"{folder.name} is not a fine-tuning run (a series needs one's checkpoints)"
        )
    refs = [CheckpointRef("pretrained", str(spec.config["model"]))]
    epochs = folder.saved_epochs()
    if epochs:
        refs += [CheckpointRef(f"epoch {e}", str(path)) for e, path in epochs.items()]
    else:
        refs += [CheckpointRef(name, str(path)) for name, path in folder.saved_models().items()]
    if len(refs) < 2:
        raise ResultError(f"run {folder.name} has no saved checkpoint yet")
    return refs


def _checked_refs(refs: Sequence[CheckpointRef]) -> list[CheckpointRef]:
    """``refs`` if they make a series: 2..MAX_CHECKPOINTS checkpoints with distinct names."""
    refs = list(refs)
    if not 2 <= len(refs) <= MAX_CHECKPOINTS:
        raise ResultError(f"a series needs 2 to {MAX_CHECKPOINTS} checkpoints, got {len(refs)}")
    names = [r.name for r in refs]
    if len(set(names)) != len(names):
        raise ResultError(f"checkpoint names must differ, got {', '.join(names)}")
    return refs


def _series_meta(sets: Sequence[FeatureSet], names: Sequence[str]) -> dict[str, Any]:
    """A feature-set-like meta for the series' provenance: the clips of the first, every model's identity."""
    first = dict(sets[0].meta)
    digest = hashlib.sha256(
        json.dumps([[n, fs.key] for n, fs in zip(names, sets, strict=True)]).encode()
    ).hexdigest()
    return {
        **first,
        "key": f"series:{digest}",
        "model_id": "series: " + ", ".join(names),
        "weights": " | ".join(str(fs.meta.get("weights") or "?") for fs in sets),
        "n_layers": max(fs.n_layers for fs in sets),
    }


def _same_clips(sets: Sequence[FeatureSet], refs: Sequence[CheckpointRef]) -> None:
    """Refuse a series whose checkpoints saw different clips (a clip that failed to load under one)."""
    for fs, ref in zip(sets[1:], refs[1:], strict=True):
        if fs.paths != sets[0].paths:
            raise ResultError(
                f"checkpoint {ref.name} measured other clips than {refs[0].name}: a series compares "
                "the same clips"
            )


def make_series(
    refs: Sequence[CheckpointRef],
    selection: Selection,
    precision: Precision,
    *,
    batch_size: int = 32,
    device: Any = None,
    whisper_input: str = "trimmed",
    trust_remote_code: bool = False,
    progress: Progress | None = None,
    refresh: bool = False,
) -> tuple[str, CheckpointSeries]:
    """(store key, series): word and speaker convexity of ``selection`` under every checkpoint, in order.

    ``progress(done, total)`` counts checkpoints measured (features from the cache, curves from the store
    when there; ``refresh`` recomputes the curves and the series)."""
    refs = _checked_refs(refs)
    for ref in refs:  # an unknown checkpoint is refused before any is measured
        resolve_model(ref.model, trust_remote_code=trust_remote_code)
    sets, curves = [], []
    for done, ref in enumerate(refs, start=1):
        model_request = ModelRequest(ref.model, whisper_input, trust_remote_code)
        fs = extract_features(model_request, selection, batch_size=batch_size, device=device)
        labels = {name: fs.labels(name) for name in LABEL_SETS}
        got = stored_convexity(fs, labels, precision.options(device=device), refresh=refresh)
        sets.append(fs)
        curves.append({name: LayerCurve.of(c) for name, c in got.items()})
        if progress is not None:
            progress(done, len(refs))
    _same_clips(sets, refs)
    series = CheckpointSeries(
        checkpoints=tuple(
            Checkpoint(
                r.name, r.model, str(fs.key), str(fs.meta.get("weights") or "?"), fs.n_layers
            )
            for r, fs in zip(refs, sets, strict=True)
        ),
        label_sets=LABEL_SETS,
        curves={name: tuple(c[name] for c in curves) for name in LABEL_SETS},
        precision=precision.label,
    )
    meta = _series_meta(sets, [r.name for r in refs])
    request = series_kind.series_request(
        [(r.name, str(fs.key)) for r, fs in zip(refs, sets, strict=True)],
        LABEL_SETS,
        precision.key_part(),
    )
    key = result_key(meta["key"], SERIES_KIND, request)

    def build() -> StoredResult:
        done = series_kind.encode_series(series, precision.key_part())
        prov = provenance_from_meta(
            meta,
            kind=SERIES_KIND,
            label_sets=list(LABEL_SETS),
            settings=done.settings,
            extra={"checkpoints": [r.name for r in refs]},
        )
        return StoredResult(key, SERIES_KIND, request, prov, done.data)

    get_or_compute(key, build, refresh=refresh)
    return key, series


def load_series(key: str) -> tuple[CheckpointSeries, StoredResult] | None:
    """The stored series ``key`` (None when missing or malformed)."""
    entry = load_result(key)
    if entry is None or entry.kind != SERIES_KIND:
        return None
    return CheckpointSeries.from_dict(entry.data), entry


def stored_series() -> list[StoredResult]:
    """Every stored series entry, newest first (each validated like any stored entry)."""
    return [e for e in (load_result(i.key) for i in list_results(SERIES_KIND)) if e is not None]


def aligned_umap(
    series_key: str,
    layer: int,
    options: UmapOptions = DEFAULT_UMAP,
    *,
    progress: Progress | None = None,
    refresh: bool = False,
) -> np.ndarray:
    """(checkpoints, N, 2) aligned UMAP layouts of hidden state ``layer`` under each checkpoint of a
    stored series (every checkpoint must have that hidden state), from the store when there;
    ``progress(done, total)`` counts checkpoints laid out."""
    from core.data.features import load_cached_features

    found = load_series(series_key)
    if found is None:
        raise ResultError(f"no stored series {series_key[:12]}")
    series, entry = found
    common = min(c.n_layers for c in series.checkpoints)
    if not 0 <= layer <= common:
        raise ResultError(f"hidden state {layer} is not in every checkpoint: choose 0..{common}")
    request = aligned_request(series_key, layer, options)
    key = result_key(entry.provenance.feature_key, ALIGNED_KIND, request)

    def build() -> StoredResult:
        feats = [
            np.asarray(load_cached_features(c.feature_key).features[:, layer, :], dtype=np.float32)
            for c in series.checkpoints
        ]
        done = aligned_kind.compute_aligned(feats, options, progress)
        prov = provenance_from_meta(
            _provenance_meta(entry),
            kind=ALIGNED_KIND,
            label_sets=list(series.label_sets),
            settings=done.settings,
            extra={"series": series_key, "layer": int(layer)},
        )
        return StoredResult(key, ALIGNED_KIND, request, prov, done.data, done.arrays)

    stored, _ = get_or_compute(key, build, refresh=refresh)
    return np.asarray(stored.arrays["layout"])


def stored_aligned_umap(series_key: str, layer: int) -> np.ndarray | None:
    """The stored default aligned layout of ``layer`` for a series, or None (nothing is computed)."""
    entry = load_series(series_key)
    if entry is None:
        return None
    key = result_key(
        entry[1].provenance.feature_key, ALIGNED_KIND, aligned_request(series_key, layer)
    )
    found = load_result(key)
    return None if found is None else np.asarray(found.arrays["layout"])


def _provenance_meta(entry: StoredResult) -> dict[str, Any]:
    """A meta dict that rebuilds ``entry``'s provenance fields (for results derived from it)."""
    p = entry.provenance
    return {
        "key": p.feature_key,
        "model_id": p.model_id,
        "weights": p.weights,
        "dataset": p.dataset,
        "selection": p.selection,
        "dataset_fingerprint": p.dataset_fingerprint,
        "n_clips": p.n_clips,
        "n_layers": p.n_layers,
        "model_key": p.model_key,
        "input_mode": p.input_mode,
    }
