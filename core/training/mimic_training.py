"""Training mimicking layers (``core.models.mimic``) on unlabelled clips, and their retraining-free score.

Recipe (after Dorszewski et al., ICASSP 2025, arXiv 2409.16302; what was chosen where the paper's
details were not available is said in ``core.models.mimic``): the full model runs frozen and gives,
per clip, the frame-level output of each mimicked block's last layer (the target). The pruned model
(the blocks' first layers kept, the rest dropped) runs with only its mimicking layers trainable; each
mimicking layer's output frames are pulled towards its block's target by mean squared error over the
valid frames, summed over the blocks. Adam, a fixed learning rate, a few epochs over the train split's
clips in a seeded order; no labels are read. The block-output MSE is measured on the test split's
clips before training (the block plan without retraining: the first layer alone) and after.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.data.audio import load_clips
from core.data.features import CacheEntry, FeatureSet
from core.errors import Cancelled, TrainingError
from core.io.records import Record
from core.models.encoder import SpeechEncoder
from core.models.mimic import MimicPlan, mimic_layers, mimic_model, mimic_parameters
from core.models.pruning import encoder_of
from core.results.kinds.plans import PlanScore
from core.training.probe_score import ProbeOptions, score_plan

__all__ = [
    "MimicClips",
    "MimicConfig",
    "MimicResult",
    "TrainedMimic",
    "block_mse",
    "mimic_clips",
    "score_mimic",
    "train_mimic",
    "weights_digest",
]


@dataclass(frozen=True)
class MimicConfig(Record):
    """How mimicking layers are trained."""

    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 16
    max_clips: int = 0  # train clips used (0: all of the split)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.max_clips < 0:
            raise TrainingError("epochs and batch size must be at least 1, max clips 0 or more")
        if not 0 < self.lr < 1:
            raise TrainingError(f"the learning rate must lie in (0, 1), got {self.lr}")


@dataclass(frozen=True)
class MimicResult(Record):
    """What training did: block-output MSE before (first layer alone) and after, sizes and time."""

    mimic: MimicPlan
    config: MimicConfig
    mse_before: tuple[float, ...]  # per block, on the evaluation clips
    mse_after: tuple[float, ...]
    losses: tuple[float, ...]  # mean training loss per epoch
    mimic_parameters: int
    n_train: int
    n_eval: int
    seconds: float


@dataclass(frozen=True)
class TrainedMimic:
    """The pruned model with trained mimicking layers, and how it was trained."""

    encoder: SpeechEncoder
    result: MimicResult


def _states(encoder: SpeechEncoder, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Hidden states 0..L with gradients, the final LayerNorm on the last as ``hidden_states`` does."""
    model_inputs = {
        k: inputs[k].to(encoder.device)
        for k in ("input_values", "input_features", "attention_mask")
        if k in inputs
    }
    out = encoder.model(**model_inputs, output_hidden_states=True, return_dict=True)
    states = list(out.hidden_states)
    if encoder.final_layer_norm and states[-1] is not out.last_hidden_state:
        states[-1] = encoder_of(encoder.model).layer_norm(states[-1])
    return states


def _loss(
    pruned: SpeechEncoder,
    full: SpeechEncoder,
    mimic: MimicPlan,
    waves: np.ndarray,
) -> list[torch.Tensor]:
    """Per block, the mean squared error over valid frames between mimicking layer and block output."""
    inputs = full.preprocess(waves)
    targets, mask = full.encode(inputs)
    states = _states(pruned, inputs)
    weight = mask.to(states[0].dtype)[..., None]
    n = weight.sum() * states[0].shape[-1]
    out = []
    for block, position in zip(mimic.blocks, mimic.positions(), strict=True):
        diff = states[position] - targets[block.last].to(states[position].dtype)
        out.append((diff.pow(2) * weight).sum() / n)
    return out


def block_mse(
    pruned: SpeechEncoder,
    full: SpeechEncoder,
    mimic: MimicPlan,
    waves: np.ndarray,
    batch_size: int = 32,
) -> tuple[float, ...]:
    """Per block, the frame MSE between the pruned model's mimicking layer and the block's output."""
    totals = np.zeros(len(mimic.blocks))
    with torch.no_grad():
        for i in range(0, len(waves), batch_size):
            chunk = waves[i : i + batch_size]
            totals += len(chunk) * np.array([float(x) for x in _loss(pruned, full, mimic, chunk)])
    return tuple(float(x) for x in totals / max(1, len(waves)))


def train_mimic(
    full: SpeechEncoder,
    mimic: MimicPlan,
    train_waves: np.ndarray,
    eval_waves: np.ndarray,
    config: MimicConfig = MimicConfig(),
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainedMimic:
    """Train the mimicking layers of ``mimic`` on ``train_waves`` (B, S); the full model stays as it is.
    ``progress(done, total)`` counts batches; ``should_stop()`` cancels between batches."""
    if mimic.n_layers != full.n_layers:
        raise TrainingError(
            f"the mimic plan is for {mimic.n_layers} layers; the model has {full.n_layers}"
        )
    if len(train_waves) == 0 or len(eval_waves) == 0:
        raise TrainingError("mimicking layers need train and evaluation clips")
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    pruned = copy.copy(full)
    pruned.model = mimic_model(copy.deepcopy(full.model), mimic)
    pruned.model.eval()  # no dropout: the layer learns the block's deterministic output
    for p in pruned.model.parameters():
        p.requires_grad_(False)
    params = [p for layer in mimic_layers(pruned.model, mimic) for p in layer.parameters()]
    for p in params:
        p.requires_grad_(True)
    before = block_mse(pruned, full, mimic, eval_waves)
    optimiser = torch.optim.Adam(params, lr=config.lr)
    rng = np.random.default_rng(config.seed)
    n_batches = -(-len(train_waves) // config.batch_size)
    losses = []
    for epoch in range(config.epochs):
        order = rng.permutation(len(train_waves))
        total = 0.0
        for b in range(n_batches):
            if should_stop is not None and should_stop():
                raise Cancelled("mimic training was cancelled")
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            loss = torch.stack(_loss(pruned, full, mimic, train_waves[idx])).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
            if progress is not None:
                progress(epoch * n_batches + b + 1, config.epochs * n_batches)
        losses.append(total / len(train_waves))
    for p in params:
        p.requires_grad_(False)
    after = block_mse(pruned, full, mimic, eval_waves)
    result = MimicResult(
        mimic=mimic,
        config=config,
        mse_before=before,
        mse_after=after,
        losses=tuple(losses),
        mimic_parameters=mimic_parameters(pruned.model, mimic),
        n_train=len(train_waves),
        n_eval=len(eval_waves),
        seconds=time.perf_counter() - t0,
    )
    return TrainedMimic(pruned, result)


@dataclass(frozen=True)
class MimicClips:
    """Waveforms (N, S) the mimic trains on and is measured on."""

    train: np.ndarray
    test: np.ndarray


def mimic_clips(
    features: FeatureSet, base: CacheEntry, task: str, max_clips: int = 0, seed: int = 0
) -> MimicClips:
    """(train, test) waveforms of the feature set's clips by the task's split (labels unused);
    ``max_clips`` > 0 draws at most that many train clips, seeded."""
    split_of = dict(zip(base.table.paths, base.table.splits(task), strict=True))
    root = base.table.root
    paths = list(features.paths)
    train = [p for p in paths if split_of.get(p) == "train"]
    test = [p for p in paths if split_of.get(p) == "test"]
    if max_clips and len(train) > max_clips:
        pick = np.sort(np.random.default_rng(seed).choice(len(train), max_clips, replace=False))
        train = [train[i] for i in pick]
    if not train or not test:
        raise TrainingError(
            f"mimicking layers need train and test clips; this selection has {len(train)} and {len(test)}"
        )
    train_waves, _ = load_clips([root / p for p in train])
    test_waves, _ = load_clips([root / p for p in test])
    return MimicClips(train_waves, test_waves)


def weights_digest(trained: TrainedMimic) -> str:
    """A short hash of the mimicking layers' weights (keys the trained model's features apart)."""
    h = hashlib.sha256()
    for layer in mimic_layers(trained.encoder.model, trained.result.mimic):
        for name, tensor in sorted(layer.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def score_mimic(
    full: SpeechEncoder,
    full_features: FeatureSet,
    base: CacheEntry,
    trained: TrainedMimic,
    options: ProbeOptions,
    progress: Callable[[int, int], None] | None = None,
) -> PlanScore:
    """The trained model's retraining-free probe scores, as ``score_plan`` scores its plan (features
    cached under the plan plus the mimicking layers' weights)."""
    return score_plan(
        full,
        full_features,
        base,
        trained.result.mimic.plan,
        options,
        progress=progress,
        encoder=trained.encoder,
        variant={"mimic": weights_digest(trained)},
    )
