"""The clips a fine-tuning run uses: the training, selection (validation) and test splits of one task.

Labels are numbered from the training split's classes; clips of classes it does not have are dropped
from the other splits (and counted). :func:`split_rule` states in one line how the dataset's splits
were made for the task, so a result says what "test" meant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from core.data.audio import load_clips_report
from core.data.datasets import (
    SPEAKER_FRACTIONS,
    VALIDATION_LIST,
    ClipTable,
    class_counts,
    label_set,
)
from core.data.source import Selection
from core.errors import LabError, TrainingError

if TYPE_CHECKING:
    from core.training.configs import FinetuneConfig

__all__ = [
    "DataPlan",
    "LabelledClips",
    "SplitData",
    "TaskData",
    "check_task_data",
    "clip_table",
    "load_split",
    "load_task_data",
    "load_test_clips",
    "split_rule",
]

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """Waveforms (N, 16000) float32 and labels of one split, as loaded."""

    waves: np.ndarray
    labels: list[str]
    words: list[str]
    speakers: list[str]
    paths: list[str]
    n_skipped: int


@dataclass
class LabelledClips:
    """One split's clips of the classes seen in training: waveforms (N, S), class ids (N,), both labels."""

    split: str
    waves: np.ndarray
    targets: np.ndarray
    words: list[str]
    speakers: list[str]
    n_dropped: int  # clips of a class the training split does not have

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class TaskData:
    """The clip table, the class list (from the training split) and the clips for training and selection."""

    table: ClipTable
    classes: list[str]
    train: LabelledClips
    selection: LabelledClips


def clip_table(cfg: FinetuneConfig) -> ClipTable:
    """The full clip table of the configured dataset."""
    return cfg.data.source.table()


def _split(cfg: FinetuneConfig, role: Literal["train", "eval", "test"]) -> Selection:
    """The clips of the run's ``role`` split, subsampled with the run's seed."""
    return cfg.data.selection(role, cfg.optimiser.seed)


def _read(selection: Selection, full: ClipTable) -> SplitData:
    """Load the audio of ``selection``'s clips of ``full`` into memory (bad files are skipped and
    counted)."""
    table, task = selection.pick(full), selection.task
    report = load_clips_report(table.abs_paths())
    kept = [int(i) for i in report.kept]
    labels = table.labels(task)
    return SplitData(
        waves=np.ascontiguousarray(report.clips[kept]) if kept else report.clips[:0],
        labels=[labels[i] for i in kept],
        words=[table.words[i] for i in kept],
        speakers=[table.speakers[i] for i in kept],
        paths=[table.paths[i] for i in kept],
        n_skipped=len(report.skipped),
    )


def load_split(
    cfg: FinetuneConfig,
    split: str,
    max_clips: int | None = None,
    task: str | None = None,
    *,
    table: ClipTable | None = None,
) -> SplitData:
    """Load one split of the configured task into memory (bad files are skipped and counted)."""
    selection = Selection(
        cfg.data.source,
        task=task or cfg.data.task,
        split=split,
        max_clips=max_clips,
        seed=cfg.optimiser.seed,
    )
    return _read(selection, table if table is not None else clip_table(cfg))


def _labelled(data: SplitData, split: str, lab2id: dict[str, int]) -> LabelledClips:
    """Keep the clips of known classes and number their labels."""
    keep = [i for i, lab in enumerate(data.labels) if lab in lab2id]
    return LabelledClips(
        split=split,
        waves=data.waves[keep],
        targets=np.array([lab2id[data.labels[i]] for i in keep], dtype=np.int64),
        words=[data.words[i] for i in keep],
        speakers=[data.speakers[i] for i in keep],
        n_dropped=len(data.labels) - len(keep),
    )


def split_rule(table: ClipTable, task: str) -> str:
    """One line saying how ``table``'s splits were made for ``task`` (stored in ``result.json``)."""
    shares = "/".join(str(round(100 * f)) for f in SPEAKER_FRACTIONS)
    if task == "speakers":
        return (
            f"speakers: each speaker's clips split {shares} (seed {table.split_seed}); validation "
            "and test hold unseen clips of speakers seen in training"
        )
    if (table.root / VALIDATION_LIST).is_file():
        return "words: the dataset's validation/testing lists"
    return f"words: each word's clips split {shares} (seed {table.split_seed})"


@dataclass(frozen=True)
class DataPlan:
    """The clips a run will use, counted from the clip table alone (no audio read)."""

    classes: tuple[str, ...]
    n_train: int
    n_selection: int
    n_test: int | None  # None: scored on the selection split


def _too_few_classes(cfg: FinetuneConfig, table: ClipTable, classes: list[str]) -> TrainingError:
    """One line for a task with fewer than two classes (e.g. a folder whose clips are all one word)."""
    what = label_set(cfg.data.task)
    found = f"only the {what} {classes[0]!r}" if classes else f"no {what}"
    if cfg.data.task == "words" and len(class_counts(table, "words")) < 2:
        where = "every clip is in one word sub-folder"
    else:
        where = f"its {cfg.data.train_split} split has {found}"
    return TrainingError(
        f"cannot fine-tune a {cfg.data.task} classifier on {table.root.name!r}: {where}; "
        f"it needs at least 2 {what}s"
    )


def check_task_data(cfg: FinetuneConfig) -> DataPlan:
    """Check a run's data before it starts: the folder, the speaker rule, >= 2 classes, every split."""
    table = clip_table(cfg)
    train = _split(cfg, "train").pick(table)
    classes = sorted(set(train.labels(cfg.data.task)))
    if len(classes) < 2:
        raise _too_few_classes(cfg, table, classes)
    known = set(classes)

    def count(role: Literal["eval", "test"]) -> int:
        selection = _split(cfg, role)
        try:
            chosen = selection.pick(table)
        except LabError:
            chosen = None
        n = sum(lab in known for lab in chosen.labels(cfg.data.task)) if chosen is not None else 0
        if not n:
            raise TrainingError(
                f"the {selection.split} split of {table.root.name!r} has no clip of a "
                f"{cfg.data.task[:-1]} seen in training: add clips or choose fewer classes"
            )
        return n

    n_selection = count("eval")
    n_test = count("test") if cfg.separate_test else None
    return DataPlan(tuple(classes), len(train), n_selection, n_test)


def load_task_data(cfg: FinetuneConfig) -> TaskData:
    """Step 1: the training and selection clips; checks the test split can be scored before any training."""
    log.info("loading data: %s/%s", cfg.data.source.dataset, cfg.data.task)
    table = clip_table(cfg)
    train = _read(_split(cfg, "train"), table)
    classes = sorted(set(train.labels))
    if len(classes) < 2:
        raise _too_few_classes(cfg, table, classes)
    lab2id = {lab: i for i, lab in enumerate(classes)}
    selection = _labelled(_read(_split(cfg, "eval"), table), cfg.data.eval_split, lab2id)
    if not len(selection):
        raise TrainingError(
            f"the {cfg.data.eval_split} split has no clip of a class seen in training"
        )
    if cfg.separate_test:
        test = _split(cfg, "test").pick(table)
        if not set(test.labels(cfg.data.task)) & set(classes):
            raise TrainingError(
                f"the {cfg.data.test_split} split has no clip of a class seen in training"
            )
    log.info(
        "%d train clips, %d %s clips (%d dropped: class not in train), %d classes",
        len(train.labels),
        len(selection),
        cfg.data.eval_split,
        selection.n_dropped,
        len(classes),
    )
    return TaskData(table, classes, _labelled(train, cfg.data.train_split, lab2id), selection)


def load_test_clips(cfg: FinetuneConfig, data: TaskData) -> LabelledClips:
    """The clips the best checkpoint is scored on: the test split, or the selection split without one."""
    if not cfg.separate_test:
        return data.selection
    lab2id = {lab: i for i, lab in enumerate(data.classes)}
    test = _split(cfg, "test")
    return _labelled(_read(test, data.table), test.split, lab2id)
