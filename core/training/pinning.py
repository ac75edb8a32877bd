"""Runs pin the weights they use: a run resolves its model once and refuses weights other than its pin.

At launch (:func:`pin_config`) the model a fine-tune, sweep or benchmark names is resolved and its
identity recorded in the config (``model_identity``); a config that already carries a pin (a sweep's
point, a run started again, a config copied from another machine) is refused in one line when the
name now stands for other weights. At run time (:func:`pinned_model`) the same check runs where the
weights are loaded, so a worker whose copy of a model differs refuses instead of training on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import TrainingError
from core.models.identity import ModelIdentity
from core.models.loading import ResolvedModel, resolve
from core.models.plans import parse_plan
from core.models.request import ModelRequest

__all__ = ["check_pin", "pin_config", "pinned_model"]


def check_pin(identity: ModelIdentity, pinned: ModelIdentity | None, what: str) -> None:
    """Refuse (one TrainingError line) when ``identity`` names other weights than ``pinned``."""
    if pinned is not None and pinned.differs(identity):
        raise TrainingError(
            f"{what}: model '{identity.key}' now has weights {identity.weights}, but this run is "
            f"pinned to {pinned.weights} (its pretrained curve's); restore those weights or launch anew"
        )


def pinned_model(request: ModelRequest, pinned: ModelIdentity | None, what: str) -> ResolvedModel:
    """``request`` resolved once, refused if its weights are not the pinned ones."""
    resolved = resolve(request)
    check_pin(resolved.identity, pinned, what)
    return resolved


def pin_config(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with its model's identity recorded (``model_identity``), refused if a pin differs,
    and its plan, if any, written as :meth:`PruningPlan.describe` does (``keep 1-2, 5-6`` -> ``drop
    3-4``) so runs of one plan read alike."""
    out = dict(config)
    model = out.get("model")
    if not model:
        return out
    request = ModelRequest(str(model), str(out.get("whisper_input") or "trimmed"))
    pinned = out.get("model_identity")
    pinned = ModelIdentity.from_dict(pinned) if isinstance(pinned, Mapping) else pinned
    resolved = pinned_model(request, pinned, f"{kind} of {model}")
    if resolved.identity.known:
        out["model_identity"] = resolved.identity.to_dict()
    if out.get("plan") is not None:
        out["plan"] = parse_plan(str(out["plan"]), resolved.n_layers).describe()
    return out
