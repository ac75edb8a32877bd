"""Fine-tuning of full and pruned speech encoders as sequence classifiers, resumable epoch by epoch.

The classifier is transformers' own audio-classification class of the family, built from the
(pruned) pretrained encoder (:mod:`core.models.classifier`).

Training: cross-entropy, AdamW with linear warm-up and linear decay (``warmup_ratio`` of the optimizer
steps), gradient clipping, gradient accumulation, bf16 autocast on CUDA, the convolutional front-end
frozen by default, one seed for the classifier head init, the shuffling (a generator seeded by
``(seed, epoch)``, so a resumed epoch sees the same order) and dropout (torch RNG, checkpointed).

Model selection and scoring use different clips by default: every epoch the model is evaluated on
``eval_split`` (default ``validation``) and the best checkpoint is kept; at the end that checkpoint is
scored on ``test_split`` (default ``test``). With ``test_split`` unset or equal to ``eval_split`` the
selection split is also the scored one (old runs). For the ``speakers`` task every split holds clips of
the same speakers (each speaker's clips are split 80/10/10), so the test clips are unseen clips of
speakers seen in training, as in the paper; ``result.json`` states the rule in ``split_rule``.

Pretrained and fine-tuned convexity (word and speaker labels) are computed on the same clips: the
scored split's clips of classes seen in training.

With ``trajectory`` on, both label sets' convexity of the encoder being trained is measured on a fixed
probe set before the first step and after every epoch (:mod:`core.training.trajectory`).

Run folder files: ``config.json`` (written by the caller), ``metrics.jsonl``, ``best/``, ``last/``,
``state.pt`` (:mod:`core.training.checkpoints`), ``result.json`` (:class:`FinetuneResult`) and
``convexity.json`` (:class:`ConvexityComparison`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core.data.datasets import label_set
from core.errors import Cancelled
from core.io.run_folder import RunFolder
from core.models.classifier import (
    autocast,
    batched_inputs,
    build_classifier,
    freeze_front_end,
    load_classifier,
)
from core.models.encoder import SpeechEncoder
from core.models.loading import ResolvedModel, resolve_model
from core.models.plans import PruningPlan
from core.models.pruning import apply_plan, count_parameters
from core.training.checkpoints import (
    TrainState,
    load_state,
    repair_checkpoint_dirs,
    save_model_dir,
    save_state,
)
from core.training.configs import FinetuneConfig
from core.training.evaluation import EvalResult, evaluate
from core.training.finetune_result import FinetuneResult, ParamCounts
from core.training.model_convexity import ConvexityComparison, convexity_curves, pooled_features
from core.training.pinning import pinned_model
from core.training.task_data import (
    DataPlan,
    LabelledClips,
    TaskData,
    check_task_data,
    load_task_data,
    load_test_clips,
    split_rule,
)
from core.training.trajectory import ProbeSet, measure, probe_set, read_trajectory

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["FinetuneConfig", "check_run", "finetune"]

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]


def check_run(cfg: FinetuneConfig) -> DataPlan:
    """Everything a run can be refused for, checked before its folder exists: the settings, the
    dataset and its folder, the speaker rule, the classes of every split, the model and the layers it
    keeps (prune point or plan)."""
    cfg.check()
    cfg.pruning_plan(resolve_model(cfg.model).n_layers)
    return check_task_data(cfg)


# --------------------------------------------------------------------------------------------------
# Model and optimisation


@dataclass
class Model:
    """The classifier being trained, its encoder view and its parameter counts."""

    clf: PreTrainedModel
    enc: SpeechEncoder
    params: ParamCounts
    plan: PruningPlan  # the pretrained encoder's layers it keeps

    @property
    def device(self) -> torch.device:
        """Where the classifier lives."""
        return self.enc.device


def build_model(cfg: FinetuneConfig, resolved: ResolvedModel, classes: list[str]) -> Model:
    """Step 2: the pretrained encoder, pruned to the run's plan, with a fresh head for ``classes``,
    front-end frozen if asked."""
    plan = cfg.pruning_plan(resolved.n_layers)
    clf, enc = build_classifier(
        resolved, classes, plan, seed=cfg.optimiser.seed, device=cfg.optimiser.device
    )
    if cfg.optimiser.freeze_front_end:
        freeze_front_end(clf)
    params = ParamCounts.from_dict(count_parameters(clf))
    log.info("%s; %s; params %s", enc.describe(), plan.describe(), params)
    return Model(clf, enc, params, plan)


@dataclass
class Optimisation:
    """AdamW with linear warm-up/decay and the epoch's batch plan."""

    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    batch_size: int
    accum: int
    n_batches: int  # per epoch
    steps_per_epoch: int  # optimizer steps per epoch


def make_optimiser(cfg: FinetuneConfig, clf: PreTrainedModel, n_train: int) -> Optimisation:
    """Step 3: AdamW (no weight decay on biases and norms) and the warm-up/decay schedule."""
    bs = max(1, int(cfg.optimiser.batch_size))
    accum = max(1, int(cfg.optimiser.grad_accum))
    n_batches = math.ceil(n_train / bs)
    if cfg.optimiser.max_steps_per_epoch:
        n_batches = min(n_batches, int(cfg.optimiser.max_steps_per_epoch) * accum)
    steps_per_epoch = math.ceil(n_batches / accum)
    total = max(1, steps_per_epoch * cfg.optimiser.epochs)
    warmup = int(round(cfg.optimiser.warmup_ratio * total))

    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in clf.named_parameters():
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "norm" in name.lower() else decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.optimiser.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.optimiser.lr,
    )

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    return Optimisation(opt, sched, bs, accum, n_batches, steps_per_epoch)


def resume(run: Path, model: Model, optim: Optimisation) -> TrainState:
    """Step 4: continue from ``state.pt`` if the folder has one (metrics of unfinished epochs dropped)."""
    repair_checkpoint_dirs(run)
    path = RunFolder(run).file(RunFolder.CHECKPOINT)
    if not path.exists():
        return TrainState()
    state = load_state(path, model.clf, optim.opt, optim.sched)
    folder = RunFolder(run)
    folder.keep_metrics(state.epoch)
    log.info("resumed after epoch %d (step %d)", state.epoch, state.global_step)
    folder.append_metric({"event": "resumed", "epoch": state.epoch, "time": time.time()})
    return state


# --------------------------------------------------------------------------------------------------
# Epochs


class _LossWindow:
    """The training loss and clips since the last logged train row, and when that window began."""

    def __init__(self) -> None:
        self.loss, self.n, self.t = 0.0, 0, time.perf_counter()

    def row(
        self, step: int, epoch: int, epoch_progress: float, lr: float | torch.Tensor
    ) -> dict[str, Any]:
        """The window's train row of ``metrics.jsonl``: its mean loss and clips per second."""
        return {
            "kind": "train",
            "step": step,
            "epoch": epoch,
            "epoch_progress": epoch_progress,
            "loss": self.loss / max(1, self.n),
            "lr": lr,
            "throughput": self.n / max(time.perf_counter() - self.t, 1e-9),
            "time": time.time(),
        }


def _optimiser_step(optim: Optimisation, trainable: list[nn.Parameter], max_norm: float) -> None:
    """Clip the accumulated gradients, step the optimiser and the schedule, clear the gradients."""
    torch.nn.utils.clip_grad_norm_(trainable, max_norm)
    optim.opt.step()
    optim.sched.step()
    optim.opt.zero_grad(set_to_none=True)


def train_epoch(
    cfg: FinetuneConfig,
    epoch: int,
    model: Model,
    optim: Optimisation,
    train: LabelledClips,
    state: TrainState,
    run: Path,
    stop: StopCheck,
    progress: Progress,
    probe: ProbeSet | None = None,
) -> float:
    """Step 5: one pass over the (seeded-shuffled) training clips; logs train rows (and, every
    ``trajectory_every`` steps, a probe point: its seconds do not count); returns its seconds."""
    t_epoch = time.perf_counter()
    bs, accum, n_batches = optim.batch_size, optim.accum, optim.n_batches
    order = np.random.default_rng([cfg.optimiser.seed, epoch]).permutation(len(train))[
        : n_batches * bs
    ]
    trainable = [p for p in model.clf.parameters() if p.requires_grad]
    window = _LossWindow()
    model.clf.train()
    optim.opt.zero_grad(set_to_none=True)
    batches = [np.sort(order[b * bs : (b + 1) * bs]) for b in range(n_batches)]
    prefetch = (
        model.device.type == "cuda"
    )  # preprocessing runs beside the GPU, not before each step
    for b, inputs in enumerate(batched_inputs(model.enc, train.waves, batches, prefetch)):
        if stop():
            raise Cancelled("cancelled")
        idx = batches[b]
        y = torch.from_numpy(train.targets[idx]).to(model.device)
        with autocast(model.device, cfg.optimiser.bf16):
            logits = model.clf(**inputs).logits.float()
        loss = nn.functional.cross_entropy(logits, y)
        (loss / accum).backward()
        window.loss += float(loss.detach()) * len(idx)
        window.n += len(idx)
        if (b + 1) % accum and b + 1 != n_batches:
            continue
        _optimiser_step(optim, trainable, cfg.optimiser.max_grad_norm)
        state.global_step += 1
        if state.global_step % max(1, cfg.optimiser.log_every) == 0 or b + 1 == n_batches:
            lr = optim.sched.get_last_lr()[0]
            row = window.row(state.global_step, epoch + 1, (b + 1) / n_batches, lr)
            RunFolder(run).append_metric(row)
            progress(row)
            window = _LossWindow()
        every = int(cfg.probes.trajectory_every)
        if probe is not None and every and state.global_step % every == 0 and b + 1 < n_batches:
            t_probe = time.perf_counter()
            record_point(cfg, model, probe, run, epoch + 1, state.global_step, (b + 1) / n_batches)
            t_epoch += time.perf_counter() - t_probe
            window.t += time.perf_counter() - t_probe
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t_epoch


def evaluate_and_checkpoint(
    cfg: FinetuneConfig,
    epoch: int,
    epoch_seconds: float,
    model: Model,
    optim: Optimisation,
    selection: LabelledClips,
    state: TrainState,
    run: Path,
    progress: Progress,
    probe: ProbeSet | None = None,
) -> None:
    """Step 6: score the epoch on the selection split, measure the probe point; save ``best/`` if it
    improved, ``last/``, the eval row, then ``state.pt`` last: a kill before it redoes the whole epoch
    (its rows dropped on resume), a kill after it has every row of the epoch on disk."""
    folder = RunFolder(run)
    state.epoch = epoch + 1
    state.train_seconds += epoch_seconds
    ev = evaluate(
        model.clf,
        model.enc,
        selection.waves,
        selection.targets,
        batch_size=cfg.optimiser.eval_batch_size,
        bf16=cfg.optimiser.bf16,
    )
    improved = ev.accuracy > state.best_accuracy
    if improved:
        state.best_accuracy, state.best_epoch = ev.accuracy, epoch + 1
        save_model_dir(model.clf, model.enc, folder.file(RunFolder.BEST_MODEL))
    if probe is not None:
        record_point(cfg, model, probe, run, epoch + 1, state.global_step, 1.0)
    if cfg.optimiser.keep_epochs:
        save_model_dir(model.clf, model.enc, folder.epoch_model(epoch + 1))
    save_model_dir(model.clf, model.enc, folder.file(RunFolder.LAST_MODEL))
    row = {
        "kind": "eval",
        "step": state.global_step,
        "epoch": epoch + 1,
        "split": selection.split,
        "accuracy": ev.accuracy,
        "loss": ev.loss,
        "epoch_seconds": epoch_seconds,
        "time": time.time(),
    }
    folder.append_metric(row)  # before state.pt: a checkpointed epoch always has its row
    save_state(folder.file(RunFolder.CHECKPOINT), model.clf, optim.opt, optim.sched, state)
    progress(row)
    log.info(
        "epoch %d/%d: %s accuracy %.4f loss %.4f (%.1f s)%s",
        epoch + 1,
        cfg.optimiser.epochs,
        selection.split,
        ev.accuracy,
        ev.loss,
        epoch_seconds,
        " *best*" if improved else "",
    )


# --------------------------------------------------------------------------------------------------
# Convexity while training


def training_probe(cfg: FinetuneConfig, selection: LabelledClips) -> ProbeSet | None:
    """The probe set of the run (None with ``trajectory`` off)."""
    if not cfg.probes.trajectory:
        return None
    return probe_set(
        selection.split,
        selection.waves,
        selection.words,
        selection.speakers,
        cfg.probes.trajectory_clips,
        cfg.optimiser.seed,
    )


def record_point(
    cfg: FinetuneConfig,
    model: Model,
    probe: ProbeSet,
    run: Path,
    epoch: int,
    step: int,
    epoch_progress: float,
) -> None:
    """Measure the encoder being trained on ``probe`` and append the point to ``metrics.jsonl``."""
    point = measure(
        model.enc,
        probe,
        epoch=epoch,
        step=step,
        epoch_progress=epoch_progress,
        target_se=cfg.probes.trajectory_target_se,
        seed=cfg.optimiser.seed,
        batch_size=cfg.optimiser.eval_batch_size,
    )
    RunFolder(run).append_metric(point.row())


def record_pretrained_point(cfg: FinetuneConfig, model: Model, probe: ProbeSet, run: Path) -> None:
    """Epoch 0 of the trajectory (the encoder before its first step), unless the run has it already."""
    if not any(p.epoch == 0 for p in read_trajectory(run).points):
        record_point(cfg, model, probe, run, 0, 0, 0.0)


# --------------------------------------------------------------------------------------------------
# Final scoring and convexity


def score_best_checkpoint(
    cfg: FinetuneConfig, run: Path, selection: LabelledClips, test: LabelledClips, device: Any
) -> tuple[EvalResult, EvalResult | None]:
    """Step 7: the best checkpoint (reloaded from disk) on the selection split and on the test clips."""
    clf, enc = load_classifier(RunFolder(run).file(RunFolder.BEST_MODEL), device, cfg.whisper_input)
    best = evaluate(
        clf,
        enc,
        selection.waves,
        selection.targets,
        batch_size=cfg.optimiser.eval_batch_size,
        bf16=cfg.optimiser.bf16,
    )
    if test is selection:
        return best, None
    log.info("scoring the best checkpoint on %d %s clips", len(test), test.split)
    scored = evaluate(
        clf,
        enc,
        test.waves,
        test.targets,
        batch_size=cfg.optimiser.eval_batch_size,
        bf16=cfg.optimiser.bf16,
    )
    return best, scored


def compare_convexity(
    cfg: FinetuneConfig,
    resolved: ResolvedModel,
    run: Path,
    clips: LabelledClips,
    plan: PruningPlan,
    device: Any,
) -> ConvexityComparison:
    """Step 8: word and speaker convexity of the best checkpoint and of the pretrained encoder on ``clips``."""
    log.info("convexity of word and speaker labels on %d %s clips", len(clips), clips.split)
    _, tuned_enc = load_classifier(
        RunFolder(run).file(RunFolder.BEST_MODEL), device, cfg.whisper_input
    )
    tuned = pooled_features(tuned_enc, clips.waves, cfg.optimiser.eval_batch_size)
    del tuned_enc
    pre = resolved.load(device=device)
    apply_plan(pre.model, plan)
    pretrained = pooled_features(pre, clips.waves, cfg.optimiser.eval_batch_size)
    del pre

    def curves(features: np.ndarray) -> dict:
        return convexity_curves(
            features,
            clips.words,
            clips.speakers,
            max_pairs=cfg.probes.convexity_max_pairs,
            seed=cfg.optimiser.seed,
        )

    comparison = ConvexityComparison(
        split=clips.split,
        n_clips=len(clips),
        relevant=label_set(cfg.data.task),
        pretrained=curves(pretrained),
        finetuned=curves(tuned),
    )
    RunFolder(run).write_json(RunFolder.CONVEXITY, comparison.to_dict())
    return comparison


# --------------------------------------------------------------------------------------------------
# The training run


def finetune(
    cfg: FinetuneConfig,
    run_dir: str | os.PathLike,
    *,
    should_stop: StopCheck | None = None,
    on_progress: Progress | None = None,
) -> FinetuneResult:
    """Fine-tune per ``cfg`` into ``run_dir`` (resuming from its ``state.pt`` if present); returns the result.

    ``should_stop()`` is polled between batches (True raises :class:`Cancelled`); ``on_progress(row)``
    receives every ``metrics.jsonl`` row (``kind`` "train" or "eval") as it is written.
    """
    t_start = time.perf_counter()
    cfg.check()
    stop, progress = should_stop or (lambda: False), on_progress or (lambda row: None)
    run = _RunWatch(Path(run_dir), stop, progress, t_start)
    run.folder.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(cfg.optimiser.seed)
    data = load_task_data(cfg)
    what = f"fine-tune of {cfg.model}"
    resolved = pinned_model(cfg.request, cfg.model_identity, what)
    model = build_model(cfg, resolved, data.classes)
    if not resolved.identity.known:  # a hub model fetched just now: its commit is in the cache now
        resolved = pinned_model(cfg.request, cfg.model_identity, what)
    trained = _train(cfg, run, model, data)
    del model  # free the training copy before the best checkpoint is reloaded

    scored = _score(cfg, run, resolved, data, trained)
    result = _result(cfg, run, resolved, data, trained, scored)
    RunFolder(run.folder).write_json(RunFolder.RESULT, result.to_dict())
    return result


@dataclass(frozen=True)
class _RunWatch:
    """The run's folder, how the run is watched (polled for a stop, told every metrics row) and when
    it began."""

    folder: Path
    stop: StopCheck
    progress: Progress
    t_start: float  # time.perf_counter() at the start


@dataclass(frozen=True)
class _Trained:
    """What the training loop leaves once the training copy is freed: the model's shape and the
    epochs' record."""

    n_layers: int
    device: torch.device
    params: ParamCounts
    plan: PruningPlan
    steps_per_epoch: int
    state: TrainState
    epoch_times: tuple[float, ...]  # seconds of the epochs trained in this call (not resumed ones)


@dataclass(frozen=True)
class _Scored:
    """The best checkpoint's scores: on the selection split, on the test clips (when they are
    another split) and the convexity comparison (when asked)."""

    test: LabelledClips
    best: EvalResult
    scored: EvalResult | None
    convexity: Any


def _train(cfg: FinetuneConfig, run: _RunWatch, model: Model, data: TaskData) -> _Trained:
    """Steps 3-6: the optimiser, resuming, then every epoch left trained, scored and checkpointed."""
    optim = make_optimiser(cfg, model.clf, len(data.train))
    state = resume(run.folder, model, optim)
    probe = training_probe(cfg, data.selection)
    if probe is not None and state.epoch == 0:
        record_pretrained_point(cfg, model, probe, run.folder)
    epoch_times = []
    for epoch in range(state.epoch, cfg.optimiser.epochs):
        seconds = train_epoch(
            cfg, epoch, model, optim, data.train, state, run.folder, run.stop, run.progress, probe
        )
        epoch_times.append(seconds)
        evaluate_and_checkpoint(
            cfg,
            epoch,
            seconds,
            model,
            optim,
            data.selection,
            state,
            run.folder,
            run.progress,
            probe,
        )
    return _Trained(
        n_layers=model.enc.n_layers,
        device=model.device,
        params=model.params,
        plan=model.plan,
        steps_per_epoch=optim.steps_per_epoch,
        state=state,
        epoch_times=tuple(epoch_times),
    )


def _score(
    cfg: FinetuneConfig, run: _RunWatch, resolved: ResolvedModel, data: TaskData, trained: _Trained
) -> _Scored:
    """Steps 7-8: the best checkpoint on the selection and test clips, then convexity if asked."""
    test = load_test_clips(cfg, data)
    best, scored = score_best_checkpoint(cfg, run.folder, data.selection, test, trained.device)
    convexity = None
    if cfg.probes.convexity and len(test):
        if run.stop():
            raise Cancelled("cancelled")
        convexity = compare_convexity(
            cfg, resolved, run.folder, test, trained.plan, trained.device
        ).scores()
    return _Scored(test, best, scored, convexity)


def _result(
    cfg: FinetuneConfig,
    run: _RunWatch,
    resolved: ResolvedModel,
    data: TaskData,
    trained: _Trained,
    scored: _Scored,
) -> FinetuneResult:
    """The run's result record, from its settings, its training and its scores."""
    return FinetuneResult(
        model=cfg.model,
        task=cfg.data.task,
        prune_point=cfg.prune_point if cfg.prune_point is not None else trained.n_layers,
        n_layers=trained.n_layers,
        plan=trained.plan.describe() if cfg.plan is not None else None,
        labels=tuple(data.classes),
        n_train=len(data.train),
        eval_split=cfg.data.eval_split,
        best_epoch=trained.state.best_epoch,
        best=scored.best,
        params=trained.params,
        train_seconds=trained.state.train_seconds,
        epoch_seconds_median=float(np.median(trained.epoch_times)) if trained.epoch_times else None,
        steps_per_epoch=trained.steps_per_epoch,
        device=str(trained.device),
        checkpoints={
            "best": str(RunFolder(run.folder).file(RunFolder.BEST_MODEL)),
            "last": str(RunFolder(run.folder).file(RunFolder.LAST_MODEL)),
        },
        test_split=scored.test.split if scored.scored is not None else None,
        test=scored.scored,
        convexity=scored.convexity,
        split_rule=split_rule(data.table, cfg.data.task),
        total_seconds=time.perf_counter() - run.t_start,
        model_identity=resolved.identity,
    )
