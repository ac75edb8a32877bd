"""Checks of the committed synthetic spoken-word sample in ``data/sample`` (v2: Ogg/Opus, 3 takes).

The set is made by ``scripts/make_sample.py``; these tests only read the committed files (fast,
no TTS engine needed). Words are split by speaker (validation/test speakers never train); speakers
are split per speaker by clip (test clips are unseen clips of seen speakers, as in the paper).
"""

from __future__ import annotations

import io
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
WORDS = [
    "backward",
    "bed",
    "bird",
    "cat",
    "dog",
    "down",
    "eight",
    "five",
    "follow",
    "forward",
    "four",
    "go",
    "happy",
    "house",
    "learn",
    "left",
    "marvin",
    "nine",
    "no",
    "off",
    "on",
    "one",
    "right",
    "seven",
    "sheila",
    "six",
    "stop",
    "three",
    "tree",
    "two",
    "up",
    "visual",
    "wow",
    "yes",
    "zero",
]
NAME_RE = re.compile(r"^(?P<speaker>[a-z0-9]+(?:-[a-z0-9]+)*)_nohash_(?P<take>\d+)\.ogg$")
SIZE_BUDGET = 15_000_000  # bytes, counted as du does on a 4-KiB-block file system

pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason="data/sample not present")


@pytest.fixture(scope="module")
def clips() -> list[Path]:
    return sorted(SAMPLE.glob("*/*.ogg"))


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((SAMPLE / "voices.json").read_text(encoding="utf-8"))


def _speaker(path: Path) -> str:
    return path.name.split("_nohash_")[0]


def test_word_folders() -> None:
    folders = sorted(p.name for p in SAMPLE.iterdir() if p.is_dir())
    assert folders == WORDS


def test_file_names(clips: list[Path]) -> None:
    assert clips
    for c in clips:
        m = NAME_RE.match(c.name)
        assert m, f"bad clip name {c.name}"
        assert "_" not in m["speaker"]
    # nothing but Ogg/Opus clips inside the word folders
    assert all(p.suffix == ".ogg" for w in WORDS for p in (SAMPLE / w).iterdir())


def test_speakers_cover_every_word(clips: list[Path]) -> None:
    words_of: dict[str, set[str]] = defaultdict(set)
    for c in clips:
        words_of[_speaker(c)].add(c.parent.name)
    assert len(words_of) >= 24
    for sp, ws in words_of.items():
        assert ws == set(WORDS), f"{sp} misses {set(WORDS) - ws}"


@pytest.mark.slow
def test_audio_format(clips: list[Path]) -> None:
    for c in clips:
        info = sf.info(str(c))
        assert (info.format, info.subtype) == ("OGG", "OPUS"), c
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, 16000), c
        x, _ = sf.read(str(c), dtype="float32")
        assert np.all(np.isfinite(x)), c
        rms = float(np.sqrt(np.mean(x**2)))
        assert rms > 1e-3, f"{c}: RMS {rms:.1e}: no speech"
        # a noise floor everywhere: no perfectly silent 10-ms stretch
        assert np.all(np.abs(x.reshape(100, 160)).max(axis=1) > 0), f"{c}: digital silence"
        assert float(np.max(np.abs(x))) < 0.99, f"{c}: clipped"


def _read_list(name: str) -> list[str]:
    return [ln for ln in (SAMPLE / name).read_text().splitlines() if ln.strip()]


def test_split_lists(clips: list[Path]) -> None:
    val, test = _read_list("validation_list.txt"), _read_list("testing_list.txt")
    for lst in (val, test):
        assert len(lst) == len(set(lst))
        for rel in lst:
            assert not rel.startswith("/") and (SAMPLE / rel).is_file(), rel
    assert not set(val) & set(test)
    val_sp = {rel.split("/")[1].split("_nohash_")[0] for rel in val}
    test_sp = {rel.split("/")[1].split("_nohash_")[0] for rel in test}
    assert len(val_sp) >= 2 and len(test_sp) >= 2
    assert not val_sp & test_sp
    # split by speaker: every clip of a held-out speaker is listed, so none leaks into training
    listed = set(val) | set(test)
    for c in clips:
        rel = f"{c.parent.name}/{c.name}"
        assert (rel in listed) == (_speaker(c) in val_sp | test_sp), rel
    n = len({_speaker(c) for c in clips})
    assert len(val_sp) + len(test_sp) < n / 2, "most speakers must stay in training"


def test_size_budget() -> None:
    files = [p for p in SAMPLE.rglob("*") if p.is_file()]
    apparent = sum(p.stat().st_size for p in files)
    in_blocks = sum(-(-p.stat().st_size // 4096) * 4096 for p in files) + 4096 * 36  # + folders
    assert apparent <= in_blocks <= SIZE_BUDGET, f"{in_blocks / 1e6:.2f} MB"


def test_voices_json_matches_files(clips: list[Path], meta: dict) -> None:
    assert sorted(meta["words"]) == WORDS
    assert meta["sample_rate"] == 16000 and meta["clip_samples"] == 16000
    speakers = {s["id"]: s for s in meta["speakers"]}
    assert len(speakers) == len(meta["speakers"])
    counts: dict[str, int] = defaultdict(int)
    for c in clips:
        counts[_speaker(c)] += 1
    assert set(counts) == set(speakers)
    val, test = _read_list("validation_list.txt"), _read_list("testing_list.txt")
    split_of = {rel.split("/")[1].split("_nohash_")[0]: "validation" for rel in val}
    split_of.update({rel.split("/")[1].split("_nohash_")[0]: "testing" for rel in test})
    for sp, s in speakers.items():
        assert meta["takes"] == 3
        assert s["clips"] == counts[sp] == len(WORDS) * meta["takes"], sp
        assert s["engine"] in {"espeak-ng", "flite", "festival", "piper", "kokoro"}
        assert s["licence"] and s["settings"]
        assert s["split"] == split_of.get(sp, "training"), sp
        assert "mbrola" not in json.dumps(s).lower() and "pico" not in s["engine"]


def test_takes_are_distinct(clips: list[Path]) -> None:
    """No two clips are byte-identical (augmentation is seeded per clip)."""
    sizes = [c.stat().st_size for c in clips]
    data = {}
    for c, size in zip(clips, sizes, strict=True):
        if sizes.count(size) > 1:
            data.setdefault(c.read_bytes(), []).append(c)
    assert all(len(v) == 1 for v in data.values())


def test_recordings_are_noisy_not_studio_clean(clips: list[Path]) -> None:
    """Background noise at 15-40 dB SNR: word-to-background level (loudest vs 20th-percentile 50-ms frame).

    Measured on every 40th clip: v2 24-54 dB, median 37; v1 (-80 dBFS floor) 44-69 dB.
    """
    levels = []
    for c in clips[::40]:
        x, _ = sf.read(str(c), dtype="float32")
        rms = np.sqrt(np.mean(x.reshape(20, 800) ** 2, axis=1))
        levels.append(20 * np.log10(rms.max() / np.percentile(rms, 20)))
    assert np.median(levels) < 45 and max(levels) < 60, np.percentile(levels, [0, 50, 100])


def test_speakers_task_tests_unseen_clips_of_seen_speakers() -> None:
    """The speakers task splits each speaker's clips 80/10/10: every test speaker also trains."""
    from core.data.datasets import load_table, select

    table = select(load_table("sample", str(SAMPLE)), "speakers", "all")
    by_split: dict[str, set[str]] = defaultdict(set)
    for speaker, split in zip(table.speakers, table.speaker_split, strict=True):
        by_split[split].add(speaker)
    assert by_split["test"] == by_split["train"] == by_split["validation"]
    assert len(by_split["test"]) >= 24
    assert len(set(table.paths)) == len(table.paths)  # each clip in exactly one split


def test_clips_are_written_byte_identically(tmp_path: Path) -> None:
    """libsndfile gives every Ogg stream a random serial number; make_sample stamps a stable one (and
    redoes the page CRCs), so writing the same clip twice gives the same bytes and the same audio.
    The committed clips predate the stamp: a regeneration differs from them in serials only."""
    from scripts.make_sample import clip_serial, stable_ogg_serial, write_clip

    source = sorted((SAMPLE / "yes").glob("*.ogg"))[0]
    pcm = np.round(sf.read(source, dtype="float32")[0] * 32767).astype(np.int16)
    a, b = tmp_path / "a" / "yes" / source.name, tmp_path / "b" / "yes" / source.name
    for path in (a, b):
        path.parent.mkdir(parents=True)
        write_clip(path, pcm)
    assert a.read_bytes() == b.read_bytes()
    assert sf.info(str(a)).subtype == "OPUS"  # libsndfile accepts the rewritten page checksums
    committed = stable_ogg_serial(source.read_bytes(), clip_serial(source))
    assert np.array_equal(sf.read(source)[0], sf.read(io.BytesIO(committed))[0])
