"""Which weights a model name stands for: the registry's answer, so every cache keys models the same way.

``weights`` is a string that changes whenever the weights do: a hub model is ``hub:<id>@<commit>`` (the
commit from the loaded config or the local Hugging Face cache), a model directory is ``files-sha256:<hash>``
over its weight and config files (names and contents), an offline Whisper package is
``ct2-sha256:<source sha256>:v<conversion format>``, and an encoder built in memory (or a hub model whose
commit is unknown) is ``params-sha256:<hash>`` of its parameters and buffers. A hub model that is not in
the local cache has no identity until it is loaded (``weights is None``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.io.atomic import sha256_file_memo
from core.io.records import Record
from core.models.registry import ModelSpec, SpeechEncoder, resolve_model

__all__ = ["ModelIdentity", "encoder_identity", "model_identity", "spec_identity"]

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_ID_FILES = ("config.json", "preprocessor_config.json")


@dataclass(frozen=True)
class ModelIdentity(Record):
    """A model's name, where it comes from, and the identity of its weights.

    ``key``: registry key (or the directory / hub id given); ``id``: hub id or directory; ``source``: hub,
    local, offline or in-memory; ``revision``: the hub commit when known; ``weights``: see the module
    docstring (None: a hub model not cached yet, known only after loading).
    """

    key: str
    id: str
    source: str
    family: str
    weights: str | None
    revision: str | None = None

    @property
    def known(self) -> bool:
        """Whether the weights are identified (False only for a hub model not in the local cache)."""
        return self.weights is not None


def directory_weights_hash(directory: Path) -> str:
    """sha256 over the weight and config files of a model directory (names and contents)."""
    files = sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name in _ID_FILES)
    )
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}\0{sha256_file_memo(p)}\n".encode())
    return h.hexdigest()


def parameters_hash(module: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer (names, dtypes, shapes, bytes): identity of an in-memory model."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def hub_revision(hf_id: str, config: Any | None = None) -> str | None:
    """The commit of a hub model: from a loaded config, else from the local Hugging Face cache."""
    commit = getattr(config, "_commit_hash", None) if config is not None else None
    if commit:
        return str(commit)
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(hf_id, "config.json")
    except Exception:  # a broken or absent hub cache just means "unknown"
        return None
    if isinstance(found, str) and "/snapshots/" in found:
        return found.split("/snapshots/")[1].split("/")[0]
    return None


def spec_identity(spec: ModelSpec, encoder: SpeechEncoder | None = None) -> ModelIdentity:
    """Identity of a registry spec; ``encoder`` (the loaded model) supplies a hub commit or parameters."""
    revision = None
    if spec.source == "offline":
        from core.models.whisper_offline import MANIFEST_NAME, ensure_offline_whisper

        manifest = json.loads((ensure_offline_whisper(spec.key) / MANIFEST_NAME).read_text())
        weights = f"ct2-sha256:{manifest['source_sha256']}:v{manifest['format_version']}"
    elif spec.source == "local":
        weights = "files-sha256:" + directory_weights_hash(Path(spec.hf_id))
    else:
        revision = hub_revision(spec.hf_id, encoder.model.config if encoder is not None else None)
        if revision is not None:
            weights = f"hub:{spec.hf_id}@{revision}"
        elif encoder is not None:
            weights = "params-sha256:" + parameters_hash(encoder.model)
        else:
            weights = None
    return ModelIdentity(spec.key, spec.hf_id, spec.source, spec.family, weights, revision)


def model_identity(
    name_or_path: str | os.PathLike, *, trust_remote_code: bool = False
) -> ModelIdentity:
    """Identity of a preset key, hub id or model directory, without loading the model.

    Raises the registry's ``ModelError``s for names it cannot resolve.
    """
    return spec_identity(resolve_model(name_or_path, trust_remote_code=trust_remote_code))


def encoder_identity(encoder: SpeechEncoder) -> ModelIdentity:
    """Identity of a loaded encoder: its spec's, or (no spec: built in memory) a hash of its parameters."""
    if encoder.spec is not None:
        return spec_identity(encoder.spec, encoder)
    weights = "params-sha256:" + parameters_hash(encoder.model)
    return ModelIdentity(encoder.name, encoder.name, "in-memory", encoder.family, weights)
