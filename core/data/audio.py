"""Reading audio clips as fixed-length 16 kHz mono float32 arrays, robust to bad files.

Decisions (documented once, used everywhere):

- Files are read with ``soundfile`` (``torchaudio.load`` needs torchcodec, which is not installed).
- Multi-channel audio is downmixed to mono by averaging the channels.
- A file whose rate differs from ``sample_rate`` is resampled with ``torchaudio.functional.resample``
  (windowed-sinc, torchaudio's defaults).
- Length: clips shorter than ``length`` get zeros appended at the end; longer clips are
  **start-trimmed**, i.e. the first ``length`` samples are kept. This is what Hugging Face feature
  extractors do with ``truncation=True`` and matches the "pad or trim to 16,000 samples" rule;
  Speech Commands clips are at most 1 s, so trimming is rare there.
- Unreadable, empty or non-finite files raise :class:`AudioError`; :func:`load_clips` turns those into
  :class:`SkippedClip` records and carries on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from core.errors import AudioError

DEFAULT_SAMPLE_RATE = 16000
DEFAULT_LENGTH = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")

ProgressFn = Callable[[int, int], None]


class SkippedClip(NamedTuple):
    """A file :func:`load_clips` left out, and why, so a UI can list it."""

    path: str
    reason: str


@dataclass(frozen=True)
class ClipInfo:
    """What :func:`read_clip` had to do to one file (for reporting)."""

    orig_sample_rate: int
    orig_channels: int
    orig_frames: int
    resampled: bool
    downmixed: bool
    padded: bool
    trimmed: bool


@dataclass
class LoadResult:
    """Clips loaded by :func:`load_clips_report` plus counts of what was done to them."""

    clips: np.ndarray
    kept: np.ndarray
    skipped: list[SkippedClip] = field(default_factory=list)
    n_resampled: int = 0
    n_downmixed: int = 0
    n_padded: int = 0
    n_trimmed: int = 0
    orig_sample_rates: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        """One human-readable line for a UI: loaded/skipped counts and what was converted."""
        n = len(self.kept)
        parts = [f"loaded {n} clip{'s' if n != 1 else ''}"]
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} unusable")
        for count, what in (
            (self.n_resampled, "resampled"),
            (self.n_downmixed, "downmixed to mono"),
            (self.n_padded, "zero-padded"),
            (self.n_trimmed, "trimmed"),
        ):
            if count:
                parts.append(f"{count} {what}")
        if self.seconds > 0 and n:
            parts.append(f"{n / self.seconds:.0f} clips/s")
        return ", ".join(parts)


def _resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Resample a mono float32 signal with torchaudio (imported lazily: torch is slow to import)."""
    import torch
    import torchaudio.functional as AF

    y = AF.resample(torch.from_numpy(np.ascontiguousarray(x)), int(orig), int(new))
    return y.numpy().astype(np.float32, copy=False)


def read_clip(
    path: str | os.PathLike,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    length: int = DEFAULT_LENGTH,
) -> tuple[np.ndarray, ClipInfo]:
    """Load one clip as mono float32 of exactly ``length`` samples and say what was converted."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError / TypeError
        msg = str(exc).strip() or type(exc).__name__
        raise AudioError(path, f"unreadable audio ({msg})") from exc
    frames, channels = data.shape
    if frames == 0 or channels == 0:
        raise AudioError(path, "no audio samples")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(path, f"{bad} non-finite sample(s) (NaN or inf)")
    downmixed = channels > 1
    x = data.mean(axis=1, dtype=np.float32) if downmixed else data[:, 0]
    resampled = int(sr) != int(sample_rate)
    if resampled:
        x = _resample(x, int(sr), int(sample_rate))
    n = x.shape[0]
    padded, trimmed = n < length, n > length
    out = np.zeros(length, dtype=np.float32)
    out[: min(n, length)] = x[:length]
    info = ClipInfo(int(sr), int(channels), int(frames), resampled, downmixed, padded, trimmed)
    return out, info


def load_clip(
    path: str | os.PathLike,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    length: int = DEFAULT_LENGTH,
) -> np.ndarray:
    """Load one clip as mono float32, resampled, zero-padded at the end or start-trimmed to ``length``."""
    return read_clip(path, sample_rate=sample_rate, length=length)[0]


def default_workers() -> int:
    """Reader threads: libsndfile releases the GIL, so ~2 per core pays off; capped at 8."""
    return max(1, min(8, 2 * (os.cpu_count() or 1)))


def load_clips_report(
    paths: Sequence[str | os.PathLike],
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    length: int = DEFAULT_LENGTH,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> LoadResult:
    """Load many clips without dying on one bad file; returns clips, kept indices, skips and counts."""
    total = len(paths)
    workers = default_workers() if workers is None else max(1, int(workers))
    out = np.zeros((total, length), dtype=np.float32)
    ok = np.zeros(total, dtype=bool)
    infos: list[ClipInfo | None] = [None] * total
    skipped: list[SkippedClip] = []
    start = time.perf_counter()

    def read(i: int) -> ClipInfo | str:
        """Clip ``i`` into ``out``: its info, or why it was skipped."""
        try:
            x, info = read_clip(paths[i], sample_rate=sample_rate, length=length)
        except AudioError as exc:
            return exc.reason
        except Exception as exc:  # never die on one file, whatever it throws
            return f"{type(exc).__name__}: {exc}"
        out[i] = x
        return info

    def record(i: int, res: ClipInfo | str, done: int) -> None:
        if isinstance(res, str):
            skipped.append(SkippedClip(str(paths[i]), res))
        else:
            ok[i] = True
            infos[i] = res
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    if workers == 1 or total <= 1:
        for i in range(total):
            record(i, read(i), i + 1)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # map keeps the paths' order
            for i, res in enumerate(pool.map(read, range(total))):
                record(i, res, i + 1)

    kept = np.flatnonzero(ok)
    good = [inf for inf in (infos[i] for i in kept) if inf is not None]  # every kept clip has one
    rates: dict[int, int] = {}
    for inf in good:
        rates[inf.orig_sample_rate] = rates.get(inf.orig_sample_rate, 0) + 1
    return LoadResult(
        clips=out[kept] if len(kept) < total else out,
        kept=kept,
        skipped=skipped,
        n_resampled=sum(inf.resampled for inf in good),
        n_downmixed=sum(inf.downmixed for inf in good),
        n_padded=sum(inf.padded for inf in good),
        n_trimmed=sum(inf.trimmed for inf in good),
        orig_sample_rates=rates,
        seconds=time.perf_counter() - start,
    )


def load_clips(
    paths: Sequence[str | os.PathLike],
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    length: int = DEFAULT_LENGTH,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, list[SkippedClip]]:
    """Load many clips as an (N_ok, length) array plus the skipped ones (use the report variant for counts)."""
    res = load_clips_report(
        paths, sample_rate=sample_rate, length=length, progress=progress, workers=workers
    )
    return res.clips, res.skipped
