"""Speech encoders as sequence classifiers: build (pruned) from a pretrained encoder, reload, feed.

The classifier is transformers' own ``AutoModelForAudioClassification`` class of the family
(``Wav2Vec2ForSequenceClassification``, ``HubertForSequenceClassification``, ...,
``WhisperForAudioClassification``): the (pruned) encoder, a linear projector, mean pooling over valid
frames and a linear classifier. Its config carries the pruned depth, the trimmed Whisper window and the
label map, so ``save_pretrained`` checkpoints reload with ``from_pretrained`` (:func:`load_classifier`).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from core.errors import ModelError
from core.models.encoder import SpeechEncoder, default_feature_extractor
from core.models.loading import ResolvedModel, as_resolved, load_encoder
from core.models.plans import PruningPlan
from core.models.pruning import (
    apply_plan,
    encoder_of,
    head_parameters,
    params_by_prune_point,
    prune,
    speech_base_of,
)
from core.models.request import ModelRequest

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "autocast",
    "build_classifier",
    "classifier_params_by_prune_point",
    "classifier_encoder",
    "freeze_front_end",
    "load_classifier",
    "model_inputs",
]


def _auto_classifier_class() -> Any:
    """transformers' AutoModelForAudioClassification (imported lazily: transformers is slow to import)."""
    from transformers import AutoModelForAudioClassification

    return AutoModelForAudioClassification


def _default_device(device: str | torch.device | None) -> str | torch.device:
    """``device``, or CUDA when available, else CPU."""
    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def classifier_encoder(
    clf: nn.Module, feature_extractor: Any | None = None, whisper_input: str = "trimmed"
) -> SpeechEncoder:
    """A ``SpeechEncoder`` view (preprocessing, hidden states, pooling) over a classifier's encoder, sharing
    weights; a Whisper classifier runs in ``whisper_input`` mode (the one its encoder was loaded in)."""
    device = next(clf.parameters()).device
    base = speech_base_of(clf)
    return SpeechEncoder(
        base, feature_extractor=feature_extractor, whisper_input=whisper_input, device=device
    )


def build_classifier(
    model: ResolvedModel | ModelRequest | str | os.PathLike,
    labels: list[str],
    prune_point: int | PruningPlan | None = None,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[PreTrainedModel, SpeechEncoder]:
    """Pretrained encoder (pruned at ``prune_point``, or to a plan's layers) + the family's
    classification head for ``labels``."""
    resolved = as_resolved(model)
    enc = resolved.load(device="cpu")
    if isinstance(prune_point, PruningPlan):
        apply_plan(enc.model, prune_point)
    elif prune_point is not None and prune_point != enc.n_layers:
        prune(enc.model, int(prune_point))
    cfg = copy.deepcopy(enc.model.config)
    cfg.num_labels = len(labels)
    cfg.id2label = dict(enumerate(labels))
    cfg.label2id = {lab: i for i, lab in enumerate(labels)}
    cfg.architectures = None
    cfg.use_weighted_layer_sum = False
    torch.manual_seed(seed)
    clf = _auto_classifier_class().from_config(cfg)
    missing, unexpected = speech_base_of(clf).load_state_dict(enc.model.state_dict(), strict=False)
    bad = [k for k in missing if "masked_spec_embed" not in k] + list(unexpected)
    if bad:
        raise ModelError(
            f"the weights of {resolved.spec.key} do not fit its classifier class: {bad[:3]}"
        )
    clf.to(_default_device(device))
    return clf, classifier_encoder(clf, enc.feature_extractor, enc.input_mode)


def load_classifier(
    path: str | os.PathLike,
    device: str | torch.device | None = None,
    whisper_input: str = "trimmed",
) -> tuple[PreTrainedModel, SpeechEncoder]:
    """Reload a saved classifier checkpoint (``best/`` or ``last/``) and its feature extractor
    (``whisper_input``: the window a Whisper classifier was trained in)."""
    from transformers import AutoFeatureExtractor

    clf = _auto_classifier_class().from_pretrained(str(path))
    try:
        fe = AutoFeatureExtractor.from_pretrained(str(path))
    except Exception:  # an older checkpoint without preprocessor_config.json
        fe = default_feature_extractor(clf.config)
    clf.to(_default_device(device)).eval()
    return clf, classifier_encoder(clf, fe, whisper_input)


def freeze_front_end(clf: nn.Module) -> None:
    """Freeze the convolutional front-end (wav2vec2-style feature encoder; Whisper's two convs)."""
    freeze = getattr(clf, "freeze_feature_encoder", None)  # the wav2vec2 family's own method
    if freeze is not None:
        freeze()
        return
    enc = encoder_of(clf)
    for name in ("conv1", "conv2"):
        part = getattr(enc, name, None)
        if part is not None:
            part.requires_grad_(False)


def model_inputs(enc: SpeechEncoder, waves: np.ndarray) -> dict[str, torch.Tensor]:
    """Preprocessed classifier inputs (without ``lengths``) for (B, S) waveforms, on the encoder's device."""
    inputs = enc.preprocess(waves)
    return {
        key: inputs[key].to(enc.device, non_blocking=True)
        for key in ("input_values", "input_features", "attention_mask")
        if key in inputs
    }


def batched_inputs(
    enc: SpeechEncoder, waves: np.ndarray, batches: Sequence[np.ndarray], prefetch: bool
) -> Iterator[dict[str, torch.Tensor]]:
    """``model_inputs`` of each batch of ``waves`` (row indices), in order.

    With ``prefetch`` the next batch is preprocessed in a background thread while the caller trains on
    the current one, so audio preprocessing (e.g. Whisper's log-mel) does not starve a GPU; on a CPU,
    where it would compete with the training threads, use ``prefetch=False``.
    """
    if not prefetch:
        for idx in batches:
            yield model_inputs(enc, waves[idx])
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="preprocess") as pool:
        pending = [pool.submit(model_inputs, enc, waves[idx]) for idx in batches[:1]]
        for b in range(len(batches)):
            inputs = pending.pop().result()
            if b + 1 < len(batches):
                pending.append(pool.submit(model_inputs, enc, waves[batches[b + 1]]))
            yield inputs


def autocast(device: torch.device, bf16: bool = True) -> AbstractContextManager:
    """bf16 autocast on CUDA when ``bf16``; nothing elsewhere."""
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@functools.lru_cache(maxsize=16)
def _classifier_counts(
    model: str, n_classes: int, whisper_input: str
) -> tuple[tuple[int, tuple[tuple[str, int], ...]], ...]:
    """Cached body of :func:`classifier_params_by_prune_point` (immutable, so callers cannot change it)."""
    enc = load_encoder(model, whisper_input=whisper_input, device="cpu")
    head = head_parameters(enc.model.config, n_classes)
    out = []
    for p, counts in params_by_prune_point(enc).items():
        row = {**counts, "total": counts["total"] + head, "head": counts["head"] + head}
        row["trainable"] = counts["trainable"] + head
        out.append((p, tuple(row.items())))
    return tuple(out)


def classifier_params_by_prune_point(
    model: str, n_classes: int, *, whisper_input: str = "trimmed"
) -> dict[int, dict[str, int]]:
    """The parameters a fine-tuning run of ``model`` has at every prune point 1..L: the (pruned) encoder
    plus the classification head for ``n_classes`` classes, counted as the run's ``result.json`` counts
    them (``count_parameters`` of the classifier). The one definition the dashboard shows."""
    return {
        p: dict(row) for p, row in _classifier_counts(str(model), int(n_classes), whisper_input)
    }
