"""Which weights a model stands for: the record and the hashes, so every cache and run names weights the same way.

``weights`` is a string that changes whenever the weights do: a hub model is ``hub:<id>@<commit>`` (the
commit from the loaded config or the local Hugging Face cache), a model directory is ``files-sha256:<hash>``
over its weight and config files (names and contents), an offline Whisper package is
``ct2-sha256:<source sha256>:v<conversion format>``, and an encoder built in memory (or a hub model whose
commit is unknown) is ``params-sha256:<hash>`` of its parameters and buffers. A hub model that is not in
the local cache has no identity until it is loaded (``weights is None``). ``core.models.loading``
computes identities (``ResolvedModel.identity``, ``encoder_identity``); this module holds the record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.io.atomic import sha256_file_memo
from core.io.records import Record

if TYPE_CHECKING:
    import torch

__all__ = ["ModelIdentity", "directory_weights_hash", "offline_weights", "parameters_hash"]

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

    def differs(self, other: ModelIdentity) -> bool:
        """Whether ``other`` names other weights of a model (both known and not equal)."""
        return self.known and other.known and self.weights != other.weights

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
    import torch

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def offline_weights(manifest: dict) -> str:
    """The weights string of a converted offline Whisper directory, from its manifest."""
    return f"ct2-sha256:{manifest['source_sha256']}:v{manifest['format_version']}"
