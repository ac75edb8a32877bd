"""The bundled sample's stored convexity curves (``data/sample/convexity_curves.json``): typed, validated.

``scripts/sample_curves.py`` measures them through the feature cache and the results store (real offline
Whisper encoders, every clip) and writes this file; the Home page draws it. Reading checks the shape
(every model has both label sets, one score, SE and exactness flag per hidden state), so a damaged or
hand-edited file is refused with one line instead of drawing something wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import DatasetError, RecordError
from core.geometry.curves import LayerCurve
from core.io.paths import REPO_ROOT
from core.io.records import Record

__all__ = [
    "LABEL_SETS",
    "SAMPLE_CURVES",
    "ModelCurves",
    "SampleCurves",
    "read_sample_curves",
]

SAMPLE_CURVES = REPO_ROOT / "data" / "sample" / "convexity_curves.json"
LABEL_SETS = ("word", "speaker")
FORMAT = 2


@dataclass(frozen=True)
class ModelCurves(Record):
    """Both label sets of one model on the sample, with how they were computed and how long it took."""

    model: str
    describe: str  # the model as the feature cache describes it (id, input mode)
    n_clips: int
    word: LayerCurve
    speaker: LayerCurve
    feature_key: str
    extract_seconds: float
    convexity_seconds: float

    def __post_init__(self) -> None:
        if len(self.word.scores) != len(self.speaker.scores):
            raise DatasetError(f"stored curves of {self.model}: label sets differ in length")

    @property
    def n_layers(self) -> int:
        """Transformer layers L (the curves have L+1 hidden states)."""
        return len(self.word.scores) - 1

    def curve(self, label_set: str) -> LayerCurve:
        """The ``word`` or ``speaker`` curve."""
        if label_set not in LABEL_SETS:
            raise DatasetError(f"unknown label set {label_set!r}; use {' or '.join(LABEL_SETS)}")
        return self.word if label_set == "word" else self.speaker


@dataclass(frozen=True)
class SampleCurves:
    """Curves of several models on one clip folder, with the settings, the command and the machine."""

    dataset: str
    root: str  # as given to the script (repository-relative for the bundled sample)
    settings: str  # e.g. "k = 10, exhaustive (exact)"
    command: str
    machine: str  # CPU count and load average while measuring
    models: tuple[ModelCurves, ...]

    def model(self, name: str) -> ModelCurves:
        """The curves of one model."""
        for m in self.models:
            if m.model == name:
                return m
        raise DatasetError(f"no stored curves for {name!r}; stored: {', '.join(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        """The models, in stored order."""
        return tuple(m.model for m in self.models)

    @property
    def provenance(self) -> str:
        """One sentence saying what the curves are and how they were made (the figure's caption)."""
        n = {m.n_clips for m in self.models}
        clips = f"{next(iter(n)):,} clips" if len(n) == 1 else "clips"
        return (
            f"Measured on all {clips} of {self.dataset!r} ({self.root}) with {self.settings}, by "
            f"`{self.command}` ({self.machine})."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (``models`` keyed by model, as the Home page and older readers expect)."""
        return {
            "format": FORMAT,
            "dataset": self.dataset,
            "root": self.root,
            "settings": self.settings,
            "command": self.command,
            "machine": self.machine,
            "provenance": self.provenance,
            "models": {m.model: m.to_dict() for m in self.models},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleCurves:
        """Inverse of :meth:`to_dict`; a :class:`DatasetError` for any other shape."""
        try:
            if data.get("format") != FORMAT:
                raise DatasetError(
                    f"stored curves have format {data.get('format')!r}, not {FORMAT}: regenerate "
                    "them with scripts/sample_curves.py"
                )
            return cls(
                dataset=str(data["dataset"]),
                root=str(data["root"]),
                settings=str(data["settings"]),
                command=str(data["command"]),
                machine=str(data["machine"]),
                models=tuple(  # JSON objects are stored with sorted keys: order by depth, then name
                    sorted(
                        (ModelCurves.from_dict(m) for m in data["models"].values()),
                        key=lambda m: (m.n_layers, m.model),
                    )
                ),
            )
        except RecordError as exc:
            raise DatasetError(f"stored curves are malformed: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DatasetError(
                f"stored curves are malformed ({type(exc).__name__}: {exc})"
            ) from None


def read_sample_curves(path: str | Path = SAMPLE_CURVES) -> SampleCurves:
    """Read and validate a stored-curves file; a one-line :class:`DatasetError` when absent or bad."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"no stored curves at {path}: run scripts/sample_curves.py") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read stored curves {path}: {exc}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"stored curves {path} are not a JSON object")
    curves = SampleCurves.from_dict(data)
    if not curves.models:
        raise DatasetError(f"stored curves {path} hold no model")
    return curves
