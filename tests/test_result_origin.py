"""Imported results are never mistaken for computed ones: the store records each entry's origin, every
listing and the CLI say it, ``results verify`` recomputes, and ``--computed-only`` ignores imports."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.data.imported import import_features
from core.geometry.options import ConvexityOptions
from core.results.bundle import export_bundle, import_bundle
from core.results.compare import series_of
from core.results.export import json_with_provenance
from core.results.kinds import convexity_entry
from core.results.origin import ORIGIN_NAME
from core.results.store import ENTRY_NAME, _doc_sha, list_results, load_result, results_root

N, STATES, D = 60, 3, 4
FORGED = 0.999


@pytest.fixture(autouse=True)
def cache(private_cache: Path) -> Path:
    return private_cache


@pytest.fixture
def features(tmp_path: Path):  # noqa: ANN201
    """A real cached feature set: 6 words of 10 clips, 3 hidden states."""
    rng = np.random.default_rng(0)
    words = np.repeat(np.arange(6), 10)
    hidden = rng.normal(size=(N, STATES, D)) + words[:, None, None] * 0.8
    np.save(tmp_path / "h.npy", hidden)
    rows = "".join(f"w{w},s{i % 4}\n" for i, w in enumerate(words))
    (tmp_path / "labels.csv").write_text(f"word,speaker\n{rows}")
    return import_features(tmp_path / "h.npy", tmp_path / "labels.csv", name="origin-test")


def _compute(fs):  # noqa: ANN001, ANN202
    entry, _ = convexity_entry(
        fs, {"word": fs.labels("word")}, ConvexityOptions(k=5, max_pairs_per_class=None)
    )
    return entry


def _forge(bundle: Path, out: Path) -> Path:
    """The bundle with every word score set to FORGED, resealed and re-listed as a forger would."""
    with zipfile.ZipFile(bundle) as zin, zipfile.ZipFile(out, "w") as zout:
        manifest = json.loads(zin.read("manifest.json"))
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(ENTRY_NAME):
                doc = json.loads(data)
                for r in doc["data"]["curves"]["word"]["results"]:
                    r["score"] = FORGED
                    for c in r["per_class"].values():
                        c["score"] = FORGED
                doc["sha256"] = _doc_sha(doc)
                data = json.dumps(doc).encode()
                manifest["members"][info.filename] = {
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            if info.filename != "manifest.json":
                zout.writestr(info.filename, data)
        zout.writestr("manifest.json", json.dumps(manifest))
    return out


def test_computed_entries_say_so_and_bundles_do_not_carry_origins(features, tmp_path: Path) -> None:
    entry = _compute(features)
    assert load_result(entry.key).origin.source == "computed"
    bundle = export_bundle([entry.key], tmp_path / "b.zip")
    with zipfile.ZipFile(bundle) as zf:
        assert not any(n.endswith(ORIGIN_NAME) for n in zf.namelist())


def test_a_bundle_claiming_an_origin_is_refused(features, tmp_path: Path) -> None:
    entry = _compute(features)
    bundle = export_bundle([entry.key], tmp_path / "b.zip")
    claimed = tmp_path / "claimed.zip"
    with zipfile.ZipFile(bundle) as zin, zipfile.ZipFile(claimed, "w") as zout:
        manifest = json.loads(zin.read("manifest.json"))
        for info in zin.infolist():
            if info.filename != "manifest.json":
                zout.writestr(info.filename, zin.read(info))
        fake = json.dumps({"source": "computed", "at": "2026-01-01T00:00:00"}).encode()
        name = f"{entry.key}/{ORIGIN_NAME}"
        zout.writestr(name, fake)
        manifest["members"][name] = {"bytes": len(fake), "sha256": hashlib.sha256(fake).hexdigest()}
        zout.writestr("manifest.json", json.dumps(manifest))
    assert main(["results", "rm", entry.key[:12]]) == 0
    assert main(["import-results", str(claimed)]) == 2
    assert load_result(entry.key) is None


@pytest.mark.slow
def test_a_forged_bundle_for_a_key_not_yet_stored_is_marked_caught_and_ignorable(
    features, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genuine = _compute(features)
    genuine_scores = [r["score"] for r in _curve(genuine)]
    forged = _forge(export_bundle([genuine.key], tmp_path / "b.zip"), tmp_path / "forged.zip")
    assert main(["results", "rm", genuine.key[:12]]) == 0  # a store that never computed it
    assert import_bundle(forged) == [genuine.key]
    capsys.readouterr()

    argv = ["convexity", "--key", features.key, "--labels", "word", "--k", "5", "--exhaustive"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{FORGED:.4f}" in out  # the forged numbers are shown ...
    assert "imported from forged.zip" in out and "not computed here" in out  # ... and said to be
    assert f"results verify {genuine.key[:12]}" in out

    imported = load_result(genuine.key)
    assert "imported from forged.zip" in imported.provenance.caption()  # every figure caption
    (curve,) = [
        s for s in series_of(imported.key, imported.kind, imported.data, imported.provenance)
    ]
    assert curve.describe().endswith("· imported")  # Compare's picker
    exported = json_with_provenance({}, [imported.provenance])["provenance"][0]
    assert exported["origin"]["source"] == "imported"  # every export's provenance block
    assert main(["results", "list"]) == 0
    listing = capsys.readouterr().out
    assert "imported" in listing.splitlines()[2]
    assert [e.origin.source for e in list_results()] == ["imported"]

    assert main(["results", "verify", genuine.key[:12]]) == 1
    report = capsys.readouterr().out
    assert "DISAGREES" in report and "imported from forged.zip" in report
    assert main(["results", "verify", genuine.key[:12], "--classes", "2"]) == 1
    assert "2 seeded class(es)" in capsys.readouterr().out

    assert main(["--computed-only", *argv]) == 0
    out = capsys.readouterr().out
    assert f"{FORGED:.4f}" not in out and f"{genuine_scores[1]:.4f}" in out
    recomputed = load_result(genuine.key)
    assert recomputed.origin.source == "computed"
    assert main(["results", "verify", genuine.key[:12]]) == 0
    assert "agrees" in capsys.readouterr().out


def _curve(entry):  # noqa: ANN001, ANN202
    return entry.data["curves"]["word"]["results"]


def test_verify_of_an_unknown_or_other_kind_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "verify", "abcdef0123"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["results", "verify"]) == 2


def test_list_accepts_every_stored_kind() -> None:
    for kind in ("diagnostics", "series", "aligned-umap", "curve-statistics"):
        assert main(["results", "list", "--kind", kind]) == 0
    assert results_root().is_dir()
