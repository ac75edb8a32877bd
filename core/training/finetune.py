"""Fine-tuning of full and pruned speech encoders as sequence classifiers, resumable epoch by epoch.

The classifier is transformers' own ``AutoModelForAudioClassification`` class of the family
(``Wav2Vec2ForSequenceClassification``, ``HubertForSequenceClassification``, ...,
``WhisperForAudioClassification``): the (pruned) encoder, a linear projector, mean pooling over valid
frames and a linear classifier (projector + classifier compose to one linear head). Its config carries
the pruned depth, the trimmed Whisper window and the label map, so ``save_pretrained`` checkpoints
reload with ``AutoModelForAudioClassification.from_pretrained`` (see :func:`load_classifier`).

Training: cross-entropy, AdamW with linear warm-up and linear decay (``warmup_ratio`` of the optimizer
steps), gradient clipping at 1.0, gradient accumulation, bf16 autocast on CUDA, the convolutional
front-end frozen by default, one seed for the classifier head init, the shuffling (a generator seeded
by ``(seed, epoch)``, so a resumed epoch sees the same order) and dropout (torch RNG, checkpointed).
Every epoch the held-out split (``eval_split``, default ``test``) is evaluated; with ``test_split``
set (e.g. ``eval_split="validation", test_split="test"``) the best checkpoint is chosen on the
first and finally scored on the second. The best (highest accuracy) and last models are saved with ``save_pretrained`` under ``best/`` and ``last/``, and a
training-state checkpoint ``state.pt`` (model, optimizer, scheduler, epoch, RNG; tensors and plain
containers only, read back with ``torch.load(weights_only=True)``) lets a killed run resume, losing at
most the epoch in progress.

Run folder files: ``config.json``, ``metrics.jsonl`` (one JSON row per logged step and per evaluation),
``result.json`` (final figures, per-class accuracy) and ``convexity.json`` (pretrained and fine-tuned
layerwise convexity of word and speaker labels on the evaluation split).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.data.audio import load_clips_report
from core.data.datasets import ClipTable, load_table, select
from core.errors import Cancelled
from core.io.atomic import atomic_write_bytes, atomic_write_json
from core.models.pruning import count_parameters, encoder_of, prune, speech_base_of
from core.models.registry import SpeechEncoder, default_feature_extractor, load_encoder

__all__ = [
    "Cancelled",
    "FinetuneConfig",
    "build_classifier",
    "classifier_encoder",
    "evaluate",
    "finetune",
    "load_classifier",
    "load_split",
]

log = logging.getLogger("core.training.finetune")


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run needs; stored as the run's ``config.json``."""

    model: str = field(
        metadata={"help": 'preset key (see "models"), Hugging Face id or model directory'}
    )
    prune_point: int | None = field(
        default=None,
        metadata={"help": "prune point p: keep transformer layers 1..p (default: the full model)"},
    )
    dataset: str = field(
        default="sample",
        metadata={"help": 'dataset key (see "datasets"): sample, speech-commands, folder'},
    )
    root: str | None = field(
        default=None, metadata={"help": "dataset folder (default: the dataset's own location)"}
    )
    task: str = field(
        default="words",
        metadata={"help": "classify words or speakers", "choices": ("words", "speakers")},
    )
    train_split: str = field(default="train", metadata={"help": "split trained on"})
    eval_split: str = field(
        default="test", metadata={"help": "split evaluated every epoch; picks the best checkpoint"}
    )
    test_split: str | None = field(
        default=None,
        metadata={
            "help": "split the best checkpoint is finally scored on too (none: only eval_split)"
        },
    )
    max_train_clips: int | None = field(
        default=None,
        metadata={"help": "seeded stratified subsample of the training split (none: all)"},
    )
    max_eval_clips: int | None = field(
        default=None,
        metadata={"help": "seeded stratified subsample of the evaluation split (none: all)"},
    )
    min_clips: int | None = field(
        default=None,
        metadata={"help": "speakers task: minimum clips per speaker (none: the dataset default)"},
    )
    split_seed: int = field(
        default=0, metadata={"help": "seed of the train/validation/test split of a folder dataset"}
    )
    epochs: int = field(default=5, metadata={"help": "training epochs"})
    batch_size: int = field(default=16, metadata={"help": "clips per training step"})
    eval_batch_size: int = field(default=64, metadata={"help": "clips per evaluation forward pass"})
    lr: float = field(default=5e-5, metadata={"help": "peak learning rate (AdamW)"})
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay (not on biases and norms)"}
    )
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "share of the optimizer steps with linear warm-up"}
    )
    grad_accum: int = field(
        default=1, metadata={"help": "gradient accumulation steps per optimizer step"}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    freeze_front_end: bool = field(
        default=True, metadata={"help": "keep the convolutional front-end frozen"}
    )
    seed: int = field(
        default=0, metadata={"help": "seed of the head init, shuffling, dropout and subsamples"}
    )
    device: str | None = field(
        default=None, metadata={"help": "cpu, cuda, cuda:1 ... (none: cuda if available)"}
    )
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA"})
    whisper_input: str = field(
        default="trimmed",
        metadata={
            "help": "Whisper only: 'trimmed' runs the encoder on the 1-s clip, 'padded' on the 30-s window",
            "choices": ("trimmed", "padded"),
        },
    )
    log_every: int = field(
        default=10, metadata={"help": "log a training row every this many optimizer steps"}
    )
    max_steps_per_epoch: int | None = field(
        default=None,
        metadata={"help": "cap on optimizer steps per epoch (quick looks; none: the whole split)"},
    )
    convexity: bool = field(
        default=True,
        metadata={
            "help": "measure pretrained and fine-tuned convexity on the evaluation split at the end"
        },
    )
    convexity_max_pairs: int | None = field(
        default=5000,
        metadata={"help": "sampled pairs per class for convexity (none: every pair, exact)"},
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """Build from a JSON dict, ignoring unknown keys (older/newer run folders)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Data


@dataclass
class SplitData:
    """Waveforms (N, 16000) float32 and labels of one split, as loaded."""

    waves: np.ndarray
    labels: list[str]
    words: list[str]
    speakers: list[str]
    paths: list[str]
    n_skipped: int


def _table(cfg: FinetuneConfig) -> ClipTable:
    """The full clip table of the configured dataset."""
    return load_table(cfg.dataset, cfg.root, split_seed=cfg.split_seed)


def load_split(
    cfg: FinetuneConfig, split: str, max_clips: int | None = None, task: str | None = None
) -> SplitData:
    """Load one split of the configured task into memory (bad files are skipped and counted)."""
    table = select(
        _table(cfg),
        task or cfg.task,
        split,
        max_clips=max_clips,
        seed=cfg.seed,
        min_clips=cfg.min_clips,
    )
    report = load_clips_report(table.abs_paths())
    kept = [int(i) for i in report.kept]
    labels = table.labels(task or cfg.task)
    return SplitData(
        waves=np.ascontiguousarray(report.clips[kept]) if kept else report.clips[:0],
        labels=[labels[i] for i in kept],
        words=[table.words[i] for i in kept],
        speakers=[table.speakers[i] for i in kept],
        paths=[table.paths[i] for i in kept],
        n_skipped=len(report.skipped),
    )


# --------------------------------------------------------------------------------------------------
# Model


def _auto_classifier_class() -> Any:
    """transformers' AutoModelForAudioClassification (imported lazily: transformers is slow to import)."""
    from transformers import AutoModelForAudioClassification

    return AutoModelForAudioClassification


def classifier_encoder(clf: nn.Module, feature_extractor: Any | None = None) -> SpeechEncoder:
    """A ``SpeechEncoder`` view (preprocessing, hidden states, pooling) over a classifier's encoder, sharing weights."""
    base = speech_base_of(clf)
    device = next(clf.parameters()).device
    enc = SpeechEncoder(base, feature_extractor=feature_extractor, device=device)
    return enc


def build_classifier(
    model: str | os.PathLike,
    labels: list[str],
    prune_point: int | None = None,
    *,
    whisper_input: str = "trimmed",
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[nn.Module, SpeechEncoder]:
    """Pretrained encoder (pruned at ``prune_point``) + the family's classification head for ``labels``."""
    enc = load_encoder(model, whisper_input=whisper_input, device="cpu")
    if prune_point is not None and prune_point != enc.n_layers:
        prune(enc.model, int(prune_point))
    cfg = copy.deepcopy(enc.model.config)
    cfg.num_labels = len(labels)
    cfg.id2label = dict(enumerate(labels))
    cfg.label2id = {lab: i for i, lab in enumerate(labels)}
    cfg.architectures = None
    cfg.use_weighted_layer_sum = False
    torch.manual_seed(seed)
    clf = _auto_classifier_class().from_config(cfg)
    target = speech_base_of(clf)
    missing, unexpected = target.load_state_dict(enc.model.state_dict(), strict=False)
    bad = [k for k in missing if "masked_spec_embed" not in k] + list(unexpected)
    if bad:
        raise RuntimeError(f"encoder weights do not fit the classifier: {bad[:3]}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    clf.to(device)
    return clf, classifier_encoder(clf, enc.feature_extractor)


def load_classifier(
    path: str | os.PathLike, device: str | torch.device | None = None
) -> tuple[nn.Module, SpeechEncoder]:
    """Reload a saved classifier checkpoint (``best/`` or ``last/``) and its feature extractor."""
    from transformers import AutoFeatureExtractor

    clf = _auto_classifier_class().from_pretrained(str(path))
    try:
        fe = AutoFeatureExtractor.from_pretrained(str(path))
    except Exception:
        fe = default_feature_extractor(clf.config)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    clf.to(device).eval()
    return clf, classifier_encoder(clf, fe)


def freeze_front_end(clf: nn.Module) -> None:
    """Freeze the convolutional front-end (wav2vec2-style feature encoder; Whisper's two convs)."""
    if hasattr(clf, "freeze_feature_encoder"):
        clf.freeze_feature_encoder()
        return
    enc = encoder_of(clf)
    for name in ("conv1", "conv2"):
        part = getattr(enc, name, None)
        if part is not None:
            part.requires_grad_(False)


def _model_inputs(enc: SpeechEncoder, waves: np.ndarray) -> dict[str, torch.Tensor]:
    """Preprocessed model inputs (without ``lengths``) on the encoder's device."""
    inputs = enc.preprocess(waves)
    out = {}
    for key in ("input_values", "input_features", "attention_mask"):
        if key in inputs:
            out[key] = inputs[key].to(enc.device, non_blocking=True)
    return out


def _autocast(device: torch.device, bf16: bool) -> Any:
    """bf16 autocast on CUDA, nothing elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def evaluate(
    clf: nn.Module,
    enc: SpeechEncoder,
    waves: np.ndarray,
    targets: np.ndarray,
    *,
    batch_size: int = 64,
    bf16: bool = True,
) -> dict[str, Any]:
    """Accuracy, mean cross-entropy and per-class accuracy of ``clf`` on labelled clips."""
    was_training = clf.training
    clf.eval()
    preds = np.empty(len(waves), dtype=np.int64)
    loss_sum = 0.0
    for i in range(0, len(waves), batch_size):
        inputs = _model_inputs(enc, waves[i : i + batch_size])
        y = torch.from_numpy(targets[i : i + batch_size]).to(enc.device)
        with _autocast(enc.device, bf16):
            logits = clf(**inputs).logits.float()
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        preds[i : i + len(y)] = logits.argmax(-1).cpu().numpy()
    clf.train(was_training)
    correct = preds == targets
    id2label = clf.config.id2label
    per_class = {}
    for c in np.unique(targets):
        sel = targets == c
        per_class[str(id2label[int(c)])] = float(correct[sel].mean())
    n = max(1, len(waves))
    return {
        "accuracy": float(correct.mean()) if len(waves) else float("nan"),
        "loss": loss_sum / n,
        "n": len(waves),
        "per_class": per_class,
    }


# --------------------------------------------------------------------------------------------------
# Checkpoints


def _save_dir_atomic(clf: nn.Module, enc: SpeechEncoder, dest: Path) -> None:
    """``save_pretrained`` model + feature extractor into ``dest`` via a temp folder and renames."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    clf.save_pretrained(tmp)
    enc.feature_extractor.save_pretrained(tmp)
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def _rng_state() -> dict[str, Any]:
    """Torch CPU (and CUDA) RNG states as tensors, for a weights_only checkpoint."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`_rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, payload: dict[str, Any]) -> None:
    """Write a training-state checkpoint (tensors and plain containers only) atomically."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path) -> dict[str, Any]:
    """Read a training-state checkpoint with ``weights_only=True`` (no arbitrary unpickling)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON row and flush it to disk (a watcher may read it any time)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _truncate_metrics(path: Path, completed_epochs: int) -> None:
    """Drop metric rows of epochs after the last checkpoint (a resumed run redoes them)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a killed process
        if int(row.get("epoch", 0)) <= completed_epochs:
            keep.append(json.dumps(row))
    atomic_write_bytes(path, ("\n".join(keep) + ("\n" if keep else "")).encode())


# --------------------------------------------------------------------------------------------------
# Convexity of a (fine-tuned) model


def pooled_features(enc: SpeechEncoder, waves: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """(N, L+1, D) mean-pooled hidden states of ``waves`` under ``enc`` (eval mode)."""
    was = enc.model.training
    enc.model.eval()
    try:
        with _autocast(enc.device, True):
            out = enc.pooled(waves, batch_size=batch_size)
    finally:
        enc.model.train(was)
    return out.numpy()


def convexity_curves(
    features: np.ndarray,
    words: list[str],
    speakers: list[str],
    *,
    max_pairs: int | None = 5000,
    seed: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """Layerwise word and speaker convexity (scores, sems) of pooled features, as plain lists."""
    from core.geometry.convexity import layerwise_convexity

    curves = layerwise_convexity(
        features, {"word": words, "speaker": speakers}, max_pairs_per_class=max_pairs, seed=seed
    )
    return {
        name: {"scores": c.scores.tolist(), "sems": c.sems.tolist(), "layers": list(c.layers)}
        for name, c in curves.items()
    }


# --------------------------------------------------------------------------------------------------
# The training run


def _now() -> float:
    """Wall-clock seconds (for JSON rows)."""
    return time.time()


def finetune(
    cfg: FinetuneConfig,
    run_dir: str | os.PathLike,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune per ``cfg`` into ``run_dir`` (resuming from its ``state.pt`` if present); returns the result."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    metrics_path = run / "metrics.jsonl"
    state_path = run / "state.pt"
    stop = should_stop or (lambda: False)
    progress = on_progress or (lambda info: None)
    t_start = time.perf_counter()

    torch.manual_seed(cfg.seed)
    log.info("loading data: %s/%s", cfg.dataset, cfg.task)
    train = load_split(cfg, cfg.train_split, cfg.max_train_clips)
    evals = load_split(cfg, cfg.eval_split, cfg.max_eval_clips)
    labels = sorted(set(train.labels))
    if len(labels) < 2:
        raise ValueError(f"the {cfg.train_split} split has {len(labels)} class(es); need >= 2")
    lab2id = {lab: i for i, lab in enumerate(labels)}
    keep_eval = [i for i, lab in enumerate(evals.labels) if lab in lab2id]
    y_train = np.array([lab2id[lab] for lab in train.labels], dtype=np.int64)
    y_eval = np.array([lab2id[evals.labels[i]] for i in keep_eval], dtype=np.int64)
    eval_waves = evals.waves[keep_eval]
    if not len(y_eval):
        raise ValueError(f"the {cfg.eval_split} split has no clip of a class seen in training")
    for name in ("best", "last"):  # a kill between the two renames of _save_dir_atomic
        old = run / f".{name}.old"
        if old.exists() and not (run / name).exists():
            os.replace(old, run / name)
    log.info(
        "%d train clips, %d eval clips (%d dropped: class not in train), %d classes",
        len(y_train), len(y_eval), len(evals.labels) - len(keep_eval), len(labels),
    )  # fmt: skip

    clf, enc = build_classifier(
        cfg.model, labels, cfg.prune_point, whisper_input=cfg.whisper_input, seed=cfg.seed,
        device=cfg.device,
    )  # fmt: skip
    if cfg.freeze_front_end:
        freeze_front_end(clf)
    device = enc.device
    n_layers = enc.n_layers
    params = count_parameters(clf)
    log.info("%s; prune point %s; params %s", enc.describe(), cfg.prune_point, params)

    bs = max(1, int(cfg.batch_size))
    accum = max(1, int(cfg.grad_accum))
    n_batches = math.ceil(len(y_train) / bs)
    if cfg.max_steps_per_epoch:
        n_batches = min(n_batches, int(cfg.max_steps_per_epoch) * accum)
    opt_steps_per_epoch = math.ceil(n_batches / accum)
    total_steps = max(1, opt_steps_per_epoch * cfg.epochs)
    warmup = int(round(cfg.warmup_ratio * total_steps))

    decay, no_decay = [], []
    for name, p in clf.named_parameters():
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "norm" in name.lower() else decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )

    def lr_lambda(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)

    start_epoch, global_step = 0, 0
    best = {"accuracy": -1.0, "epoch": 0}
    train_seconds = 0.0
    if state_path.exists():
        state = load_state(state_path)
        clf.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start_epoch, global_step = int(state["epoch"]), int(state["global_step"])
        best = {"accuracy": float(state["best_accuracy"]), "epoch": int(state["best_epoch"])}
        train_seconds = float(state.get("train_seconds", 0.0))
        _truncate_metrics(metrics_path, start_epoch)
        log.info("resumed after epoch %d (step %d)", start_epoch, global_step)
        _append_jsonl(metrics_path, {"event": "resumed", "epoch": start_epoch, "time": _now()})

    clf.train()
    epoch_times: list[float] = []
    for epoch in range(start_epoch, cfg.epochs):
        t_epoch = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(y_train))
        order = order[: n_batches * bs]
        window_loss, window_n, window_t = 0.0, 0, time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for b in range(n_batches):
            if stop():
                raise Cancelled("cancelled")
            idx = np.sort(order[b * bs : (b + 1) * bs])
            inputs = _model_inputs(enc, train.waves[idx])
            y = torch.from_numpy(y_train[idx]).to(device)
            with _autocast(device, cfg.bf16):
                logits = clf(**inputs).logits.float()
            loss = nn.functional.cross_entropy(logits, y)
            (loss / accum).backward()
            window_loss += float(loss.detach()) * len(idx)
            window_n += len(idx)
            if (b + 1) % accum == 0 or b + 1 == n_batches:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in clf.parameters() if p.requires_grad], cfg.max_grad_norm
                )
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                global_step += 1
                if global_step % max(1, cfg.log_every) == 0 or b + 1 == n_batches:
                    dt = time.perf_counter() - window_t
                    row = {
                        "kind": "train",
                        "step": global_step,
                        "epoch": epoch + 1,
                        "epoch_progress": (b + 1) / n_batches,
                        "loss": window_loss / max(1, window_n),
                        "lr": sched.get_last_lr()[0],
                        "throughput": window_n / max(dt, 1e-9),
                        "time": _now(),
                    }
                    _append_jsonl(metrics_path, row)
                    progress(row)
                    window_loss, window_n, window_t = 0.0, 0, time.perf_counter()
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_s = time.perf_counter() - t_epoch
        epoch_times.append(epoch_s)
        train_seconds += epoch_s
        ev = evaluate(clf, enc, eval_waves, y_eval, batch_size=cfg.eval_batch_size, bf16=cfg.bf16)
        row = {
            "kind": "eval",
            "step": global_step,
            "epoch": epoch + 1,
            "accuracy": ev["accuracy"],
            "loss": ev["loss"],
            "epoch_seconds": epoch_s,
            "time": _now(),
        }
        improved = ev["accuracy"] > best["accuracy"]
        if improved:
            best = {"accuracy": ev["accuracy"], "epoch": epoch + 1}
            _save_dir_atomic(clf, enc, run / "best")
        _save_dir_atomic(clf, enc, run / "last")
        save_state(
            state_path,
            {
                "model": clf.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch + 1,
                "global_step": global_step,
                "best_accuracy": best["accuracy"],
                "best_epoch": best["epoch"],
                "train_seconds": train_seconds,
                "rng": _rng_state(),
            },
        )
        _append_jsonl(metrics_path, row)
        progress(row)
        log.info(
            "epoch %d/%d: eval accuracy %.4f loss %.4f (%.1f s)%s",
            epoch + 1, cfg.epochs, ev["accuracy"], ev["loss"], epoch_s, " *best*" if improved else "",
        )  # fmt: skip

    # Final: the best checkpoint's per-class accuracy and convexity.
    best_clf, best_enc = load_classifier(run / "best", device=device)
    final = evaluate(
        best_clf, best_enc, eval_waves, y_eval, batch_size=cfg.eval_batch_size, bf16=cfg.bf16
    )
    result: dict[str, Any] = {
        "model": cfg.model,
        "task": cfg.task,
        "prune_point": cfg.prune_point if cfg.prune_point is not None else n_layers,
        "n_layers": n_layers,
        "labels": labels,
        "n_train": len(y_train),
        "n_eval": len(y_eval),
        "eval_split": cfg.eval_split,
        "best_epoch": best["epoch"],
        "best_accuracy": final["accuracy"],
        "best_loss": final["loss"],
        "per_class_accuracy": final["per_class"],
        "params": params,
        "train_seconds": train_seconds,
        "epoch_seconds_median": float(np.median(epoch_times)) if epoch_times else None,
        "steps_per_epoch": opt_steps_per_epoch,
        "device": str(device),
        "checkpoints": {"best": str(run / "best"), "last": str(run / "last")},
    }
    if cfg.convexity and len(eval_waves):
        if stop():
            raise Cancelled("cancelled")
        log.info("convexity of word and speaker labels on the %s split", cfg.eval_split)
        words = [evals.words[i] for i in keep_eval]
        speakers = [evals.speakers[i] for i in keep_eval]
        tuned = convexity_curves(
            pooled_features(best_enc, eval_waves, cfg.eval_batch_size), words, speakers,
            max_pairs=cfg.convexity_max_pairs, seed=cfg.seed,
        )  # fmt: skip
        del best_clf, best_enc
        pre = load_encoder(cfg.model, whisper_input=cfg.whisper_input, device=device)
        if pre.n_layers != n_layers:
            prune(pre.model, n_layers)
        pretrained = convexity_curves(
            pooled_features(pre, eval_waves, cfg.eval_batch_size), words, speakers,
            max_pairs=cfg.convexity_max_pairs, seed=cfg.seed,
        )  # fmt: skip
        atomic_write_json(
            run / "convexity.json",
            {
                "split": cfg.eval_split,
                "n_clips": len(eval_waves),
                "relevant": "word" if cfg.task == "words" else "speaker",
                "pretrained": pretrained,
                "finetuned": tuned,
            },
        )
        result["convexity"] = {
            "pretrained": {k: v["scores"] for k, v in pretrained.items()},
            "finetuned": {k: v["scores"] for k, v in tuned.items()},
        }
    if cfg.test_split and cfg.test_split != cfg.eval_split:
        test = load_split(cfg, cfg.test_split)
        keep = [i for i, lab in enumerate(test.labels) if lab in lab2id]
        y_test = np.array([lab2id[test.labels[i]] for i in keep], dtype=np.int64)
        best_clf, best_enc = load_classifier(run / "best", device=device)
        scored = evaluate(
            best_clf, best_enc, test.waves[keep], y_test, batch_size=cfg.eval_batch_size,
            bf16=cfg.bf16,
        )  # fmt: skip
        result.update(
            test_split=cfg.test_split, test_accuracy=scored["accuracy"],
            test_loss=scored["loss"], test_per_class_accuracy=scored["per_class"],
        )  # fmt: skip
    result["total_seconds"] = time.perf_counter() - t_start
    atomic_write_json(run / "result.json", result)
    return result
