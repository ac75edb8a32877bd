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
progress from its epoch checkpoint), ``benchmark_p<k>.json/.csv`` and ``results.json``/``results.csv``
(:class:`SweepResult`, rewritten after every point). Each point is selected on ``eval_split`` and scored
on ``test_split`` (defaults validation/test, as for a single fine-tune); its fine-tuned and pretrained
convexity come from the same scored clips (``convexity_split`` of its row).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.data.datasets import label_set
from core.errors import Cancelled, TrainingError
from core.geometry.options import ConvexityOptions
from core.geometry.prune_point import suggest_prune_point
from core.io.atomic import atomic_write_bytes
from core.io.records import Record, from_dict
from core.io.run_folder import RunFolder, RunSpec, RunState, error_line, result_summary, stamp
from core.models.identity import ModelIdentity
from core.models.plans import PruningPlan, parse_plan
from core.training.configs import BenchmarkConfig, FinetuneConfig, SweepConfig, point_name
from core.training.finetune import finetune
from core.training.finetune_result import FinetuneResult
from core.training.model_convexity import LayerCurve
from core.training.pinning import check_pin, pinned_model

__all__ = [
    "SweepConfig",
    "SweepPoint",
    "SweepResult",
    "point_name",
    "point_plan",
    "pretrained_convexity",
    "point_config",
    "resolve_points",
    "run_sweep",
    "suggest_prune_point",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPoint(Record):
    """One prune point of a sweep: accuracy (selection and test split), cost and convexity (a results row).

    ``pretrained_relevant_convexity`` is the suggestion curve (``convexity_split`` of the sweep) at the
    point; the ``*_convexity_last`` figures are the last hidden state's, pretrained and fine-tuned on the
    same clips (``convexity_split`` of this row: the split the point was scored on).
    """

    prune_point: int
    suggested: bool
    accuracy: float  # best checkpoint on the selection split (eval_split)
    test_accuracy: float | None
    best_epoch: int
    params_total: int
    params_trainable: int
    train_seconds: float
    epoch_seconds_median: float | None
    train_step_seconds: float | None = None
    inference_latency_b1_seconds: float | None = None
    pretrained_relevant_convexity: float | None = math.nan  # None: a plan, on no hidden state
    finetuned_word_convexity_last: float = math.nan
    finetuned_speaker_convexity_last: float = math.nan
    pretrained_word_convexity_last: float = math.nan
    pretrained_speaker_convexity_last: float = math.nan
    convexity_split: str | None = None
    plan: str | None = None  # the layers kept when a plan named them ("drop 3-4"); None: top p

    @property
    def label(self) -> str:
        """The point in words: its plan (``"drop 3-4"``) or ``"p = 8"``."""
        return self.plan or f"p = {self.prune_point}"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (one ``results.csv`` row)."""
        return asdict(self)


@dataclass(frozen=True)
class SweepResult(Record):
    """A sweep's ``results.json``: the suggested point, one :class:`SweepPoint` per prune point, the curves."""

    model: str
    task: str
    suggested: int
    fraction: float
    points: tuple[int | str, ...]  # prune points, and plans in words ("drop 3-4")
    rows: tuple[SweepPoint, ...]
    pretrained_convexity: dict[str, LayerCurve]  # on the sweep's convexity_split (the suggestion)
    eval_split: str | None = None
    test_split: str | None = None
    convexity_split: str | None = None
    model_identity: ModelIdentity | None = None  # the weights of the curve and of every point

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        ident = {"model_identity": self.model_identity.to_dict()} if self.model_identity else {}
        return {
            **ident,
            "model": self.model,
            "task": self.task,
            "suggested": self.suggested,
            "fraction": self.fraction,
            "points": list(self.points),
            "rows": [r.to_dict() for r in self.rows],
            "pretrained_convexity": {k: c.to_dict() for k, c in self.pretrained_convexity.items()},
            "eval_split": self.eval_split,
            "test_split": self.test_split,
            "convexity_split": self.convexity_split,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SweepResult:
        """Inverse of :meth:`to_dict` (the shared record reader); older ``results.json`` files that
        lack a field read with its old default."""
        old = {"model": "", "task": "", "fraction": math.nan, "points": [], "rows": []}
        base = {**old, "pretrained_convexity": {}}
        return from_dict(cls, {**base, **data} if isinstance(data, dict) else data)


def pretrained_convexity(cfg: SweepConfig) -> dict[str, Any]:
    """Word and speaker convexity curves of the pretrained model on ``cfg.convexity_split``, with the
    identity of the weights they were computed on (``model_identity``; refused if not the pinned ones)."""
    from core.data.features import Selection, extract_features
    from core.geometry.convexity import layerwise_convexity

    sel = Selection(
        cfg.data.source,
        task=cfg.data.task,
        split=cfg.convexity_split,
        max_clips=cfg.convexity_max_clips,
        seed=cfg.optimiser.seed,
    )
    resolved = pinned_model(cfg.request, cfg.model_identity, f"sweep of {cfg.model}")
    feats = extract_features(resolved, sel, device=cfg.optimiser.device)
    identity = resolved.identity
    if not identity.known:  # a hub model fetched just now: the features name its weights
        m = feats.meta
        identity = ModelIdentity(
            m["model_key"], m["model_id"], m["source"], m["family"], m.get("weights")
        )
    curves = layerwise_convexity(
        feats.features,
        {"word": feats.words, "speaker": feats.speakers},
        ConvexityOptions(
            max_pairs_per_class=cfg.probes.convexity_max_pairs, seed=cfg.optimiser.seed
        ),
    )
    return {
        "split": cfg.convexity_split,
        "n_clips": int(feats.features.shape[0]),
        "n_layers": feats.n_layers,
        "model_identity": identity.to_dict(),
        "curves": {
            n: {"scores": c.scores.tolist(), "sems": c.sems.tolist()} for n, c in curves.items()
        },
    }


def resolve_points(points: Sequence[Any], suggested: int, n_layers: int) -> list[PruningPlan]:
    """Turn "full"/"suggested"/ints/plan texts ("drop 3-4") into distinct plans of a model of
    ``n_layers``, deepest first (top plans before others of the same depth)."""
    out: dict[tuple[int, ...], PruningPlan] = {}
    for p in points:
        plan = _point(p, suggested, n_layers)
        out.setdefault(plan.kept, plan)
    if not out:
        raise TrainingError("a sweep needs at least one prune point")
    return sorted(out.values(), key=lambda q: (-q.size, not q.is_top, q.kept))


def _point(p: Any, suggested: int, n_layers: int) -> PruningPlan:
    """One sweep point as a plan: "full", "suggested", a prune point or a plan's text."""
    if p in ("full", None):
        return PruningPlan.top(n_layers, n_layers)
    if p in ("suggested", "suggest"):
        return PruningPlan.top(suggested, n_layers)
    if isinstance(p, str) and p.strip()[:4].lower() in ("drop", "keep"):
        return parse_plan(p, n_layers)
    try:
        q = int(p)
    except (TypeError, ValueError):
        raise TrainingError(
            f"prune point {p!r} is neither a layer number, 'full', 'suggested' nor a plan "
            "('drop 3-4')"
        ) from None
    if not 1 <= q <= n_layers:
        raise TrainingError(f"prune point {q} outside 1..{n_layers}")
    return PruningPlan.top(q, n_layers)


def point_plan(row: SweepPoint, n_layers: int) -> PruningPlan:
    """The plan of a results row of a sweep over a model of ``n_layers`` layers."""
    return (
        parse_plan(row.plan, n_layers) if row.plan else PruningPlan.top(row.prune_point, n_layers)
    )


def _point_benchmark(
    cfg: SweepConfig,
    run: Path,
    plan: PruningPlan,
    res: FinetuneResult,
    stop: Callable[[], bool],
    pinned: ModelIdentity | None,
) -> dict[str, Any]:
    """Full-vs-pruned cost rows of point ``p`` by metric, measured side by side with the benchmark's
    own defaults (:class:`BenchmarkConfig`) once, then read from its file."""
    folder = RunFolder(run)
    name = point_name(plan)
    bpath = folder.file(RunFolder.benchmark_name(name))
    if not bpath.exists():
        from core.training.benchmark import run_benchmark, save_benchmark

        bench_cfg = BenchmarkConfig(
            model=cfg.model,
            prune_point=plan.size if plan.is_top else None,
            plan=None if plan.is_top else plan.describe(),
            n_labels=len(res.labels),
            train_batch=cfg.optimiser.batch_size,
            n_train_clips=res.n_train,
            device=cfg.optimiser.device,
            bf16=cfg.optimiser.bf16,
            seed=cfg.optimiser.seed,
            whisper_input=cfg.whisper_input,
            model_identity=pinned,
        )
        bench = run_benchmark(bench_cfg, should_stop=stop)
        jpath, cpath = save_benchmark(bench, run)
        os.replace(jpath, bpath)
        os.replace(cpath, folder.file(RunFolder.benchmark_name(name, ".csv")))
    return {r["metric"]: r for r in (folder.read_json(bpath.name) or {}).get("rows", [])}


def _last(curves: dict[str, tuple[float, ...]], name: str) -> float:
    """The last hidden state's score of one curve (NaN without it)."""
    return (curves.get(name) or (math.nan,))[-1]


def _point_row(
    plan: PruningPlan,
    suggested: int,
    res: FinetuneResult,
    bench: dict[str, Any],
    relevant: list[float],
) -> SweepPoint:
    """One results row from a point's fine-tune result and benchmark (a plan other than a top one has
    no point on the pretrained curve: its output is no hidden state of the full model)."""
    p = plan.size
    conv = res.convexity
    tuned = conv.finetuned if conv else {}
    pre = conv.pretrained if conv else {}
    return SweepPoint(
        prune_point=p,
        suggested=plan.is_top and p == suggested,
        accuracy=res.best_accuracy,
        test_accuracy=res.test_accuracy,
        best_epoch=res.best_epoch,
        params_total=res.params.total,
        params_trainable=res.params.trainable,
        train_seconds=res.train_seconds,
        epoch_seconds_median=res.epoch_seconds_median,
        train_step_seconds=bench.get("train_step_seconds", {}).get("pruned"),
        inference_latency_b1_seconds=bench.get("inference_latency_b1_seconds", {}).get("pruned"),
        pretrained_relevant_convexity=relevant[p] if plan.is_top else None,
        finetuned_word_convexity_last=_last(tuned, "word"),
        finetuned_speaker_convexity_last=_last(tuned, "speaker"),
        pretrained_word_convexity_last=_last(pre, "word"),
        pretrained_speaker_convexity_last=_last(pre, "speaker"),
        convexity_split=conv.split if conv else None,
        plan=None if plan.is_top else plan.describe(),
    )


def _fine_tune_point(
    cfg: SweepConfig,
    sub: Path,
    plan: PruningPlan,
    stop: Callable[[], bool],
    on_progress: Callable[[dict[str, Any]], None] | None,
    pinned: ModelIdentity | None,
) -> FinetuneResult:
    """Fine-tune the point ``plan`` into ``sub`` (or read its finished result)."""
    folder = RunFolder(sub)
    done = folder.read_json(RunFolder.RESULT)
    if done is not None:
        return FinetuneResult.from_dict(done)
    sub_cfg = point_config(cfg, plan, pinned)
    sub.mkdir(parents=True, exist_ok=True)
    folder.ensure_spec(RunSpec("finetune", sub_cfg.to_dict()))

    def progress(row: dict[str, Any]) -> None:
        if on_progress is not None:
            on_progress({**row, "prune_point": plan.size, "plan": plan.describe()})

    # the point's own status, as every executor keeps it (a Ray sweep runs each point as a task)
    folder.set_state(RunState.RUNNING, started_at=stamp(), attempt=1, error=None)
    try:
        result = finetune(sub_cfg, sub, should_stop=stop, on_progress=progress)
    except Cancelled:
        folder.set_state(RunState.CANCELLED, error=None, finished_at=stamp())
        raise
    except Exception as exc:
        folder.set_state(RunState.FAILED, error=error_line(exc), finished_at=stamp())
        raise
    folder.set_state(RunState.DONE, error=None, finished_at=stamp(), summary=result_summary(result))
    return result


def point_config(
    cfg: SweepConfig, plan: PruningPlan, pinned: ModelIdentity | None = None
) -> FinetuneConfig:
    """The fine-tune settings of a sweep's point ``plan`` (every executor writes these: a top plan as
    its prune point, any other as its plan's text), pinned to the weights of the sweep's pretrained
    curve (``pinned``; default: the sweep's own pin)."""
    layers = (
        {"prune_point": plan.size, "plan": None}
        if plan.is_top
        else {"prune_point": None, "plan": plan.describe()}
    )
    point = FinetuneConfig.from_dict({**cfg.to_dict(), **layers})
    if pinned is not None:
        point.model_identity = pinned
    return point


def _write_csv(path: Path, rows: Sequence[SweepPoint]) -> None:
    """``results.csv``: one row per point."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].to_dict()))
        writer.writeheader()
        writer.writerows(r.to_dict() for r in rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def _sweep_result(
    cfg: SweepConfig, suggested: int, points: list[PruningPlan], rows: list[SweepPoint], pre: dict
) -> SweepResult:
    """The sweep's table so far."""
    return SweepResult(
        model=cfg.model,
        task=cfg.data.task,
        suggested=suggested,
        fraction=cfg.fraction,
        points=tuple(p.size if p.is_top else p.describe() for p in points),
        rows=tuple(rows),
        pretrained_convexity={k: LayerCurve.from_dict(v) for k, v in pre["curves"].items()},
        eval_split=cfg.data.eval_split,
        test_split=cfg.data.test_split if cfg.separate_test else None,
        convexity_split=cfg.convexity_split,
        model_identity=_curve_identity(pre),
    )


def _curve_identity(pre: dict[str, Any]) -> ModelIdentity | None:
    """The identity of the weights the pretrained curve was computed on (None in old folders)."""
    ident = pre.get("model_identity")
    return ModelIdentity.from_dict(ident) if ident else None


def run_sweep(
    cfg: SweepConfig,
    run_dir: str | os.PathLike,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Pretrained convexity -> suggested point -> fine-tune (and benchmark) each point; returns the table."""
    cfg.check()
    run = Path(run_dir)
    stop = should_stop or (lambda: False)
    folder = RunFolder(run)
    pre = folder.read_json(RunFolder.PRETRAINED_CONVEXITY)
    if pre is None:
        log.info("pretrained convexity on the %s split", cfg.convexity_split)
        pre = pretrained_convexity(cfg)
        folder.write_json(RunFolder.PRETRAINED_CONVEXITY, pre)
    pinned = _curve_identity(pre) or cfg.model_identity
    if pinned is not None and cfg.model_identity is not None:  # a resumed sweep: same weights
        check_pin(pinned, cfg.model_identity, f"sweep of {cfg.model}")
    relevant = label_set(cfg.data.task)
    n_layers = int(pre["n_layers"])
    suggested = suggest_prune_point(pre["curves"][relevant]["scores"], cfg.fraction)
    points = resolve_points(cfg.points, suggested, n_layers)
    log.info(
        "suggested prune point %d (fraction %.2f); sweeping %s",
        suggested,
        cfg.fraction,
        ", ".join(p.describe() for p in points),
    )

    rows: list[SweepPoint] = []
    for plan in points:
        if stop():
            raise Cancelled("cancelled")
        sub = folder.point(point_name(plan)).path
        res = _fine_tune_point(cfg, sub, plan, stop, on_progress, pinned)
        bench = _point_benchmark(cfg, run, plan, res, stop, pinned) if cfg.benchmark else {}
        rows.append(_point_row(plan, suggested, res, bench, pre["curves"][relevant]["scores"]))
        folder.write_json(
            RunFolder.SWEEP_RESULTS, _sweep_result(cfg, suggested, points, rows, pre).to_dict()
        )
    _write_csv(folder.file(RunFolder.SWEEP_RESULTS_CSV), rows)
    return _sweep_result(cfg, suggested, points, rows, pre)
