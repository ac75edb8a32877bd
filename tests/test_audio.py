"""Audio reading on real files written with soundfile: formats, conversion, bad files, reporting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.data.audio import (
    AudioError,
    SkippedClip,
    load_clip,
    load_clips,
    load_clips_report,
    read_clip,
)


def _pcm16(n: int, seed: int = 0) -> np.ndarray:
    """Random samples exactly representable as 16-bit PCM, so a lossless roundtrip is exact."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-20000, 20000, n).astype(np.float32) / 32768.0).astype(np.float32)


@pytest.mark.parametrize("ext", ["flac", "wav"])
def test_mono_16k_roundtrip_is_exact(tmp_path: Path, ext: str) -> None:
    x = _pcm16(16000)
    p = tmp_path / f"a.{ext}"
    sf.write(p, x, 16000, subtype="PCM_16")
    y = load_clip(p)
    assert y.dtype == np.float32 and y.shape == (16000,)
    np.testing.assert_array_equal(y, x)


def test_ogg_loads_close(tmp_path: Path) -> None:
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    p = tmp_path / "a.ogg"
    sf.write(p, x, 16000, format="OGG", subtype="VORBIS")
    y = load_clip(p)
    assert y.shape == (16000,)
    assert np.corrcoef(x[1000:15000], y[1000:15000])[0, 1] > 0.99


def test_8k_stereo_is_downmixed_resampled_and_reported(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    left = 0.6 * np.sin(2 * np.pi * 440 * t)
    right = 0.2 * np.sin(2 * np.pi * 440 * t)
    p = tmp_path / "stereo8k.wav"
    sf.write(p, np.stack([left, right], axis=1).astype(np.float32), 8000, subtype="FLOAT")
    y, info = read_clip(p)
    assert y.shape == (16000,) and y.dtype == np.float32
    assert info.resampled and info.downmixed and info.orig_sample_rate == 8000
    assert info.orig_channels == 2 and not info.padded and not info.trimmed
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16000 / 16000 - 440) <= 1  # still a 440 Hz tone
    assert abs(np.abs(y[2000:14000]).max() - 0.4) < 0.02  # mean of the two channels

    ok = tmp_path / "ok.flac"
    sf.write(ok, _pcm16(16000), 16000)
    res = load_clips_report([p, ok])
    assert res.clips.shape == (2, 16000)
    assert (res.n_resampled, res.n_downmixed) == (1, 1)
    assert res.orig_sample_rates == {8000: 1, 16000: 1}
    assert "1 resampled" in res.summary() and "1 downmixed" in res.summary()


def test_pad_at_end_and_start_trim(tmp_path: Path) -> None:
    short, long_ = _pcm16(8000, 1), _pcm16(24000, 2)
    sf.write(tmp_path / "short.flac", short, 16000)
    sf.write(tmp_path / "long.flac", long_, 16000)
    y, info = read_clip(tmp_path / "short.flac")
    np.testing.assert_array_equal(y[:8000], short)
    assert not y[8000:].any() and info.padded
    y, info = read_clip(tmp_path / "long.flac")
    np.testing.assert_array_equal(y, long_[:16000])
    assert info.trimmed
    assert load_clip(tmp_path / "long.flac", length=4000).shape == (4000,)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    nan = tmp_path / "nan.wav"
    x = _pcm16(16000)
    x[100] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    return {"corrupt": corrupt, "empty": empty, "nan": nan, "missing": tmp_path / "nope.wav"}


def test_bad_files_raise_clear_errors(tmp_path: Path) -> None:
    bad = _bad_files(tmp_path)
    expected = {
        "corrupt": "unreadable",
        "empty": "empty",
        "nan": "non-finite",
        "missing": "not found",
    }
    for key, word in expected.items():
        with pytest.raises(AudioError, match=word) as err:
            load_clip(bad[key])
        assert err.value.path == str(bad[key])


@pytest.mark.parametrize("workers", [1, 4])
def test_load_clips_skips_bad_files_and_keeps_the_rest(tmp_path: Path, workers: int) -> None:
    bad = _bad_files(tmp_path)
    goods = []
    for i in range(4):
        p = tmp_path / f"good{i}.flac"
        sf.write(p, _pcm16(16000, i), 16000)
        goods.append(p)
    paths = [goods[0], bad["corrupt"], goods[1], bad["empty"], goods[2], bad["nan"], goods[3]]
    calls: list[tuple[int, int]] = []
    clips, skipped = load_clips(paths, workers=workers, progress=lambda d, t: calls.append((d, t)))
    assert clips.shape == (4, 16000)
    for row, p in zip(clips, goods, strict=True):
        np.testing.assert_array_equal(row, load_clip(p))
    assert [s.path for s in skipped] == [str(bad["corrupt"]), str(bad["empty"]), str(bad["nan"])]
    assert all(isinstance(s, SkippedClip) and s.reason for s in skipped)
    assert "non-finite" in skipped[2].reason and "empty" in skipped[1].reason
    assert calls[0] == (0, 7) and calls[-1] == (7, 7)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    res = load_clips_report(paths, workers=workers)
    assert res.kept.tolist() == [0, 2, 4, 6]
    assert "skipped 3" in res.summary()


def test_load_clips_empty_list() -> None:
    clips, skipped = load_clips([])
    assert clips.shape == (0, 16000) and skipped == []
