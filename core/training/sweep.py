"""Prune sweep: fine-tune one model on one task at several prune points and record accuracy and cost.

Suggestion rule (:func:`suggest_prune_point`): on the *pretrained* convexity curve of the task's labels
(word labels for ``words``, speaker labels for ``speakers``; hidden-state index 0..L), take the maximum
over layers 1..L and suggest the first layer ``p >= 1`` whose score reaches ``fraction`` (default 0.95)
of it: the point where convexity stops rising, as the paper chose p = 8 (words) and p = 2 (speakers)
for base models. Layer 0 (before any transformer layer) is never suggested. The curve is computed on
``convexity_split`` (default ``train``: no held-out label is used to choose the model). For Whisper the
last state includes the encoder's final LayerNorm, which can lift the last point.

A sweep run folder holds ``pretrained_convexity.json``, one sub-folder ``p<k>/`` per prune point (a
complete fine-tune run folder each, so a resumed sweep skips finished points and resumes the one in
progress from its epoch checkpoint), ``benchmark_p<k>.json/.csv`` and ``results.json``/``results.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.geometry.prune_point import suggest_prune_point
from core.io.atomic import atomic_write_bytes, atomic_write_json
from core.training.finetune import Cancelled, FinetuneConfig, finetune

__all__ = ["SweepConfig", "pretrained_convexity", "run_sweep", "suggest_prune_point"]

log = logging.getLogger("core.training.sweep")


@dataclass
class SweepConfig(FinetuneConfig):
    """A fine-tune config plus the prune points (ints, ``"suggested"``, ``"full"``) and the rule's fraction."""

    points: list[Any] = field(default_factory=lambda: ["full", "suggested"])
    fraction: float = 0.95
    convexity_split: str = "train"
    convexity_max_clips: int | None = None
    benchmark: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepConfig:
        """Build from a JSON dict, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def pretrained_convexity(cfg: SweepConfig) -> dict[str, Any]:
    """Word and speaker convexity curves of the pretrained model on ``cfg.convexity_split``."""
    from core.data.features import Selection, extract_features
    from core.geometry.convexity import layerwise_convexity

    sel = Selection(
        dataset=cfg.dataset, root=cfg.root, task=cfg.task, split=cfg.convexity_split,
        max_clips=cfg.convexity_max_clips, seed=cfg.seed, min_clips=cfg.min_clips,
        split_seed=cfg.split_seed,
    )  # fmt: skip
    feats = extract_features(cfg.model, sel, whisper_input=cfg.whisper_input, device=cfg.device)
    curves = layerwise_convexity(
        feats.features, {"word": feats.words, "speaker": feats.speakers},
        max_pairs_per_class=cfg.convexity_max_pairs, seed=cfg.seed,
    )  # fmt: skip
    return {
        "split": cfg.convexity_split,
        "n_clips": int(feats.features.shape[0]),
        "n_layers": feats.n_layers,
        "curves": {
            n: {"scores": c.scores.tolist(), "sems": c.sems.tolist()} for n, c in curves.items()
        },
    }


def _resolve_points(points: Sequence[Any], suggested: int, n_layers: int) -> list[int]:
    """Turn "full"/"suggested"/ints into a sorted list of distinct prune points in 1..L."""
    out = set()
    for p in points:
        if p in ("full", None):
            out.add(n_layers)
        elif p in ("suggested", "suggest"):
            out.add(suggested)
        else:
            q = int(p)
            if not 1 <= q <= n_layers:
                raise ValueError(f"prune point {q} outside 1..{n_layers}")
            out.add(q)
    return sorted(out, reverse=True)


def run_sweep(
    cfg: SweepConfig,
    run_dir: str | os.PathLike,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Pretrained convexity -> suggested point -> fine-tune (and benchmark) each point; returns the table."""
    run = Path(run_dir)
    stop = should_stop or (lambda: False)
    pre_path = run / "pretrained_convexity.json"
    if pre_path.exists():
        import json

        pre = json.loads(pre_path.read_text())
    else:
        log.info("pretrained convexity on the %s split", cfg.convexity_split)
        pre = pretrained_convexity(cfg)
        atomic_write_json(pre_path, pre)
    relevant = "word" if cfg.task == "words" else "speaker"
    n_layers = int(pre["n_layers"])
    suggested = suggest_prune_point(pre["curves"][relevant]["scores"], cfg.fraction)
    points = _resolve_points(cfg.points, suggested, n_layers)
    log.info(
        "suggested prune point %d (fraction %.2f); sweeping %s", suggested, cfg.fraction, points
    )

    rows = []
    for p in points:
        if stop():
            raise Cancelled("cancelled")
        sub = run / f"p{p}"
        result_path = sub / "result.json"
        sub_cfg = FinetuneConfig.from_dict({**cfg.to_dict(), "prune_point": p})
        if result_path.exists():
            import json

            res = json.loads(result_path.read_text())
        else:
            sub.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                sub / "config.json", {"kind": "finetune", "config": sub_cfg.to_dict()}
            )

            def progress(row: dict[str, Any], p: int = p) -> None:
                if on_progress is not None:
                    on_progress({**row, "prune_point": p})

            res = finetune(sub_cfg, sub, should_stop=stop, on_progress=progress)
        bench = None
        if cfg.benchmark:
            bpath = run / f"benchmark_p{p}.json"
            if bpath.exists():
                import json

                bench = json.loads(bpath.read_text())
            else:
                from core.training.benchmark import benchmark, save_benchmark

                bench = benchmark(
                    cfg.model, p, n_labels=len(res["labels"]), train_batch=cfg.batch_size,
                    n_train_clips=res["n_train"], device=cfg.device, bf16=cfg.bf16,
                    whisper_input=cfg.whisper_input,
                )  # fmt: skip
                jpath, cpath = save_benchmark(bench, run)
                os.replace(jpath, bpath)
                os.replace(cpath, run / f"benchmark_p{p}.csv")
                bench = bench.to_dict()
        by = {r["metric"]: r for r in bench["rows"]} if bench else {}
        conv = res.get("convexity", {})
        row = {
            "prune_point": p,
            "suggested": p == suggested,
            "accuracy": res["best_accuracy"],
            "test_accuracy": res.get("test_accuracy"),
            "best_epoch": res["best_epoch"],
            "params_total": res["params"]["total"],
            "params_trainable": res["params"]["trainable"],
            "train_seconds": res["train_seconds"],
            "epoch_seconds_median": res["epoch_seconds_median"],
            "train_step_seconds": by.get("train_step_seconds", {}).get("pruned"),
            "inference_latency_b1_seconds": by.get("inference_latency_b1_seconds", {}).get(
                "pruned"
            ),
            "pretrained_relevant_convexity": pre["curves"][relevant]["scores"][p],
            "finetuned_word_convexity_last": (conv.get("finetuned", {}).get("word") or [math.nan])[
                -1
            ],
            "finetuned_speaker_convexity_last": (
                conv.get("finetuned", {}).get("speaker") or [math.nan]
            )[-1],
        }
        rows.append(row)
        atomic_write_json(run / "results.json", {"suggested": suggested, "rows": rows})
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_bytes(run / "results.csv", buf.getvalue().encode())
    result = {
        "model": cfg.model,
        "task": cfg.task,
        "suggested": suggested,
        "fraction": cfg.fraction,
        "points": points,
        "rows": rows,
        "pretrained_convexity": pre["curves"],
    }
    atomic_write_json(run / "results.json", result)
    return result
