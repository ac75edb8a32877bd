"""Layer pruning and parameter accounting for every speech-encoder family the registry supports.

Prune point ``p`` (``1 <= p <= L``) keeps the front-end (convolutional feature encoder, projection,
positional embedding) and transformer layers ``1..p``; the other layers are deleted, not merely
skipped, and the config is updated so ``save_pretrained`` -> ``from_pretrained`` rebuilds the
pruned depth. A classification head on top then reads hidden state ``p``.

Families with a final LayerNorm after the last transformer layer (Whisper, and wav2vec2-style models
with ``do_stable_layer_norm=True``) keep that LayerNorm: after pruning it is applied to the output of
layer ``p`` instead of layer ``L``, exactly as the architecture prescribes for a ``p``-layer model.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from core.errors import PruneError
from core.models.plans import PruningPlan

__all__ = [
    "apply_plan",
    "check_prune_point",
    "PruneError",
    "count_parameters",
    "encoder_of",
    "params_by_plan",
    "params_by_prune_point",
    "prune",
    "transformer_layers",
]


def _unwrap(model: Any) -> nn.Module:
    """Return the torch module behind a ``SpeechEncoder`` (or the module itself)."""
    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        return inner
    raise TypeError(
        f"expected a transformers speech model or a SpeechEncoder, got {type(model).__name__}"
    )


def encoder_of(model: Any) -> Any:
    """The module that owns the transformer ``layers`` (Wav2Vec2Encoder..., WhisperEncoder), for any wrapper.

    Typed ``Any``: its submodules (``layers``, ``conv1``, ``layer_norm``...) differ by family and are set
    dynamically, where ``nn.Module``'s ``__getattr__`` would type each as ``Tensor | Module``."""
    module = _unwrap(model)
    base = getattr(module, "base_model", module)
    if _is_whisper_encoder(base):
        return base
    for candidate in (getattr(base, "encoder", None), getattr(module, "encoder", None)):
        if candidate is not None and isinstance(getattr(candidate, "layers", None), nn.ModuleList):
            return candidate
    raise TypeError(
        f"{type(module).__name__} has no speech transformer encoder this module knows how to prune"
    )


def _is_whisper_encoder(module: nn.Module) -> bool:
    """True for transformers' ``WhisperEncoder`` (checked by name so this file imports no model code)."""
    return type(module).__name__ == "WhisperEncoder"


def speech_base_of(model: Any) -> Any:
    """The bare encoder model inside a wrapper (Wav2Vec2Model, HubertModel, ..., WhisperEncoder); ``Any``
    like :func:`encoder_of`, as its ``config`` and submodules are attributed dynamically."""
    encoder = encoder_of(model)
    if _is_whisper_encoder(encoder):
        return encoder
    module = _unwrap(model)
    base = getattr(module, "base_model", module)
    return base if getattr(base, "encoder", None) is encoder else module


def transformer_layers(model: Any) -> nn.ModuleList:
    """The transformer layers of any supported model (length L)."""
    return encoder_of(model).layers


def has_final_layer_norm(model: Any) -> bool:
    """Whether the encoder applies a LayerNorm after its last layer (Whisper; stable-layer-norm wav2vec2 variants)."""
    encoder = encoder_of(model)
    if _is_whisper_encoder(encoder):
        return True
    return bool(getattr(encoder.config, "do_stable_layer_norm", False))


def _configs(module: nn.Module) -> list[Any]:
    """Every distinct config object reachable from the module tree (wrappers usually share one)."""
    seen: dict[int, Any] = {}
    for sub in module.modules():
        config = getattr(sub, "config", None)
        if config is not None and hasattr(config, "to_dict"):
            seen.setdefault(id(config), config)
    return list(seen.values())


def check_prune_point(p: Any, n_layers: int, model: str = "this model") -> None:
    """PruneError (one line naming the valid range) unless ``p`` is an integer in 1..``n_layers``."""
    if isinstance(p, bool) or not isinstance(p, int):
        raise PruneError(f"prune point must be an integer, got {p!r}")
    if not 1 <= p <= n_layers:
        raise PruneError(
            f"prune point p={p} is out of range: {model} has {n_layers} transformer layers, "
            f"so p must satisfy 1 <= p <= {n_layers}"
        )


def prune(model: Any, p: int) -> Any:
    """Keep the front-end and transformer layers 1..p (in place), free the rest and fix the config; returns ``model``."""
    n_layers = len(encoder_of(model).layers)
    check_prune_point(p, n_layers)
    return apply_plan(model, PruningPlan.top(p, n_layers))


def _carry_relative_position_bias(old_first: nn.Module, new_first: nn.Module) -> None:
    """WavLM: only layer 1's attention owns ``rel_attn_embed`` (the relative position bias every later layer
    reuses); when layer 1 is dropped its embedding moves into the new first layer, which then computes the
    same bias, and ``from_pretrained`` (which gives layer 0 the embedding) finds it there."""
    old_attention = getattr(old_first, "attention", None)
    new_attention = getattr(new_first, "attention", None)
    embed = getattr(old_attention, "rel_attn_embed", None)
    if embed is None or new_attention is None or old_first is new_first:
        return
    new_attention.rel_attn_embed = embed


def apply_plan(model: Any, plan: PruningPlan) -> Any:
    """Keep the front-end and the plan's transformer layers in order (in place): the other layers are deleted,
    the config records the new depth, a final LayerNorm stays after the last kept layer; returns ``model``."""
    module = _unwrap(model)
    encoder = encoder_of(module)
    n_layers = len(encoder.layers)
    if plan.n_layers != n_layers:
        raise PruneError(
            f"the plan ({plan.describe()}) is for {plan.n_layers} transformer layers; "
            f"this model has {n_layers}"
        )
    if plan.is_full:
        return model

    old = list(encoder.layers)
    kept = [old[i - 1] for i in plan.kept]
    _carry_relative_position_bias(old[0], kept[0])
    # Replacing the ModuleList drops the last reference to the other layers: they are freed right here.
    encoder.layers = nn.ModuleList(kept)
    del old, kept
    for config in _configs(module):
        # WhisperConfig maps num_hidden_layers -> encoder_layers; wav2vec2-style configs store it directly.
        config.num_hidden_layers = plan.size

    # Heads with a learned weighted sum over hidden states 0..L keep the weights of the kept states.
    states = [0, *plan.kept]
    for sub in module.modules():
        weights = getattr(sub, "layer_weights", None)
        if (
            isinstance(weights, nn.Parameter)
            and weights.dim() == 1
            and weights.numel() == n_layers + 1
        ):
            sub.layer_weights = nn.Parameter(
                weights.detach()[states].clone(), requires_grad=weights.requires_grad
            )

    if any(q.is_cuda for q in module.parameters()):
        torch.cuda.empty_cache()  # the dropped layers were freed by reference counting; return their blocks
    return model


def _param_ids(modules: list[nn.Module | nn.Parameter | None]) -> dict[int, int]:
    """Map id(parameter) -> numel over modules/parameters, counting shared parameters once."""
    found: dict[int, int] = {}
    for item in modules:
        if item is None:
            continue
        params = [item] if isinstance(item, nn.Parameter) else list(item.parameters())
        for param in params:
            found[id(param)] = param.numel()
    return found


def count_parameters(model: Any) -> dict[str, int]:
    """Parameter counts by part (total, front_end, transformer, head, trainable), so pruning savings are visible."""
    # front_end: everything computing hidden state 0 (conv feature encoder, projection, positional conv or
    # Whisper convs + position table, a pre-layer LayerNorm); transformer: the layers + a final LayerNorm;
    # head: the rest (classifier, projector, layer weights, adapter, a Whisper decoder if present).
    module = _unwrap(model)
    encoder = encoder_of(module)
    base = speech_base_of(module)
    if _is_whisper_encoder(encoder):
        front = [encoder.conv1, encoder.conv2, encoder.embed_positions]
        trans = [encoder.layers, encoder.layer_norm]
    else:
        front = [
            getattr(base, "feature_extractor", None),
            getattr(base, "feature_projection", None),
            getattr(base, "masked_spec_embed", None),
            encoder.pos_conv_embed,
        ]
        trans = [encoder.layers]
        # Post-LN encoders normalise *before* layer 1 (part of hidden state 0); stable-LN ones after layer L.
        (trans if has_final_layer_norm(module) else front).append(encoder.layer_norm)

    everything = {id(q): q for q in module.parameters()}
    front_ids = _param_ids(front)
    trans_ids = {k: v for k, v in _param_ids(trans).items() if k not in front_ids}
    total = sum(q.numel() for q in everything.values())
    front_end = sum(front_ids.values())
    transformer = sum(trans_ids.values())
    return {
        "total": total,
        "front_end": front_end,
        "transformer": transformer,
        "head": total - front_end - transformer,
        "trainable": sum(q.numel() for q in everything.values() if q.requires_grad),
    }


def params_by_prune_point(model: Any) -> dict[int, dict[str, int]]:
    """Parameter counts of ``model`` (encoder or classifier) pruned at every p in 1..L, without pruning it."""
    full = count_parameters(model)
    layers = list(transformer_layers(model))
    sizes = [sum(q.numel() for q in layer.parameters()) for layer in layers]
    trainable = [sum(q.numel() for q in layer.parameters() if q.requires_grad) for layer in layers]
    out = {}
    for p in range(1, len(sizes) + 1):
        dropped = sum(sizes[p:])
        out[p] = {
            **full,
            "total": full["total"] - dropped,
            "transformer": full["transformer"] - dropped,
            "trainable": full["trainable"] - sum(trainable[p:]),
        }
    return out


def head_parameters(config: Any, n_classes: int) -> int:
    """Parameters of the family's classification head for ``n_classes`` on top of ``config``'s encoder
    (the head :func:`core.models.classifier.build_classifier` adds), counted on the meta device."""
    from transformers import AutoModelForAudioClassification

    cfg = copy.deepcopy(config)
    cfg.num_labels = int(n_classes)
    cfg.id2label = {i: str(i) for i in range(int(n_classes))}
    cfg.label2id = {str(i): i for i in range(int(n_classes))}
    cfg.use_weighted_layer_sum = False
    with torch.device("meta"):
        clf = AutoModelForAudioClassification.from_config(cfg)
    return count_parameters(clf)["head"]


def _layer_sizes(model: Any) -> tuple[list[int], list[int], int]:
    """Per-layer parameter counts (all, trainable) and the size of a relative position bias in layer 1."""
    layers = list(transformer_layers(model))
    sizes = [sum(q.numel() for q in layer.parameters()) for layer in layers]
    trainable = [sum(q.numel() for q in layer.parameters() if q.requires_grad) for layer in layers]
    embed = getattr(getattr(layers[0], "attention", None), "rel_attn_embed", None)
    bias = sum(q.numel() for q in embed.parameters()) if embed is not None else 0
    return sizes, trainable, bias


def params_by_plan(model: Any, plan: PruningPlan) -> dict[str, int]:
    """Parameter counts of ``model`` pruned by ``plan``, without pruning it (a moved WavLM position bias stays)."""
    full = count_parameters(model)
    sizes, trainable, bias = _layer_sizes(model)
    if plan.n_layers != len(sizes):
        raise PruneError(
            f"the plan ({plan.describe()}) is for {plan.n_layers} transformer layers; "
            f"this model has {len(sizes)}"
        )
    dropped = sum(sizes[i - 1] for i in plan.dropped)
    dropped_trainable = sum(trainable[i - 1] for i in plan.dropped)
    if 1 in plan.dropped:  # the bias moves into the new first layer
        dropped -= bias
        dropped_trainable -= bias if trainable[0] else 0
    return {
        **full,
        "total": full["total"] - dropped,
        "transformer": full["transformer"] - dropped,
        "trainable": full["trainable"] - dropped_trainable,
    }
