"""Bring your own features: .npy/.npz embeddings with a labels table become a checked feature set."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.data.features import load_cached_features
from core.data.imported import import_features
from core.errors import FeatureError
from core.geometry.options import ConvexityOptions
from core.results.kinds import stored_convexity

N, STATES, D = 24, 4, 6


@pytest.fixture(autouse=True)
def cache(private_cache: Path) -> Path:
    return private_cache


@pytest.fixture
def hidden() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, STATES, D))


def _labels(tmp_path: Path, n: int = N, header: str = "word,speaker,path") -> Path:
    rows = "".join(f"w{i % 3},s{i % 2},clip{i}.wav\n" for i in range(n))
    path = tmp_path / "labels.csv"
    path.write_text(f"{header}\n{rows}")
    return path


def test_a_3d_npy_becomes_a_cached_feature_set_every_reader_uses(
    tmp_path: Path, hidden: np.ndarray
) -> None:
    np.save(tmp_path / "h.npy", hidden)
    fs = import_features(tmp_path / "h.npy", _labels(tmp_path), name="my-model")
    assert fs.features.shape == (N, STATES, D) and fs.features.dtype == np.float32
    np.testing.assert_array_equal(fs.features, hidden.astype(np.float32))
    assert fs.words[:3] == ["w0", "w1", "w2"] and fs.speakers[:2] == ["s0", "s1"]
    assert fs.meta["model_key"] == "imported:my-model" and fs.n_layers == STATES - 1
    assert fs.paths[0] == "clip0.wav"
    again = load_cached_features(fs.key)
    np.testing.assert_array_equal(again.features, fs.features)
    assert import_features(tmp_path / "h.npy", _labels(tmp_path), name="my-model").key == fs.key
    curves = stored_convexity(
        fs, {"word": fs.words}, ConvexityOptions(k=4, max_pairs_per_class=None)
    )
    assert curves["word"].scores.shape == (STATES,)


def test_per_layer_npz_members_are_ordered_by_their_numbers(
    tmp_path: Path, hidden: np.ndarray
) -> None:
    many = np.random.default_rng(1).normal(size=(N, 11, D)).astype(np.float16)
    np.savez(tmp_path / "layers.npz", **{f"layer_{i}": many[:, i] for i in range(11)})
    fs = import_features(tmp_path / "layers.npz", _labels(tmp_path, header="class,speaker,path"))
    np.testing.assert_array_equal(fs.features, many.astype(np.float32))  # layer_10 last


def _forged_npy(shape: str) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3))
    return buf.getvalue()[:128].replace(b"(3,)", shape.encode()).ljust(128, b" ")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, h: np.save(p / "x.npy", h[:, 0]), "must hold one \\(N, L\\+1, D\\) array"),
        (lambda p, h: np.save(p / "x.npy", (h * 10).astype(np.int32)), "not a real float"),
        (lambda p, h: np.save(p / "x.npy", np.array([{}] * N), allow_pickle=True), "real float"),
        (lambda p, h: (p / "x.npy").write_bytes(_forged_npy("(1099511627776, 4, 6)")), "header"),
        (lambda p, h: (p / "x.npy").write_bytes(b"not an array"), "not a .npy"),
        (lambda p, h: np.save(p / "x.npy", h[:10]), "has 24 rows but x.npy has 10 points"),
        (
            lambda p, h: np.save(p / "x.npy", np.where(h > 2.5, np.nan, h)),
            "non-finite value at row",
        ),
    ],
    ids=["2d", "int", "object", "forged-header", "garbage", "row-count", "nan"],
)
def test_bad_arrays_are_refused_in_one_line_before_anything_is_cached(
    tmp_path: Path, hidden: np.ndarray, cache: Path, make, message: str
) -> None:
    make(tmp_path, hidden)
    with pytest.raises(FeatureError, match=message) as err:
        import_features(tmp_path / "x.npy", _labels(tmp_path))
    assert "\n" not in str(err.value)
    assert not [p for p in cache.rglob("*.npy")] and not [p for p in cache.rglob("*.tmp")]


def test_bad_npz_and_labels_are_refused(tmp_path: Path, hidden: np.ndarray) -> None:
    np.savez(tmp_path / "mixed.npz", a=hidden[:, 0], b=hidden[:, 0, :3])
    with pytest.raises(FeatureError, match="differ in shape"):
        import_features(tmp_path / "mixed.npz", _labels(tmp_path))
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(FeatureError, match="not a plain .npy"):
        import_features(tmp_path / "odd.npz", _labels(tmp_path))
    np.save(tmp_path / "h.npy", hidden)
    with pytest.raises(FeatureError, match="needs a header with a 'word'"):
        import_features(tmp_path / "h.npy", _labels(tmp_path, header="name,speaker,path"))
    blank = tmp_path / "blank.csv"
    blank.write_text("word\n" + "w\n" * (N - 1) + "\n")
    with pytest.raises(FeatureError):
        import_features(tmp_path / "h.npy", blank)
    with pytest.raises(FeatureError, match="name"):
        import_features(tmp_path / "h.npy", _labels(tmp_path), name="../escape")


def test_cli_imports_and_bad_input_is_exit_2(
    tmp_path: Path, hidden: np.ndarray, capsys: pytest.CaptureFixture
) -> None:
    np.save(tmp_path / "h.npy", hidden)
    assert main(["import-features", str(tmp_path / "h.npy"), str(_labels(tmp_path))]) == 0
    assert "python -m core convexity --key" in capsys.readouterr().out
    assert main(["import-features", str(tmp_path / "none.npy"), str(_labels(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no features file" in err[0]


def test_a_3d_npz_member_is_copied_in_blocks_and_a_late_nan_is_found(
    tmp_path: Path, hidden: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.data.imported as imported

    monkeypatch.setattr(imported, "CHUNK_BYTES", 5 * STATES * D * 8)  # 5 rows a block
    np.savez(tmp_path / "one.npz", hidden=hidden)
    fs = import_features(tmp_path / "one.npz", _labels(tmp_path))
    np.testing.assert_array_equal(fs.features, hidden.astype(np.float32))
    bad = hidden.copy()
    bad[17, 2, 1] = np.inf
    np.savez(tmp_path / "bad.npz", hidden=bad)
    with pytest.raises(FeatureError, match="row 17, hidden state 2"):
        import_features(tmp_path / "bad.npz", _labels(tmp_path))


def test_an_upload_is_imported_from_a_temp_copy_under_its_own_cap(
    tmp_path: Path, hidden: np.ndarray
) -> None:
    import tempfile

    from core.data.imported import import_uploaded

    def uploads() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("convexity-lab-upload-*")}

    before = uploads()
    buf = io.BytesIO()
    np.save(buf, hidden)
    labels = io.BytesIO(_labels(tmp_path).read_bytes())
    fs = import_uploaded(buf, "my feats (v2).npy", labels, "labels.csv", root=tmp_path)
    assert fs.meta["model_key"] == "imported:my-feats-v2"
    assert fs.meta["root"] == str(tmp_path.resolve())
    with pytest.raises(FeatureError, match="exceeds"):
        import_uploaded(buf, "h.npy", labels, "labels.csv", name="other", max_bytes=1024)
    with pytest.raises(FeatureError, match="expected a .csv or .tsv"):
        import_uploaded(buf, "h.npy", labels, "labels.xlsx")
    with pytest.raises(FeatureError, match="no folder at"):
        import_uploaded(buf, "h.npy", labels, "labels.csv", name="x", root=tmp_path / "none")
    assert uploads() == before


@pytest.mark.parametrize("layout", ["3d", "per-layer"])
def test_import_progress_counts_every_vector_once(
    tmp_path: Path, hidden: np.ndarray, layout: str
) -> None:
    if layout == "3d":
        np.save(tmp_path / "h.npy", hidden)
        path = tmp_path / "h.npy"
    else:
        np.savez(tmp_path / "h.npz", **{f"layer_{i}": hidden[:, i] for i in range(STATES)})
        path = tmp_path / "h.npz"
    seen: list[tuple[int, int]] = []
    import_features(path, _labels(tmp_path), progress=lambda d, t: seen.append((d, t)))
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1] == (N * STATES, N * STATES)


def test_a_fortran_ordered_npz_member_is_read_in_blocks(
    tmp_path: Path, hidden: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fortran order is spooled and read in row blocks, never loaded whole: whole-array reads are
    made to fail, and the copy still equals the source in both layouts."""
    import core.data.imported as imported

    monkeypatch.setattr(imported, "CHUNK_BYTES", 5 * STATES * D * 8)  # 5 rows a block
    monkeypatch.setattr(
        np.lib.format, "read_array", lambda *a, **k: pytest.fail("a member was read whole")
    )
    np.savez(tmp_path / "f3.npz", hidden=np.asfortranarray(hidden))
    fs = import_features(tmp_path / "f3.npz", _labels(tmp_path))
    np.testing.assert_array_equal(fs.features, hidden.astype(np.float32))
    layers = {f"layer_{i}": np.asfortranarray(hidden[:, i, :]) for i in range(STATES)}
    np.savez_compressed(tmp_path / "f2.npz", **layers)
    fs2 = import_features(tmp_path / "f2.npz", _labels(tmp_path))
    np.testing.assert_array_equal(fs2.features, hidden.astype(np.float32))


def _flip_one_data_byte(path: Path, member: str) -> None:
    """Corrupt one stored byte of ``member``'s data, so its CRC no longer matches."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = bytearray(path.read_bytes())
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size - 3] ^= 0xFF  # inside the array data, past the .npy header
    path.write_bytes(bytes(raw))


def test_a_damaged_archive_is_one_line_and_caches_nothing(
    tmp_path: Path, hidden: np.ndarray, private_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "crc.npz", hidden=hidden)
    _flip_one_data_byte(tmp_path / "crc.npz", "hidden.npy")
    with pytest.raises(FeatureError, match="crc.npz: the archive is damaged"):
        import_features(tmp_path / "crc.npz", _labels(tmp_path))
    assert main(["import-features", str(tmp_path / "crc.npz"), str(_labels(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged" in err[0]
    features = private_cache / "features"
    assert not features.exists() or not any(p.name.endswith(".npy") for p in features.rglob("*"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"word,speaker\n" + b"a" * 140_000 + b",s\n", "not a readable table"),
        (b"word,speaker\nw\xe9,s\n", r"not UTF-8 text \(byte 0xe9 at offset 14\)"),
    ],
    ids=["huge-field", "latin-1"],
)
def test_malformed_tables_are_one_line(
    tmp_path: Path, hidden: np.ndarray, body: bytes, message: str
) -> None:
    np.save(tmp_path / "h.npy", hidden[:2])
    (tmp_path / "labels.csv").write_bytes(body)
    with pytest.raises(FeatureError, match=message) as err:
        import_features(tmp_path / "h.npy", tmp_path / "labels.csv")
    assert str(tmp_path) not in str(err.value)  # names the file, not a server path


def test_old_mac_line_ends_are_read(tmp_path: Path, hidden: np.ndarray) -> None:
    np.save(tmp_path / "h.npy", hidden)
    rows = "".join(f"w{i % 3},s{i % 2}\r" for i in range(N))
    (tmp_path / "labels.csv").write_bytes(f"word,speaker\r{rows}".encode())
    fs = import_features(tmp_path / "h.npy", tmp_path / "labels.csv")
    assert list(fs.labels("word"))[:4] == ["w0", "w1", "w2", "w0"]
