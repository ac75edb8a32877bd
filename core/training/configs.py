"""The settings of a fine-tuning run, a prune sweep and a cost benchmark, as stored in a run's ``config.json``.

Plain dataclasses without torch, so the CLI can build its options (and ``--help``) without importing
the training stack.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, Self

from core.data.source import ClipSource, Selection
from core.errors import TrainingError
from core.io.records import Record, from_dict
from core.models.identity import ModelIdentity
from core.models.plans import PruningPlan, parse_plan
from core.models.registry import INPUT_MODES
from core.models.request import ModelRequest

__all__ = [
    "PAPER_RECIPE",
    "BenchmarkConfig",
    "DataSelection",
    "FinetuneConfig",
    "Optimiser",
    "Probes",
    "SweepConfig",
    "point_name",
    "run_plan",
    "setting_fields",
]

# The paper's fine-tuning recipe (Dorszewski et al.: Speech Commands, 20 epochs, batch 32, lr 3e-5,
# best on validation, scored on test): the CLI's --paper and the grid preset these settings.
PAPER_RECIPE: dict[str, Any] = {
    "dataset": "speech-commands",
    "epochs": 20,
    "batch_size": 32,
    "lr": 3e-5,
    "eval_split": "validation",
    "test_split": "test",
}


PLAN_HELP = (
    "pruning plan: 'drop 3-4' or 'keep 1-2, 5-12' (any layers kept, in order; instead of "
    "--prune-point)"
)


def run_plan(prune_point: int | None, plan: str | None, n_layers: int) -> PruningPlan:
    """The layers a run keeps of a model of ``n_layers``: its ``plan`` text, else the top-p
    ``prune_point`` (:meth:`PruningPlan.top`), else every layer; one LabError line for a bad plan or
    for both given."""
    if plan is not None and str(plan).strip() == "":
        raise TrainingError("the plan is empty: write it like 'drop 3-4' or 'keep 1-4'")
    if plan is not None and prune_point is not None:
        raise TrainingError("give a plan or a prune point, not both")
    if plan is not None:
        return parse_plan(plan, n_layers)
    if prune_point is not None:
        return PruningPlan.top(prune_point, n_layers)
    return PruningPlan.keep(range(1, n_layers + 1), n_layers)


def point_name(plan: PruningPlan) -> str:
    """A sweep point's name in its folder and file names: the depth of a top plan (``p8/``), else the
    plan's key (``pL12-k1-2.5-12/``)."""
    return str(plan.size) if plan.is_top else plan.key()


def _identity(value: ModelIdentity | dict[str, Any] | None) -> ModelIdentity | None:
    """A pinned model identity as the record (config.json holds it as an object)."""
    return ModelIdentity.from_dict(value) if isinstance(value, dict) else value


@dataclass(frozen=True)
class DataSelection(Record):
    """Which clips a run trains, selects and is scored on: their source, the task, the three splits
    and their seeded caps. Each split is a :class:`Selection` of the source (:meth:`selection`)."""

    source: ClipSource = field(default_factory=ClipSource, metadata={"part": True})
    task: str = field(
        default="words",
        metadata={"help": "classify words or speakers", "choices": ("words", "speakers")},
    )
    train_split: str = field(default="train", metadata={"help": "split trained on"})
    eval_split: str = field(
        default="validation",
        metadata={"help": "split evaluated every epoch; picks the best checkpoint"},
    )
    test_split: str | None = field(
        default="test",
        metadata={"help": "split the best checkpoint is scored on (none: eval_split)"},
    )
    max_train_clips: int | None = field(
        default=None,
        metadata={"help": "seeded stratified subsample of the training split (none: all)"},
    )
    max_eval_clips: int | None = field(
        default=None,
        metadata={"help": "seeded stratified subsample of the evaluation split (none: all)"},
    )
    max_test_clips: int | None = field(
        default=None,
        metadata={"help": "seeded stratified subsample of the test split (none: all)"},
    )

    @property
    def separate_test(self) -> bool:
        """Whether the scored split is another than the one the best checkpoint is chosen on."""
        return bool(self.test_split) and self.test_split != self.eval_split

    def selection(self, role: Literal["train", "eval", "test"], seed: int = 0) -> Selection:
        """The clips of the ``role`` split (its name and cap; ``test`` without a separate test split:
        the eval split), subsampled with ``seed`` (the run's): the same clips extraction selects."""
        split, cap = {
            "train": (self.train_split, self.max_train_clips),
            "eval": (self.eval_split, self.max_eval_clips),
            "test": (str(self.test_split), self.max_test_clips)
            if self.separate_test
            else (self.eval_split, self.max_eval_clips),
        }[role]
        return Selection(self.source, task=self.task, split=split, max_clips=cap, seed=seed)


@dataclass(frozen=True)
class Optimiser(Record):
    """How a run trains: epochs, batches, the AdamW schedule, the seed, the device and what it keeps."""

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
    log_every: int = field(
        default=10, metadata={"help": "log a training row every this many optimizer steps"}
    )
    max_steps_per_epoch: int | None = field(
        default=None,
        metadata={"help": "cap on optimizer steps per epoch (quick looks; none: the whole split)"},
    )
    keep_epochs: bool = field(
        default=False,
        metadata={
            "help": "keep every epoch's weights in the run folder (epochs/e<k>/; disk: one model per "
            "epoch), so a checkpoint series can be made from them later"
        },
    )

    def check(self) -> None:
        """Raise :class:`TrainingError` for settings no run can train with."""
        for name in ("epochs", "batch_size", "eval_batch_size", "grad_accum"):
            if int(getattr(self, name)) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainingError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup_ratio <= 1:
            raise TrainingError(f"warmup_ratio must lie in 0..1, got {self.warmup_ratio}")


@dataclass(frozen=True)
class Probes(Record):
    """What a run measures besides accuracy: convexity at the end and along training."""

    convexity: bool = field(
        default=True,
        metadata={
            "help": "measure pretrained and fine-tuned convexity on the scored (test) clips at the end"
        },
    )
    convexity_max_pairs: int | None = field(
        default=5000,
        metadata={"help": "sampled pairs per class for convexity (none: every pair, exact)"},
    )
    trajectory: bool = field(
        default=True,
        metadata={
            "help": "measure word and speaker convexity of the model being trained before the first "
            "step and after every epoch, on a fixed probe set of selection-split clips"
        },
    )
    trajectory_clips: int | None = field(
        default=256,
        metadata={
            "help": "clips of the probe set (seeded subset of the selection split; none: all)"
        },
    )
    trajectory_target_se: float = field(
        default=0.01,
        metadata={"help": "target standard error of each probe curve's layer scores"},
    )
    trajectory_every: int = field(
        default=0,
        metadata={"help": "also measure every this many optimizer steps (0: once per epoch)"},
    )

    def check(self) -> None:
        """Raise :class:`TrainingError` for probe settings no run can measure with."""
        if not 0 < self.trajectory_target_se < 1:
            raise TrainingError(
                f"trajectory_target_se must lie in (0, 1), got {self.trajectory_target_se}"
            )
        if self.trajectory_clips is not None and int(self.trajectory_clips) < 12:
            raise TrainingError(
                f"trajectory_clips must be at least 12 (a curve needs more clips than neighbours), "
                f"got {self.trajectory_clips}"
            )
        if int(self.trajectory_every) < 0:
            raise TrainingError(f"trajectory_every must be 0 or more, got {self.trajectory_every}")


def setting_fields(config_cls: type) -> list[tuple[Field[Any], Any]]:
    """Every setting of a config class with its type, as one flat list: its own fields, and the
    settings of its records (fields marked ``part``, at any depth) in place of them; what
    ``config.json`` and the CLI's options name."""
    out: list[tuple[Field[Any], Any]] = []
    hints = typing.get_type_hints(config_cls)
    for f in fields(config_cls):
        if f.metadata.get("part"):
            out.extend(setting_fields(hints[f.name]))
        else:
            out.append((f, hints[f.name]))
    order = {name: i for i, name in enumerate(getattr(config_cls, "SETTING_ORDER", ()))}
    return sorted(out, key=lambda pair: order.get(pair[0].name, len(order)))


def _parts(config_cls: type) -> dict[str, type]:
    """The record fields of a config class (marked ``part``) by name, with their record types."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in fields(config_cls) if f.metadata.get("part")}


def _flat(config_cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``asdict`` of a config with each record's settings in place of the record, at every depth."""
    parts = _parts(config_cls)
    out: dict[str, Any] = {}
    for name, value in values.items():
        out.update(_flat(parts[name], value) if name in parts else {name: value})
    return out


def _nested(config_cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (flat, nested or both) with each record's settings gathered under the record's
    name, at every depth; a nested value wins over a flat one."""
    out = dict(data)
    for name, part in _parts(config_cls).items():
        nested = out.get(name)
        own = {f.name: out.pop(f.name) for f, _ in setting_fields(part) if f.name in out}
        out[name] = _nested(part, {**own, **nested} if isinstance(nested, Mapping) else own)
    return out


@dataclass
class FinetuneConfig(Record):
    """Everything a fine-tuning run needs: the model and the layers it keeps, which clips
    (:class:`DataSelection`), how it trains (:class:`Optimiser`) and what it measures
    (:class:`Probes`). Stored flat as the run's ``config.json`` (one key per setting, as ever)."""

    model: str = field(
        metadata={"help": 'preset key (see "models"), Hugging Face id or model directory'}
    )
    prune_point: int | None = field(
        default=None,
        metadata={"help": "prune point p: keep transformer layers 1..p (default: the full model)"},
    )
    plan: str | None = field(default=None, metadata={"help": PLAN_HELP})
    whisper_input: str = field(
        default="trimmed",
        metadata={
            "help": "Whisper only: 'trimmed' runs the encoder on the 1-s clip, 'padded' on the 30-s window",
            "choices": INPUT_MODES,
        },
    )
    model_identity: ModelIdentity | None = field(
        default=None,
        metadata={"cli": False, "help": "the weights the run is pinned to (recorded at launch)"},
    )
    data: DataSelection = field(default_factory=DataSelection, metadata={"part": True})
    optimiser: Optimiser = field(default_factory=Optimiser, metadata={"part": True})
    probes: Probes = field(default_factory=Probes, metadata={"part": True})

    # The order of the CLI's options, as when every setting was a field of this class; a setting
    # not named here (a subclass's own) follows them.
    SETTING_ORDER: ClassVar[tuple[str, ...]] = (
        *("model", "prune_point", "plan", "dataset", "root", "task", "speaker_regex"),
        *("train_split", "eval_split", "test_split"),
        *("max_train_clips", "max_eval_clips", "max_test_clips", "min_clips", "split_seed"),
        *("epochs", "batch_size", "eval_batch_size", "lr", "weight_decay", "warmup_ratio"),
        *("grad_accum", "max_grad_norm", "freeze_front_end", "seed", "device", "bf16"),
        *("whisper_input", "log_every", "max_steps_per_epoch", "convexity", "convexity_max_pairs"),
        *("keep_epochs", "trajectory", "trajectory_clips", "trajectory_target_se"),
        "trajectory_every",
    )

    def __post_init__(self) -> None:
        self.model_identity = _identity(self.model_identity)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The config of a flat ``config.json`` (every setting a key, as runs write it) or of one
        with its records nested; the shared typed reader checks every field."""
        if not isinstance(data, Mapping):
            return from_dict(cls, data)
        return from_dict(cls, _nested(cls, data))

    @property
    def request(self) -> ModelRequest:
        """The model the run trains."""
        return ModelRequest(str(self.model), self.whisper_input)

    def pruning_plan(self, n_layers: int) -> PruningPlan:
        """The layers the run keeps of the model's ``n_layers`` (its plan, prune point or all)."""
        return run_plan(self.prune_point, self.plan, n_layers)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON, one key per setting (the records' fields in place of the records)."""
        return _flat(type(self), asdict(self))

    def check(self) -> None:
        """Raise :class:`TrainingError` for settings no run can use."""
        self.optimiser.check()
        self.probes.check()

    @property
    def separate_test(self) -> bool:
        """Whether the best checkpoint is scored on a split other than the one it was chosen on."""
        return self.data.separate_test


@dataclass
class SweepConfig(FinetuneConfig):
    """A fine-tune config plus the prune points (ints, ``"suggested"``, ``"full"``) and the rule's fraction."""

    points: list[Any] = field(
        default_factory=lambda: ["full", "suggested"],
        metadata={"help": "comma list of prune points: ints, 'full', 'suggested'"},
    )
    fraction: float = field(
        default=0.95, metadata={"help": "suggest the first p reaching this fraction of the maximum"}
    )
    convexity_split: str = field(
        default="train", metadata={"help": "split the pretrained convexity curve is computed on"}
    )
    convexity_max_clips: int | None = field(
        default=None, metadata={"help": "clips for the pretrained convexity curve (none: all)"}
    )
    benchmark: bool = field(
        default=True, metadata={"help": "benchmark full vs pruned cost at every point"}
    )

    def check(self) -> None:
        """Raise :class:`TrainingError` for settings no sweep can use."""
        super().check()
        if not 0 < self.fraction <= 1:
            raise TrainingError(f"fraction must lie in (0, 1], got {self.fraction}")


@dataclass
class BenchmarkConfig(Record):
    """The settings of one full-vs-pruned cost benchmark: one set of defaults for the CLI, the page and sweeps."""

    model: str = field(
        metadata={"help": 'preset key (see "models"), Hugging Face id or model directory'}
    )
    prune_point: int | None = field(
        default=None,
        metadata={"help": "prune point p: the pruned model keeps transformer layers 1..p"},
    )
    plan: str | None = field(default=None, metadata={"help": PLAN_HELP})
    n_labels: int = field(default=35, metadata={"help": "classes of the classifier head"})
    train_batch: int = field(default=8, metadata={"help": "clips per timed training step"})
    infer_batch: int = field(default=32, metadata={"help": "clips per timed inference batch"})
    warmup: int = field(default=2, metadata={"help": "untimed warm-up rounds"})
    repeats: int = field(
        default=5, metadata={"help": "timed repeats (full and pruned interleaved in each)"}
    )
    timing_threads: int | None = field(
        default=1,
        metadata={
            "help": "torch threads while timing (1 keeps a shared CPU steady; none: torch's choice)"
        },
    )
    n_train_clips: int | None = field(
        default=None, metadata={"help": "clips per training epoch, for the epoch estimate"}
    )
    device: str | None = field(
        default=None, metadata={"help": "cpu, cuda, cuda:1 ... (none: cuda if available)"}
    )
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA"})
    seed: int = field(default=0, metadata={"help": "seed of the head init and the random inputs"})
    whisper_input: str = field(
        default="trimmed",
        metadata={
            "help": "Whisper only: 'trimmed' runs the encoder on the 1-s clip, 'padded' on the 30-s window",
            "choices": INPUT_MODES,
        },
    )
    model_identity: ModelIdentity | None = field(
        default=None,
        metadata={"cli": False, "help": "the weights the run is pinned to (recorded at launch)"},
    )

    def __post_init__(self) -> None:
        self.model_identity = _identity(self.model_identity)

    @property
    def request(self) -> ModelRequest:
        """The model the benchmark times."""
        return ModelRequest(str(self.model), self.whisper_input)

    def pruning_plan(self, n_layers: int) -> PruningPlan:
        """The layers the pruned side keeps of the model's ``n_layers``."""
        return run_plan(self.prune_point, self.plan, n_layers)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON, every field written (``from_dict``: the shared typed reader)."""
        return asdict(self)

    def check(self, n_layers: int | None = None) -> None:
        """Raise :class:`TrainingError` for settings no benchmark can use (``n_layers``: the model's depth)."""
        for name in ("n_labels", "train_batch", "infer_batch", "repeats"):
            if int(getattr(self, name)) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if int(self.warmup) < 0:
            raise TrainingError(f"warmup must be 0 or more, got {self.warmup}")
        if self.timing_threads is not None and int(self.timing_threads) < 1:
            raise TrainingError(f"timing_threads must be at least 1, got {self.timing_threads}")
        if self.prune_point is None and self.plan is None:
            raise TrainingError("a benchmark needs a prune point or a plan (the pruned side)")
        if self.prune_point is not None and (
            int(self.prune_point) < 1 or (n_layers is not None and int(self.prune_point) > n_layers)
        ):
            upper = f"1..{n_layers}" if n_layers is not None else "1 or more"
            raise TrainingError(
                f"prune point {self.prune_point} is out of range for {self.model}: it must be {upper}"
            )
        if n_layers is not None:
            self.pruning_plan(n_layers)
