"""A stored result is what its key says: forged, re-keyed, mistyped or oversized entries read as missing,
imports never overwrite a different stored entry, and bundles that do not parse are one BundleError line."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.errors import BundleError
from core.geometry.options import ConvexityOptions
from core.results.bundle import export_bundle, import_bundle
from core.results.kinds import convexity_entry
from core.results.store import (
    ENTRY_NAME,
    StoredResult,
    clean_stale,
    list_results,
    load_result,
    results_root,
    save_result,
)
from tests.helpers.builders import fake_features


@pytest.fixture(autouse=True)
def cache(private_cache: Path) -> Path:
    return private_cache


@pytest.fixture
def genuine() -> StoredResult:
    """A real convexity entry computed through the store."""
    fs = fake_features()
    entry, _ = convexity_entry(
        fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    )
    return entry


def _reseal(doc: dict) -> dict:
    """Recompute an edited entry document's self-checksum, as a forger would."""
    from core.results.store import _doc_sha  # the forger's tool: only this test reaches for it

    doc["sha256"] = _doc_sha(doc)
    return doc


def _edit_entry(key: str, edit) -> Path:
    """Apply ``edit`` to a stored entry's document and reseal it."""
    path = results_root() / key / ENTRY_NAME
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(_reseal(doc)))
    return path


def test_a_resealed_entry_under_another_key_reads_as_missing(genuine: StoredResult) -> None:
    other = "0" * 64
    (results_root() / genuine.key).rename(results_root() / other)
    _edit_entry(other, lambda d: d.update(key=other))
    assert load_result(other) is None
    assert [e.key for e in list_results()] == []


def test_a_criteria_entry_posing_as_convexity_reads_as_missing(genuine: StoredResult) -> None:
    _edit_entry(genuine.key, lambda d: d.update(kind="criteria"))
    assert load_result(genuine.key) is None


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["provenance"].update(created=5),
        lambda d: d["provenance"].update(model_id=None),
        lambda d: d["provenance"].update(label_sets="word"),
        lambda d: d["provenance"].update(n_clips="many"),
        lambda d: d.update(provenance=[]),
        lambda d: d["data"].update(deep=json.loads("[" * 200 + "]" * 200)),
        lambda d: d.update(data={}),
        lambda d: d["data"]["curves"]["word"].update(results=[]),
        lambda d: d["data"]["curves"]["word"]["results"][0].update(score="high"),
        lambda d: d["data"]["curves"]["word"]["results"][0]["per_class"].update(w0=[]),
    ],
    ids=[
        "created-int",
        "model-null",
        "label-sets-str",
        "n-clips-str",
        "prov-list",
        "deep",
        "data-empty",
        "data-no-results",
        "data-score-str",
        "data-class-list",
    ],
)
def test_mistyped_entries_are_missing_to_every_reader(genuine: StoredResult, edit) -> None:
    _edit_entry(genuine.key, edit)
    assert load_result(genuine.key) is None
    assert list_results() == []  # no reader trips over it
    assert main(["results", "list"]) == 0


def test_an_npy_header_declaring_terabytes_is_refused_before_allocation(
    genuine: StoredResult,
) -> None:
    arrays = {"big": np.zeros(3)}
    entry = StoredResult(
        genuine.key, genuine.kind, genuine.request, genuine.provenance, genuine.data, arrays
    )
    save_result(entry)
    npy = results_root() / genuine.key / "big.npy"
    header = npy.read_bytes()[:128].replace(b"(3,)", b"(1099511627776,)")
    npy.write_bytes(header[:128])
    spec_shape = [1099511627776]

    def edit(d: dict) -> None:
        d["arrays"]["big"].update(shape=spec_shape, bytes=128)
        from core.io.atomic import sha256_file

        d["arrays"]["big"]["sha256"] = sha256_file(npy)

    _edit_entry(genuine.key, edit)
    assert load_result(genuine.key) is None  # no 8 TiB allocation, no MemoryError


def test_an_entry_folder_replaced_by_a_file_is_recomputed(genuine: StoredResult) -> None:
    folder = results_root() / genuine.key
    import shutil

    shutil.rmtree(folder)
    folder.write_text("not a folder")
    fs = fake_features()
    entry, hit = convexity_entry(
        fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    )
    assert not hit and load_result(entry.key) is not None


def test_import_never_overwrites_a_different_stored_result(
    genuine: StoredResult, tmp_path: Path
) -> None:
    bundle = export_bundle([genuine.key], tmp_path / "b.zip")
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(bundle) as zin, zipfile.ZipFile(forged, "w") as zout:
        manifest = json.loads(zin.read("manifest.json"))
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(ENTRY_NAME):
                doc = json.loads(data)
                for r in doc["data"]["curves"]["word"]["results"]:
                    r["score"] = 0.999
                data = json.dumps(_reseal(doc)).encode()
                import hashlib

                manifest["members"][info.filename] = {
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            if info.filename != "manifest.json":
                zout.writestr(info.filename, data)
        zout.writestr("manifest.json", json.dumps(manifest))
    before = (results_root() / genuine.key / ENTRY_NAME).read_bytes()
    with pytest.raises(BundleError, match="differ from the stored one"):
        import_bundle(forged)
    assert (results_root() / genuine.key / ENTRY_NAME).read_bytes() == before
    assert import_bundle(bundle) == [genuine.key]  # the same content: accepted, unchanged
    assert (results_root() / genuine.key / ENTRY_NAME).read_bytes() == before
    assert main(["results", "rm", genuine.key[:10]]) == 0 and load_result(genuine.key) is None
    assert import_bundle(forged) == [genuine.key]  # removed first: the user chose to replace it


def _zip(members: dict[str, bytes], **info_kw) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            for k, v in info_kw.items():
                setattr(info, k, v)
            zf.writestr(info, data)
    return buf.getvalue()


def _unknown_compression(data: bytes) -> bytes:
    """A zip whose member says it uses compression method 99 (local and central headers)."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = out.find(signature)
        out[at + offset : at + offset + 2] = (99).to_bytes(2, "little")
    return bytes(out)


KEY = "a" * 64
MANIFEST_OK = {
    "schema": 1,
    "entries": [KEY],
    "members": {f"{KEY}/entry.json": {"bytes": 2, "sha256": "x"}},
}


@pytest.mark.parametrize(
    "bundle",
    [
        _zip({"manifest.json": b"{}"}, flag_bits=0x1),
        _unknown_compression(_zip({"manifest.json": b"{}"})),
        _zip({"manifest.json": b"[" * 100000, f"{KEY}/entry.json": b"{}"}),
        _zip(
            {
                "manifest.json": json.dumps({**MANIFEST_OK, "members": {f"{KEY}/entry.json": 5}}),
                f"{KEY}/entry.json": b"{}",
            }
        ),
        _zip({"manifest.json": json.dumps(MANIFEST_OK), f"{KEY}/entry.json": b"{}"}),
        b"PK\x03\x04 not really a zip",
    ],
    ids=["encrypted", "compression", "deep-manifest", "spec-type", "bad-checksum", "not-zip"],
)
def test_bundles_that_do_not_parse_are_one_bundle_error(bundle: bytes) -> None:
    with pytest.raises(BundleError) as err:
        import_bundle(bundle)
    assert "\n" not in str(err.value)
    assert list(results_root().iterdir()) == []


def test_a_bundle_path_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no bundle"):
        import_bundle(tmp_path)


def test_clean_removes_leftovers_of_killed_writers_only(genuine: StoredResult) -> None:
    import os

    stale = results_root() / f".{genuine.key[:12]}-dead.tmp"
    stale.mkdir()
    fresh = results_root() / ".fresh-writer.tmp"
    fresh.mkdir()
    old = 0  # the epoch: far older than any live writer
    os.utime(stale, (old, old))
    lock = results_root() / f"{genuine.key}.lock"
    lock.touch()
    os.utime(lock, (old, old))
    removed = clean_stale()
    assert sorted(p.name for p in removed) == sorted([stale.name, lock.name])
    assert fresh.exists() and load_result(genuine.key) is not None


def test_entries_and_bundles_are_readable_by_other_users(
    genuine: StoredResult, tmp_path: Path
) -> None:
    folder = results_root() / genuine.key
    modes = {p.name: p.stat().st_mode & 0o777 for p in [folder, *folder.iterdir()]}
    assert modes == {folder.name: 0o755, **dict.fromkeys([p.name for p in folder.iterdir()], 0o644)}
    bundle = export_bundle([genuine.key], tmp_path / "b.zip")
    assert bundle.stat().st_mode & 0o777 == 0o644
