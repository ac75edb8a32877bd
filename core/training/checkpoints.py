"""The files a fine-tuning run keeps in its folder while it trains, written so a kill loses little.

``best/`` and ``last/``: ``save_pretrained`` model + feature extractor, replaced via a temp folder and
renames. ``state.pt``: model, optimizer, scheduler, epoch, RNG (tensors and plain containers only, read
back with ``torch.load(weights_only=True)``). The metrics rows are
:class:`core.io.run_folder.RunFolder`'s.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core.io.atomic import atomic_write_bytes
from core.models.encoder import SpeechEncoder

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "TrainState",
    "load_state",
    "repair_checkpoint_dirs",
    "save_model_dir",
    "save_state",
]

CHECKPOINT_DIRS = ("best", "last")


@dataclass
class TrainState:
    """Where training stands after a completed epoch (mutable: the loop advances it)."""

    epoch: int = 0
    global_step: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = 0
    train_seconds: float = 0.0


def save_model_dir(clf: PreTrainedModel, enc: SpeechEncoder, dest: Path) -> None:
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


def repair_checkpoint_dirs(run: Path) -> None:
    """Put back a ``best/``/``last/`` that a kill between the two renames of :func:`save_model_dir` left as ``.old``."""
    for name in CHECKPOINT_DIRS:
        old = run / f".{name}.old"
        if old.exists() and not (run / name).exists():
            os.replace(old, run / name)


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


def save_state(
    path: Path, clf: PreTrainedModel, opt: torch.optim.Optimizer, sched: Any, state: TrainState
) -> None:
    """Write ``state.pt`` (model, optimizer, scheduler, progress, RNG) atomically."""
    payload = {
        "model": clf.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": state.epoch,
        "global_step": state.global_step,
        "best_accuracy": state.best_accuracy,
        "best_epoch": state.best_epoch,
        "train_seconds": state.train_seconds,
        "rng": _rng_state(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(
    path: Path, clf: PreTrainedModel, opt: torch.optim.Optimizer, sched: Any
) -> TrainState:
    """Restore model, optimizer, scheduler and RNG from ``state.pt`` (``weights_only=True``); returns the progress."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    clf.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    _set_rng_state(saved["rng"])
    return TrainState(
        epoch=int(saved["epoch"]),
        global_step=int(saved["global_step"]),
        best_accuracy=float(saved["best_accuracy"]),
        best_epoch=int(saved["best_epoch"]),
        train_seconds=float(saved.get("train_seconds", 0.0)),
    )
