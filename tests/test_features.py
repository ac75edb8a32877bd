"""Feature extraction and its disk cache, on a tiny random wav2vec2 saved to disk and real audio files."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.audio import load_clips
from core.data.datasets import load_table
from core.data.features import (
    FeatureError,
    FeatureSet,
    Selection,
    extract_features,
    list_cached_features,
    list_feature_infos,
    load_cached_features,
)
from core.models.loading import load_encoder, resolve
from core.models.request import ModelRequest
from tests.helpers.tiny_assets import SPEAKERS, WORDS, D, L, N, write_tree

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def cache(private_cache: Path) -> Path:
    """A fresh, private cache root per test."""
    return private_cache


def sel(tree: Path, **kw) -> Selection:
    """A selection of the test folder."""
    return Selection.of("folder", str(tree), **kw)


def test_features_shape_labels_and_values_match_the_encoder(tree: Path, model_dir: Path) -> None:
    fs = extract_features(str(model_dir), sel(tree), batch_size=4)
    assert fs.features.shape == (N, L + 1, D)
    assert fs.features.dtype == np.float32
    assert np.isfinite(fs.features).all()
    assert not fs.from_cache and fs.skipped == []
    assert sorted(set(fs.words)) == list(WORDS) and sorted(set(fs.speakers)) == list(SPEAKERS)
    assert all(Path(p).parent.name == w for p, w in zip(fs.paths, fs.words, strict=True))
    m = fs.meta
    assert m["shape"] == [N, L + 1, D] and m["pooling"] == "mean-valid-frames"
    assert m["input_mode"] == "waveform" and m["n_layers"] == L
    assert m["weights"].startswith("files-sha256:") and m["clips_per_s"] > 0
    # Row i is clip paths[i]: compare with the encoder run directly on the same files.
    enc = load_encoder(str(model_dir), device="cpu")
    waves, _ = load_clips([tree / p for p in fs.paths])
    direct = enc.pooled(waves, batch_size=N).numpy()
    np.testing.assert_allclose(fs.features, direct, rtol=1e-4, atol=1e-5)


def test_second_call_hits_the_cache(tree: Path, model_dir: Path) -> None:
    t0 = time.perf_counter()
    first = extract_features(str(model_dir), sel(tree))
    t1 = time.perf_counter()
    again = extract_features(str(model_dir), sel(tree))
    t2 = time.perf_counter()
    assert again.from_cache and again.key == first.key
    assert isinstance(again.features, np.memmap) and not again.features.flags.writeable
    np.testing.assert_array_equal(again.features, first.features)
    assert again.paths == first.paths and again.words == first.words
    assert t2 - t1 < 1.0 and t2 - t1 < t1 - t0
    files = sorted(p.name for p in first.directory.iterdir())
    assert files == ["features.npy", "meta.json"]  # no temp files left behind
    listed = list_cached_features()
    assert [d["key"] for d in listed] == [first.key] and listed[0]["complete"]
    (info,) = list_feature_infos()
    assert info == first.info and info.label().endswith(f"· {first.key[:8]}")
    assert f"{info.n_clips} clips (cap all)" in info.label()
    assert load_cached_features(first.key[:10]).key == first.key


def _recomputed(tree: Path, model_dir: Path, before: np.ndarray, caplog) -> None:
    """Extract again and check the cache was rejected with a one-line warning and rebuilt equal."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.data.features"):
        fs = extract_features(str(model_dir), sel(tree))
    assert not fs.from_cache
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.data.features"]
    assert len(warnings) == 1 and "recomputing" in warnings[0] and "\n" not in warnings[0]
    np.testing.assert_array_equal(fs.features, before)
    assert extract_features(str(model_dir), sel(tree)).from_cache


def test_truncated_or_altered_features_are_recomputed(tree: Path, model_dir: Path, caplog) -> None:
    fs = extract_features(str(model_dir), sel(tree))
    before = np.array(fs.features)
    path = fs.directory / "features.npy"
    del fs
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])  # truncated
    _recomputed(tree, model_dir, before, caplog)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, one byte changed: only the checksum can tell
    path.write_bytes(bytes(data))
    _recomputed(tree, model_dir, before, caplog)


def test_corrupt_or_mismatched_meta_is_recomputed(tree: Path, model_dir: Path, caplog) -> None:
    fs = extract_features(str(model_dir), sel(tree))
    before = np.array(fs.features)
    meta_path = fs.directory / "meta.json"
    meta_text = meta_path.read_text()
    meta_path.write_text(meta_text[: len(meta_text) // 2])  # truncated JSON
    _recomputed(tree, model_dir, before, caplog)
    meta = json.loads(meta_text)
    meta["shape"] = [N, L + 1, D + 1]  # valid JSON that disagrees with the array
    meta_path.write_text(json.dumps(meta))
    _recomputed(tree, model_dir, before, caplog)
    meta_path.unlink()  # no commit marker: recomputed silently
    again = extract_features(str(model_dir), sel(tree))
    assert not again.from_cache


def test_keys_follow_the_selection_and_the_model(
    tree: Path, model_dir: Path, tmp_path: Path
) -> None:
    base = extract_features(str(model_dir), sel(tree))
    keys = {base.key}
    for variant in (
        sel(tree, max_clips=6),
        sel(tree, max_clips=6, seed=1),
        sel(tree, split="train"),
        sel(tree, task="speakers", min_clips=2),
    ):
        fs = extract_features(str(model_dir), variant)
        assert not fs.from_cache and fs.key not in keys
        keys.add(fs.key)
    small = extract_features(str(model_dir), sel(tree, max_clips=6))
    assert small.from_cache and small.features.shape[0] == 6
    # Whisper's input mode does not concern a waveform model: same key.
    padded = ModelRequest(str(model_dir), "padded")
    assert extract_features(padded, sel(tree)).key == base.key
    # Other weights (a pruned copy saved elsewhere): another key.
    enc = load_encoder(str(model_dir), device="cpu")
    from core.models.pruning import prune

    prune(enc, 2)
    pruned = enc.save_pretrained(tmp_path / "pruned")
    fs = extract_features(str(pruned), sel(tree))
    assert fs.key not in keys and fs.features.shape == (N, 3, D)
    # Touching a clip changes the dataset fingerprint, hence the key.
    clip = tree / "go" / "aa11_nohash_0.wav"
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    try:
        assert extract_features(str(model_dir), sel(tree)).key != base.key
    finally:
        os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_batch_sizes_and_oom_halving_give_the_same_features(tree: Path, model_dir: Path) -> None:
    ref = np.array(extract_features(str(model_dir), sel(tree), batch_size=1, cache=False).features)
    big = extract_features(str(model_dir), sel(tree), batch_size=64, cache=False)  # > N
    np.testing.assert_allclose(big.features, ref, rtol=1e-4, atol=1e-5)
    assert big.meta["oom_retries"] == 0

    enc = load_encoder(str(model_dir), device="cpu")
    forward = enc.model.forward
    calls = {"oom": 0}

    def flaky_forward(*args, **kwargs):
        """Runs out of memory once, on the first batch larger than 4 clips."""
        batch = kwargs["input_values"].shape[0]
        if batch > 4 and calls["oom"] == 0:
            calls["oom"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    enc.model.forward = flaky_forward
    fs = extract_features(enc, sel(tree), batch_size=8, cache=False)
    assert calls["oom"] == 1
    assert fs.meta["oom_retries"] == 1 and fs.meta["final_batch_size"] == 4
    np.testing.assert_allclose(fs.features, ref, rtol=1e-4, atol=1e-5)


def test_no_cache_leaves_nothing_behind(tree: Path, model_dir: Path, cache: Path) -> None:
    progress: list[tuple[int, int]] = []
    fs = extract_features(
        str(model_dir),
        sel(tree),
        cache=False,
        batch_size=4,
        progress=lambda d, t: progress.append((d, t)),
    )
    assert fs.features.shape == (N, L + 1, D) and not fs.from_cache and fs.directory is None
    assert progress[0] == (0, N) and progress[-1] == (N, N)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert list((cache / "features").iterdir()) == []


def test_bad_clips_are_skipped_and_reported(tree: Path, model_dir: Path, tmp_path: Path) -> None:
    bad_tree = write_tree(tmp_path / "bad")
    (bad_tree / "go" / "zz99_nohash_0.wav").write_bytes(b"RIFF not really a wav file")
    (bad_tree / "yes" / "zz99_nohash_1.wav").write_bytes(b"")
    fs = extract_features(str(model_dir), sel(bad_tree), batch_size=4)
    assert fs.features.shape == (N, L + 1, D)
    assert sorted(s["path"] for s in fs.skipped) == [
        "go/zz99_nohash_0.wav",
        "yes/zz99_nohash_1.wav",
    ]
    assert all(s["reason"] for s in fs.skipped) and "zz99" not in "".join(fs.speakers)
    good = extract_features(str(model_dir), sel(tree))  # same clips minus the bad ones
    np.testing.assert_allclose(fs.features, good.features, rtol=1e-4, atol=1e-5)
    cached = extract_features(str(model_dir), sel(bad_tree))
    assert cached.from_cache and cached.skipped == fs.skipped

    only_bad = tmp_path / "only_bad"
    for w in ("a", "b"):
        (only_bad / w).mkdir(parents=True)
        (only_bad / w / "s_nohash_0.wav").write_bytes(b"junk")
    with pytest.raises(FeatureError, match="none of the 2 clips could be read"):
        extract_features(str(model_dir), sel(only_bad))


def test_concurrent_requests_compute_once(tree: Path, model_dir: Path) -> None:
    table = load_table("folder", tree)
    assert len(table) == N
    results = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        results.append(extract_features(str(model_dir), sel(tree)))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 3
    assert sorted(r.from_cache for r in results) == [False, True, True]
    for r in results[1:]:
        np.testing.assert_array_equal(r.features, results[0].features)


def test_cache_key_is_unchanged_by_asking_the_registry_for_identity(tree: Path, model_dir: Path):
    """The key is still sha256 of the documented payload, with the weights identity the registry reports."""
    import hashlib

    from core.io.atomic import sha256_file

    selection = sel(tree, max_clips=6)
    fs = extract_features(str(model_dir), selection)
    files = sorted(p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".json"))
    weights = hashlib.sha256(
        "".join(f"{p.name}\0{sha256_file(p)}\n" for p in files).encode()
    ).hexdigest()
    assert resolve(ModelRequest(str(model_dir))).identity.weights == "files-sha256:" + weights
    payload = {
        "format": 1,
        "model": {
            "model_key": str(model_dir),
            "model_id": str(model_dir),
            "source": "local",
            "weights": "files-sha256:" + weights,
            "input_mode": "waveform",
            "n_layers": L,
        },
        "dataset_fingerprint": selection.table().fingerprint(),
        "selection": selection.key_part(),
        "pooling": "mean-valid-frames",
    }
    assert fs.key == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def test_offline_whisper_key_matches_the_one_computed_before_the_move() -> None:
    """Pinned: the key features.py computed itself (before identity moved to core.models) for these inputs."""
    from core.data.features import feature_key, key_identity
    from core.models.whisper_offline import offline_whisper_available

    if not offline_whisper_available("whisper-tiny.en-offline"):
        pytest.skip("the whisper-tiny.en weight package is not installed")
    identity = key_identity(resolve(ModelRequest("whisper-tiny.en-offline", "trimmed")))
    key = feature_key(identity, "fp", {"dataset": "sample"})
    assert key == "69ec7c690f84562a2a66c81a3d890455c9e430ae13cd2935f35e1115510f4bef"


def test_unusable_cache_folder_and_label_set_are_one_line_lab_errors(tmp_path: Path, monkeypatch):
    from core.errors import LabError, StorageError
    from core.io.atomic import atomic_write_json
    from core.io.paths import cache_dir

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(blocker / "cache"))
    with pytest.raises(StorageError, match="CONVEXITY_LAB_CACHE") as info:
        cache_dir()
    assert isinstance(info.value, OSError) and "\n" not in str(info.value)
    with pytest.raises(StorageError, match="cannot write"):
        atomic_write_json(blocker / "meta.json", {})
    assert blocker.read_text() == "not a folder"
    with pytest.raises(LabError, match="unknown label set 'colour'"):
        FeatureSet(np.zeros((0, 1, 1)), [], [], [], [], {}).labels("colour")


def test_the_listing_leaves_out_a_set_whose_meta_lacks_a_field(tree: Path, model_dir: Path) -> None:
    fs = extract_features(str(model_dir), sel(tree))
    meta_path = fs.directory / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["model_key"]
    meta_path.write_text(json.dumps(meta))
    assert [d["key"] for d in list_cached_features()] == [fs.key]
    assert list_feature_infos() == []
