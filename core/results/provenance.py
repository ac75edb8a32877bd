"""Where a stored result came from: model, data, settings, engine and code, as one frozen record.

Built from a feature set's ``meta`` (core/data/features.py records model identity and the selection there)
plus the settings the engine reported, so every export can say which model, data and code produced it.
"""

from __future__ import annotations

import functools
import importlib
import re
import subprocess
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from core.errors import RecordError
from core.io.paths import REPO_ROOT
from core.io.records import from_dict
from core.results.origin import Origin
from core.results.registry import RESULT_KINDS


def engine_version(kind: str) -> str:
    """The engine version of a result kind: its engine module's ``ENGINE_VERSION`` (bump it when
    the module's output changes), else "1"."""
    spec = RESULT_KINDS.get(kind)
    if spec is None or spec.engine is None:
        return "1"
    return str(getattr(importlib.import_module(spec.engine), "ENGINE_VERSION", "1"))


@functools.cache
def code_version() -> str:
    """The git commit of the code (``+dirty`` when the tree has changes), or "unknown" outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "") if head else "unknown"


@dataclass(frozen=True)
class Provenance:
    """Who and what produced a result; JSON via ``to_dict``/``from_dict``."""

    model_id: str
    weights: str  # revision or weight hash, as the feature cache identifies the model
    dataset: str
    selection: dict[str, Any]
    dataset_fingerprint: str
    feature_key: str
    n_clips: int
    n_layers: int
    label_sets: tuple[str, ...]
    settings: dict[str, Any]  # what the engine reported (k, pairs, estimator, seed, ...)
    device: str
    engine_version: str
    code_version: str
    created: str
    model_key: str = ""
    input_mode: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Where this copy came from, set by the store when it reads the entry (from the store's own
    # record, never from the entry itself, which a bundle could forge); None on a fresh result.
    origin: Origin | None = None

    @property
    def exact(self) -> bool:
        """Whether the result is exact (every ordered pair scored), from the engine's own settings."""
        if "exact" in self.settings:
            return bool(self.settings["exact"])
        return self.settings.get("estimator") == "exhaustive"

    @property
    def k(self) -> Any:
        """Neighbours of the kNN graph (None when the result has none)."""
        return self.settings.get("k")

    @property
    def seed(self) -> Any:
        """Seed of the sampling (None when the result has none)."""
        return self.settings.get("seed")

    def sampling_text(self) -> str:
        """'exact' or a short description of the sampling."""
        if self.exact:
            return "exact (all pairs)"
        parts = [str(self.settings.get("estimator") or "sampled")]
        for name in ("max_pairs_per_class", "target_se"):
            if self.settings.get(name) is not None:
                parts.append(f"{name.replace('_', ' ')} {self.settings[name]}")
        return ", ".join(parts)

    def caption(self) -> str:
        """One line naming model, data and settings, for figure captions and file headers."""
        sel = self.selection or {}
        split = sel.get("split")
        data = f"{self.dataset}" + (f" ({split})" if split and split != "all" else "")
        bits = [
            f"model {self.model_key or self.model_id} [{_short(self.weights)}]",
            f"data {data}, {self.n_clips} clips [{_short(self.dataset_fingerprint)}]",
        ]
        if self.k is not None:
            bits.append(f"k={self.k}")
        if "estimator" in self.settings or "exact" in self.settings:
            bits.append(self.sampling_text())
        if self.seed is not None and not self.exact:
            bits.append(f"seed {self.seed}")
        bits.append(f"{self.device}, engine v{self.engine_version}, code {self.code_version}")
        bits.append(self.created[:10])
        if self.origin is not None and not self.origin.is_computed:
            bits.append(self.origin.describe())
        return " · ".join(bits)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (with the origin where the store said it)."""
        d = asdict(self)
        d["label_sets"] = list(self.label_sets)
        if self.origin is None:
            d.pop("origin")
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        """Inverse of ``to_dict``, every field's type checked (RecordError if not); unknown keys are
        kept under ``extra`` (newer writers)."""
        if not isinstance(data, dict):
            raise RecordError(f"provenance: expected an object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        extra = dict(known.pop("extra", {}) or {}) | {
            k: v for k, v in data.items() if k not in names
        }
        return from_dict(cls, {**known, "extra": extra}, where="provenance")


def _short(text: str, n: int = 12) -> str:
    """``text`` with every long hex digest cut to its first ``n`` digits (kind prefixes kept)."""
    return re.sub(rf"[0-9a-f]{{{n + 1},}}", lambda m: m.group(0)[:n], str(text or "?"))


def provenance_from_meta(
    meta: dict[str, Any],
    *,
    kind: str,
    label_sets: tuple[str, ...] | list[str],
    settings: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Provenance:
    """Provenance of a result computed on a feature set whose ``FeatureSet.meta`` is ``meta``."""
    settings = {k: v for k, v in settings.items() if k != "layer"}
    return Provenance(
        model_id=str(meta.get("model_id") or meta.get("model_key") or "?"),
        weights=str(meta.get("weights") or "?"),
        dataset=str(meta.get("dataset") or "?"),
        selection=dict(meta.get("selection") or {}),
        dataset_fingerprint=str(meta.get("dataset_fingerprint") or "?"),
        feature_key=str(meta.get("key") or "?"),
        n_clips=int(meta.get("n_clips") or (meta.get("shape") or [0])[0]),
        n_layers=int(meta.get("n_layers") or 0),
        label_sets=tuple(label_sets),
        settings=settings,
        device=str(settings.get("device") or meta.get("device") or "?"),
        engine_version=engine_version(kind),
        code_version=code_version(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        model_key=str(meta.get("model_key") or ""),
        input_mode=str(meta.get("input_mode") or ""),
        extra=dict(extra or {}),
    )
