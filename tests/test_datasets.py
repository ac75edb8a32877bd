"""Dataset registry, labels, splits, subsampling, fingerprints and the resumable download, on real files."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.data.audio import load_clips
from core.data.datasets import (
    DATASETS,
    ClipTable,
    DatasetError,
    class_counts,
    download_file,
    download_speech_commands,
    extract_tar_atomic,
    get_dataset,
    load_table,
    scan_folder,
    select,
    split_counts,
)
from core.io.paths import REPO_ROOT

WORDS = ["yes", "no", "up", "down", "left"]


def _write(path: Path, seed: int, n: int = 400, ext_rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).uniform(-0.3, 0.3, n).astype(np.float32)
    sf.write(path, x, ext_rate)


def make_speech_commands(
    root: Path, speakers: dict[str, int], words: list[str] = WORDS, ext: str = "flac"
) -> list[str]:
    """Official layout: speakers maps id -> takes per word; lists name ``.wav`` files like the real set."""
    rels = []
    seed = 0
    for w in words:
        for spk, takes in speakers.items():
            for t in range(takes):
                rel = f"{w}/{spk}_nohash_{t}.{ext}"
                _write(root / rel, seed)
                seed += 1
                rels.append(rel)
    _write(root / "_background_noise_" / "white_noise.wav", 999, n=4000)
    (root / "README.md").write_text("not audio")
    rels.sort()
    val = [r for i, r in enumerate(rels) if i % 10 == 3]
    test = [r for i, r in enumerate(rels) if i % 10 == 7]
    wav = [r.rsplit(".", 1)[0] + ".wav" for r in (*val, *test)]
    (root / "validation_list.txt").write_text("\n".join(wav[: len(val)]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(wav[len(val) :]) + "\n")
    return rels


SPEAKERS = {f"spk{i:02d}": (12 if i < 4 else 3) for i in range(6)}  # 60 or 15 clips per speaker


@pytest.fixture(scope="module")
def sc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sc")
    make_speech_commands(root, SPEAKERS)
    return root


def test_registry_keys_and_unknown_key() -> None:
    assert {"sample", "speech-commands", "folder"} <= set(DATASETS)
    assert get_dataset("speech-commands").downloadable
    assert get_dataset("speech-commands").default_min_clips == 50
    with pytest.raises(DatasetError, match="known datasets: .*speech-commands"):
        get_dataset("speechcommands")
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_table("nope")


def test_speech_commands_layout_labels_and_official_splits(sc_root: Path) -> None:
    table = load_table("speech-commands", sc_root)
    n = len(WORDS) * sum(SPEAKERS.values())
    assert len(table) == n
    assert not any("_background_noise_" in p for p in table.paths)
    assert class_counts(table, "words") == {w: sum(SPEAKERS.values()) for w in sorted(WORDS)}
    assert class_counts(table, "speakers") == {s: k * len(WORDS) for s, k in SPEAKERS.items()}
    assert all(p.endswith(".flac") for p in table.paths)
    val = {ln.rsplit(".", 1)[0] for ln in (sc_root / "validation_list.txt").read_text().split()}
    test = {ln.rsplit(".", 1)[0] for ln in (sc_root / "testing_list.txt").read_text().split()}
    for p, s in zip(table.paths, table.word_split, strict=True):
        key = p.rsplit(".", 1)[0]
        assert s == ("validation" if key in val else "test" if key in test else "train")
    sizes = split_counts(table, "words")
    assert sizes == {"train": n - len(val) - len(test), "validation": len(val), "test": len(test)}
    for split in ("train", "validation", "test"):
        sub = select(table, "words", split)
        assert len(sub) == sizes[split] and set(sub.word_split) == {split}
    spk = table.speakers[table.paths.index("yes/spk03_nohash_2.flac")]
    assert spk == "spk03"


def test_torchaudio_download_layout_is_accepted(tmp_path: Path) -> None:
    inner = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    make_speech_commands(inner, {"aa": 1}, words=["yes"])
    assert load_table("speech-commands", tmp_path).root == inner


def test_speaker_split_no_leak_deterministic_and_stable(sc_root: Path, tmp_path: Path) -> None:
    table = load_table("speech-commands", sc_root)
    again = load_table("speech-commands", sc_root)
    assert table.speaker_split == again.speaker_split
    parts = {
        s: set(select(table, "speakers", s, min_clips=1).paths)
        for s in ("train", "validation", "test")
    }
    assert not (parts["train"] & parts["validation"]) and not (parts["train"] & parts["test"])
    assert not (parts["validation"] & parts["test"])
    assert set().union(*parts.values()) == set(table.paths)
    for spk, k in SPEAKERS.items():
        rows = [s for s, p in zip(table.speaker_split, table.speakers, strict=True) if p == spk]
        n = k * len(WORDS)
        assert rows.count("validation") == max(1, round(0.1 * n)) == rows.count("test")
    # another seed gives another split; dropping other speakers leaves a speaker's split alone
    other = load_table("speech-commands", sc_root, split_seed=1)
    assert other.speaker_split != table.speaker_split
    small = tmp_path / "small"
    make_speech_commands(small, {"spk00": 12})
    t2 = load_table("speech-commands", small)
    mine = {
        p: s
        for p, s, k in zip(table.paths, table.speaker_split, table.speakers, strict=True)
        if k == "spk00"
    }
    assert dict(zip(t2.paths, t2.speaker_split, strict=True)) == mine


def test_min_clips_filter(sc_root: Path) -> None:
    table = load_table("speech-commands", sc_root)
    default = select(table, "speakers", "all")  # Speech Commands default: >= 50 clips
    assert set(class_counts(default, "speakers")) == {"spk00", "spk01", "spk02", "spk03"}
    assert len(default) == 4 * 60
    with pytest.raises(DatasetError, match="no speaker .* >= 61"):
        select(table, "speakers", "all", min_clips=61)
    everyone = select(table, "speakers", "train", min_clips=15)
    assert len(class_counts(everyone, "speakers")) == 6


def test_stratified_max_clips(sc_root: Path) -> None:
    table = load_table("speech-commands", sc_root)
    train = select(table, "speakers", "train", min_clips=1)
    a = select(table, "speakers", "train", min_clips=1, max_clips=12, seed=0)
    b = select(table, "speakers", "train", min_clips=1, max_clips=12, seed=0)
    c = select(table, "speakers", "train", min_clips=1, max_clips=12, seed=5)
    assert len(a) == 12 and a.paths == b.paths and a.paths != c.paths
    assert set(class_counts(a, "speakers")) == set(class_counts(train, "speakers"))
    assert set(a.paths) <= set(train.paths) and set(a.speaker_split) == {"train"}
    big = select(table, "speakers", "train", min_clips=1, max_clips=40, seed=0)
    assert set(a.paths) <= set(big.paths)  # larger slices extend smaller ones
    counts = class_counts(big, "speakers")
    assert counts["spk00"] > counts["spk05"]  # proportional beyond the one-per-class floor
    words = select(table, "words", "test", max_clips=5, seed=3)
    assert class_counts(words, "words") == {w: 1 for w in sorted(WORDS)}
    with pytest.raises(DatasetError, match="fewer than the 5 classes"):
        select(table, "words", "test", max_clips=4)


def test_fingerprint_tracks_files(tmp_path: Path) -> None:
    root = tmp_path / "sc"
    make_speech_commands(root, {"aa": 2, "bb": 2})
    t1 = load_table("speech-commands", root)
    f1 = t1.fingerprint()
    assert f1 == load_table("speech-commands", root).fingerprint() == t1.fingerprint()
    target = root / t1.paths[0]
    _write(target, 12345, n=800)  # different content and size
    assert load_table("speech-commands", root).fingerprint() != f1
    assert t1.fingerprint() != f1  # an old table re-stats its files
    f2 = t1.fingerprint()
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, new mtime
    assert t1.fingerprint() != f2
    assert select(t1, "words", "train").fingerprint() != t1.fingerprint()


def test_folder_dataset_with_regex(tmp_path: Path) -> None:
    for label in ("cat", "dog"):
        for spk in ("alice", "bob"):
            for take in range(5):
                _write(tmp_path / label / f"{spk}-{take}.wav", take)
    _write(tmp_path / "dog" / "unnamed.ogg", 1)
    table = load_table("folder", tmp_path, speaker_regex=r"^([a-z]+)-\d+")
    assert len(table) == 21
    assert class_counts(table, "speakers") == {"alice": 10, "bob": 10}
    assert any("without a speaker" in n for n in table.notes)
    assert set(table.word_split) == {"train", "validation", "test"}  # seeded 80/10/10 per word
    spk = select(table, "speakers", "all", min_clips=10)
    assert len(spk) == 20 and "" not in spk.speakers
    with pytest.raises(DatasetError, match="needs a folder") as missing:
        load_table("folder")
    assert "root=" not in str(missing.value)  # worded for the dashboard and the CLI alike
    assert "Setup" in str(missing.value) and "--root" in str(missing.value)
    with pytest.raises(DatasetError, match="has no group"):
        scan_folder(tmp_path, speaker_regex=r"^[a-z]+")


def test_clear_errors_for_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"not found at .*python -m core download") as absent:
        load_table("speech-commands", tmp_path / "absent")
    assert "root=" not in str(absent.value) and "\n" not in str(absent.value)
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    (tmp_path / "empty" / "validation_list.txt").write_text("")
    (tmp_path / "empty" / "testing_list.txt").write_text("")
    with pytest.raises(DatasetError, match="no audio clips found"):
        load_table("speech-commands", tmp_path / "empty")
    (tmp_path / "nolists" / "yes").mkdir(parents=True)
    with pytest.raises(DatasetError, match="validation_list.txt"):
        load_table("speech-commands", tmp_path / "nolists")


# ---------------------------------------------------------------------------------------------
# Download path against a local HTTP server with Range support (no internet)


class _RangeServer:
    """Serves one blob at /a.tar.gz, honouring ``Range: bytes=N-``; records the Range headers."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.ranges: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(outer.blob):
                    self.send_response(416)
                    self.end_headers()
                    return
                body = outer.blob[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(outer.blob) - 1}/{len(outer.blob)}"
                    )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/a.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[bytes, str]]:
    src = tmp_path / "src"
    make_speech_commands(src, {"aa": 2, "bb": 2}, words=["yes", "no"])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname="./" + p.relative_to(src).as_posix(), recursive=False)
    blob = buf.getvalue()
    yield blob, hashlib.sha256(blob).hexdigest()


class _Interrupt(Exception):
    pass


def test_download_interrupt_resume_verify_extract(
    tmp_path: Path, archive: tuple[bytes, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blob, digest = archive
    server = _RangeServer(blob)
    try:
        dest = tmp_path / "data" / "speech_commands_v0.02"
        seen: list[tuple[int, int]] = []

        def stop_half_way(done: int, total: int) -> None:
            seen.append((done, total))
            if done >= total // 2:
                raise _Interrupt

        with pytest.raises(_Interrupt):
            download_speech_commands(
                dest, url=server.url, sha256=digest, progress=stop_half_way, chunk=1024
            )
        part = tmp_path / "data" / "speech_commands_v0.02.tar.gz.part"
        have = part.stat().st_size
        assert 0 < have < len(blob) and not dest.exists()
        assert seen[-1][1] == len(blob)

        # resume through the registry entry (pointed at the local server)
        spec = dataclasses.replace(DATASETS["speech-commands"], url=server.url, sha256=digest)
        monkeypatch.setitem(DATASETS, "speech-commands", spec)
        resumed: list[tuple[int, int]] = []
        table = load_table(
            "speech-commands", dest, download=True, progress=lambda d, t: resumed.append((d, t))
        )
        assert server.ranges == [None, f"bytes={have}-"]
        assert resumed[0] == (have, len(blob)) and resumed[-1] == (len(blob), len(blob))
        assert isinstance(table, ClipTable) and len(table) == 8 and table.root == dest
        assert (
            not part.exists() and not (tmp_path / "data" / "speech_commands_v0.02.tar.gz").exists()
        )
        assert [p.name for p in (tmp_path / "data").iterdir()] == ["speech_commands_v0.02"]
        clips, skipped = load_clips(table.abs_paths())
        assert clips.shape == (8, 16000) and not skipped
        # a complete folder is not downloaded again
        assert download_speech_commands(dest, url=server.url) == dest and len(server.ranges) == 2
    finally:
        server.close()


def test_download_checksum_mismatch_and_file_url(
    tmp_path: Path, archive: tuple[bytes, str]
) -> None:
    blob, digest = archive
    src = tmp_path / "a.tar.gz"
    src.write_bytes(blob)
    with pytest.raises(DatasetError, match="checksum mismatch"):
        download_file(src.as_uri(), tmp_path / "out" / "x.tar.gz", sha256="0" * 64)
    assert not any((tmp_path / "out").iterdir())  # the bad .part is deleted
    got = download_file(src.as_uri(), tmp_path / "out" / "x.tar.gz", sha256=digest)
    assert got.read_bytes() == blob


def test_extract_rejects_unsafe_and_truncated_archives(
    tmp_path: Path, archive: tuple[bytes, str]
) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    out = tmp_path / "x" / "dest"
    with pytest.raises(DatasetError, match="could not extract"):
        extract_tar_atomic(evil, out)
    assert not (tmp_path / "x" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "x").iterdir()) == []  # no half-made folder left behind
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(archive[0][: len(archive[0]) // 2])
    with pytest.raises(DatasetError, match="could not extract"):
        extract_tar_atomic(truncated, out)
    assert list((tmp_path / "x").iterdir()) == []


@pytest.mark.skipif(
    not (REPO_ROOT / "data" / "sample").is_dir(), reason="data/sample not generated"
)
def test_bundled_sample() -> None:
    table = load_table("sample")
    words = class_counts(table, "words")
    assert len(words) == 35 and "_background_noise_" not in words
    speakers = class_counts(table, "speakers")
    assert len(speakers) >= 20
    kept = select(table, "speakers", "all")  # the sample's default min_clips keeps every speaker
    assert set(class_counts(kept, "speakers")) == set(speakers)
    for task in ("words", "speakers"):
        assert all(v > 0 for v in split_counts(table, task).values())
    few = select(table, "words", "test", max_clips=35, seed=0)
    clips, skipped = load_clips(few.abs_paths())
    assert clips.shape == (35, 16000) and not skipped


def test_cli_download_command(
    tmp_path: Path, archive: tuple[bytes, str], capsys: pytest.CaptureFixture
) -> None:
    """`python -m core download` fetches, verifies and unpacks (a file:// mirror stands in here)."""
    from core.cli.main import main

    blob, digest = archive
    src = tmp_path / "mirror.tar.gz"
    src.write_bytes(blob)
    root = tmp_path / "sc"
    argv = ["download", "--root", str(root), "--url", src.as_uri(), "--no-progress"]
    assert main([*argv, "--sha256", "0" * 64]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert main([*argv, "--sha256", digest]) == 0
    assert (root / "validation_list.txt").is_file() and (root / "yes").is_dir()
    table = load_table("speech-commands", root)
    assert set(table.words) == {"yes", "no"}


def test_feature_source_carries_the_folder_and_speaker_rule_of_an_extraction(
    tiny_assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run made from a folder's features reads the same folder under the same rules (meta.json keeps
    the folder at top level and the rules in ``selection``)."""
    from core.data.features import Selection, extract_features
    from core.data.source import ClipSource
    from core.training.configs import DataSelection, FinetuneConfig

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    sel = Selection.of(
        "folder",
        root=str(tiny_assets["data"]),
        speaker_regex=r"^(spk\d)_",
        split_seed=3,
        min_clips=5,
    )
    fs = extract_features(str(tiny_assets["wav2vec2"]), sel, device="cpu", batch_size=64)
    src = fs.source
    assert src == fs.info.source == sel.source
    assert src == ClipSource("folder", str(tiny_assets["data"]), r"^(spk\d)_", 3, 5)
    cfg = FinetuneConfig(model="m", data=DataSelection(src))
    stored = cfg.to_dict()  # config.json: flat, one key per setting
    assert {k: stored[k] for k in ("root", "speaker_regex", "split_seed", "min_clips")} == {
        "root": str(tiny_assets["data"]),
        "speaker_regex": r"^(spk\d)_",
        "split_seed": 3,
        "min_clips": 5,
    }
    assert FinetuneConfig.from_dict(stored).data.source == src
    with pytest.raises(DatasetError, match="does not record"):
        ClipSource.from_meta({"dataset": "folder", "selection": {}})
