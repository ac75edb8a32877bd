"""The one place where the geometry code checks and normalises its inputs (features and labels).

Every public entry point of ``core.geometry`` passes user input through here, so the same input gets the
same one-line ``ConvexityInputError`` everywhere. Accepted and normalised: numpy arrays and memmaps (no
copy), views with negative strides and non-native byte order (copied: torch cannot view them), torch tensors
with ``requires_grad`` (detached: nothing here is differentiated). Rejected: non-real dtypes, wrong shapes,
empty arrays, NaN/inf features, nested (2-D) labels, NaN labels, label/feature length mismatches.

Magnitude: distances are sums of squared coordinate differences (float64) after a float32 candidate search,
so coordinates near 1e200 overflow and near 1e-200 underflow, silently giving a wrong graph. Multiplying
by a power of two is exact in floating point (only the exponent changes), and it commutes with every step of
the kNN graph (centring, float32 rounding, products, square roots) and with shortest-path sums, so
``power_of_two_scaled`` brings such features into range without changing the graph's neighbours or the
convexity score; distances are scaled back with ``unscaled_distances``. Inputs already in range are left
untouched (bit-identical results), and a rescale that would lose bits (some coordinates too small relative to
the largest) is refused with a clear message rather than approximated.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from core.errors import ConvexityInputError, DeviceError

__all__ = [
    "SAFE_EXPONENT",
    "as_feature_array",
    "as_features",
    "as_labels",
    "check_finite",
    "encode_labels",
    "power_of_two_scaled",
    "resolve_device",
    "times_power_of_two",
    "unscaled_distances",
]

# Largest |coordinate| in [2**-SAFE_EXPONENT, 2**SAFE_EXPONENT] needs no rescale: squared differences summed
# over up to 2**40 dimensions stay far inside float32's and float64's normal range.
SAFE_EXPONENT = 40

FeaturesLike = np.ndarray | torch.Tensor | Sequence[Any]
LabelsLike = Sequence[Hashable] | np.ndarray | torch.Tensor


def _check_shape(shape: tuple[int, ...], axes: str, what: str) -> None:
    """``shape`` must have one entry per name in ``axes`` (e.g. ``"N, D"``) and none may be 0."""
    ndim = len(axes.split(","))
    if len(shape) != ndim:
        raise ConvexityInputError(f"{what} must have shape ({axes}), got {tuple(shape)}")
    if 0 in shape:
        raise ConvexityInputError(f"{what} are empty: shape {tuple(shape)}")


def as_feature_array(
    features: FeaturesLike, axes: str = "N, D", what: str = "features"
) -> np.ndarray:
    """``features`` as a real-valued numpy array of shape ``(axes)``; memmaps stay lazy, tensors are detached."""
    if isinstance(features, torch.Tensor):
        if features.dtype.is_complex or features.dtype == torch.bool:
            raise ConvexityInputError(f"{what} must be real numbers, got dtype {features.dtype}")
        features = features.detach().cpu().numpy()
    array = np.asarray(features)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ConvexityInputError(f"{what} must be real numbers, got dtype {array.dtype}")
    _check_shape(array.shape, axes, what)
    return array


def as_features(features: FeaturesLike, axes: str = "N, D", what: str = "features") -> torch.Tensor:
    """``features`` as a torch tensor of shape ``(axes)``, without a copy unless torch cannot view it.

    Tensors keep their device and are detached (``requires_grad`` inputs are accepted); numpy views with
    negative strides or non-native byte order are copied; read-only memmaps are viewed (nothing writes).
    """
    if isinstance(features, torch.Tensor):
        if features.dtype.is_complex or features.dtype == torch.bool:
            raise ConvexityInputError(f"{what} must be real numbers, got dtype {features.dtype}")
        _check_shape(tuple(features.shape), axes, what)
        return features.detach()
    array = as_feature_array(features, axes, what)
    if any(s < 0 for s in array.strides) or not array.dtype.isnative:
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def check_finite(
    x: torch.Tensor | np.ndarray, layer: int | None = None, what: str = "features"
) -> None:
    """Reject NaN or infinite rows of ``x`` (..., D) (a tensor or an array), saying how many and where."""
    if isinstance(x, np.ndarray):
        bad = torch.from_numpy(~np.isfinite(x).all(axis=-1))
    else:
        bad = ~torch.isfinite(x).all(dim=-1)
    if bool(bad.any()):
        where = "" if layer is None else f" in layer {layer}"
        rows = torch.nonzero(bad).flatten()[:5].tolist()
        raise ConvexityInputError(
            f"{what} contain NaN or infinite values{where}: {int(bad.sum())} points (e.g. rows {rows})"
        )


def _is_nan(value: Any) -> bool:
    """True for float NaN of any flavour (Python, numpy)."""
    return isinstance(value, float | np.floating) and math.isnan(value)


def as_labels(labels: LabelsLike, n: int | None = None, name: str = "labels") -> np.ndarray:
    """One hashable label per point as a 1-D numpy array (values unchanged); ``n``: the expected length.

    Rejects 2-D labels (one label per point is required: pass several label sets as a mapping), float NaN
    labels (NaN != NaN, so each would silently become its own class), strings and non-sequences.
    """
    if isinstance(labels, str | bytes) or not hasattr(labels, "__len__"):
        raise ConvexityInputError(
            f"{name} must be a sequence with one label per point, got {type(labels).__name__}"
        )
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    if isinstance(labels, np.ndarray):
        array = labels
        if array.ndim != 1:
            raise ConvexityInputError(
                f"{name} must be 1-D (one label per point), got shape {array.shape}"
            )
    else:
        array = np.fromiter(labels, dtype=object, count=len(labels))
        if any(isinstance(v, list | np.ndarray | torch.Tensor) for v in array):
            raise ConvexityInputError(
                f"{name} must be 1-D (one hashable label per point), got nested sequences"
            )
    if array.dtype.kind == "f":
        nan = int(np.isnan(array).sum())
    elif array.dtype == object:
        nan = sum(map(_is_nan, array))
    else:
        nan = 0
    if nan:
        raise ConvexityInputError(f"{name} contain {nan} NaN value(s); every point needs a label")
    if n is not None and array.shape[0] != n:
        raise ConvexityInputError(
            f"{name} have {array.shape[0]} entries but features have {n} points"
        )
    return array


def encode_labels(
    labels: LabelsLike, n: int | None = None, name: str = "labels"
) -> tuple[np.ndarray, list[Hashable]]:
    """Checked labels as integer codes (int32, in order of first appearance) and the class list.

    Any hashable labels are accepted; numpy scalars become Python scalars so class keys print and
    serialise cleanly. ``n``: the expected number of points.
    """
    array = as_labels(labels, n, name)
    if array.dtype.kind in "iub":  # integers: vectorised, same codes as the loop below
        values, first, inverse = np.unique(array, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[inverse].astype(np.int32), [v.item() for v in values[order]]
    index: dict[Hashable, int] = {}
    codes = np.fromiter(
        (index.setdefault(x.item() if isinstance(x, np.generic) else x, len(index)) for x in array),
        dtype=np.int32,
    )
    return codes, list(index)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device asked for (``None``: CUDA when available, else the CPU); DeviceError for one
    that does not exist here."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was asked for but no CUDA device is available; use 'cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(
                f"{device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif resolved.type not in ("cpu", "mps"):
        raise DeviceError(f"unsupported device {device!r}: use cpu, cuda or cuda:N")
    return resolved


def times_power_of_two(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """``x * 2**exponent``, exact while results stay normal (two steps, so no factor over/underflows)."""
    half = exponent // 2
    return x * 2.0**half * 2.0 ** (exponent - half)


def power_of_two_scaled(x: torch.Tensor, what: str = "features") -> tuple[torch.Tensor, int]:
    """``(x * 2**-e, e)`` with the largest |coordinate| brought into [0.5, 1), or ``(x, 0)`` when in range.

    Raises ``ConvexityInputError`` for NaN/inf, and when the rescale would not be exact (nonzero coordinates
    more than ~2**1000 below the largest would lose bits).
    """
    if x.numel() == 0:
        return x, 0
    low, high = torch.aminmax(x)
    peak = max(-float(low), float(high))
    if not math.isfinite(peak):
        check_finite(x, what=what)
    if peak == 0.0 or 2.0**-SAFE_EXPONENT <= peak <= 2.0**SAFE_EXPONENT:
        return x, 0
    exponent = math.frexp(peak)[1]
    scaled = times_power_of_two(x.to(torch.float64), -exponent)
    lost = (scaled.abs() < torch.finfo(torch.float64).tiny) & (x != 0)
    if bool(lost.any()):
        raise ConvexityInputError(
            f"{what} span too many orders of magnitude to compare exactly (largest |value| {peak:.3g}, "
            f"{int(lost.sum())} nonzero values below {peak * 2.0**-1020:.3g}); rescale or round them"
        )
    return scaled, exponent


def unscaled_distances(
    distances: torch.Tensor, exponent: int, what: str = "features"
) -> torch.Tensor:
    """Distances of ``power_of_two_scaled`` features in the original units (exact), refusing overflow."""
    out = times_power_of_two(distances, exponent)
    if not bool(torch.isfinite(out).all()):
        raise ConvexityInputError(
            f"{what} are too large: their distances exceed float64's range (~1.8e308); rescale them"
        )
    return out
