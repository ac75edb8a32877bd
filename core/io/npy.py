"""``.npy`` headers read without the data: a forged header can declare any shape, so callers check the
declared size against the bytes that are really there before anything is allocated."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import IO

import numpy as np

__all__ = ["NpyHeader", "read_npy_header"]

MAX_HEADER_BYTES = 10_000


@dataclass(frozen=True)
class NpyHeader:
    """What one ``.npy`` header declares, and how long the header itself is."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    length: int

    @property
    def total_bytes(self) -> int:
        """The file size the header implies (header + the declared array)."""
        return self.length + math.prod(self.shape) * self.dtype.itemsize


def read_npy_header(fh: IO[bytes]) -> NpyHeader:
    """The header of the ``.npy`` stream ``fh`` (left positioned at the data); ValueError if none."""
    version = np.lib.format.read_magic(fh)
    read = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    if read is None:
        raise ValueError(f".npy format {version} is not supported")
    shape, fortran, dtype = read(fh, max_header_size=MAX_HEADER_BYTES)
    return NpyHeader(tuple(int(s) for s in shape), dtype, bool(fortran), fh.tell())
