"""Fine-tuned vs pretrained convexity curves of fine-tuning runs, copied into the results store.

A finished fine-tune's folder (:class:`core.io.run_folder.RunFolder`) holds its pretrained and
fine-tuned curves on its evaluation split and its settings; this reads those only (no import from the
training layer above) and stores them as a ``finetune-convexity`` entry keyed by the run id, so the Compare page
and bundles treat them like any other result.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.io.paths import cache_dir
from core.io.run_folder import RunFolder
from core.results.kinds.run_curves import KIND, encode_run_curves, run_curves_request
from core.results.provenance import provenance_from_meta
from core.results.store import StoredResult, get_or_compute, result_key


def store_run_curves(run: str | os.PathLike) -> str | None:
    """Store a finished run's pretrained/fine-tuned curves; returns the entry key (None if it has none)."""
    folder = RunFolder(Path(run))
    conv, spec = folder.read_json(RunFolder.CONVEXITY), folder.read_spec()
    if not isinstance(conv, dict) or not conv.get("finetuned") or spec is None:
        return None
    run, cfg = folder.path, spec.config
    meta = {
        "key": f"run:{run.name}",
        "model_key": cfg.get("model", "?"),
        "model_id": cfg.get("model", "?"),
        "weights": f"fine-tuned run {run.name}",
        "dataset": cfg.get("dataset", "?"),
        "selection": {"task": cfg.get("task"), "split": conv.get("split")},
        "dataset_fingerprint": "-",
        "n_clips": conv.get("n_clips", 0),
        "n_layers": len(next(iter(conv["finetuned"].values()))["scores"]) - 1,
    }
    request = run_curves_request(run.name, conv.get("split"))
    key = result_key(meta["key"], KIND, request)

    def build() -> StoredResult:
        done = encode_run_curves(conv, cfg)
        prov = provenance_from_meta(
            meta,
            kind=KIND,
            label_sets=sorted(conv["finetuned"]),
            settings=done.settings,
            extra={"run": run.name},
        )
        return StoredResult(key, KIND, request, prov, done.data)

    get_or_compute(key, build)
    return key


def store_all_run_curves(root: str | os.PathLike | None = None) -> list[str]:
    """``store_run_curves`` for every run folder under ``root`` (default ``cache_dir()/runs``)."""
    base = Path(root) if root is not None else cache_dir() / "runs"
    keys = []
    for run in sorted(base.iterdir()) if base.is_dir() else []:
        if run.is_dir() and (key := store_run_curves(run)) is not None:
            keys.append(key)
    return keys
