"""The results store: round trip, corruption -> recompute, concurrency, bundles, CLI commands."""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.geometry import convexity as engine
from core.geometry.options import ConvexityOptions
from core.io.paths import REPO_ROOT
from core.io.run_folder import RunFolder, RunSpec
from core.results import export
from core.results.bundle import BundleError, export_bundle, import_bundle
from core.results.compare import class_difference, prune_table, series_of
from core.results.kinds import convexity_entry, stored_convexity, stored_criteria, stored_umap
from core.results.memory import LRUCache
from core.results.provenance import Provenance
from core.results.runs import store_all_run_curves
from core.results.store import list_results, load_result, results_root
from tests.helpers.builders import fake_features


@pytest.fixture(autouse=True)
def cache(private_cache: Path) -> Path:
    """A private cache per test."""
    return private_cache


def count_engine(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the convexity engine; the returned list grows by one per call."""
    calls: list[int] = []
    real = engine.layerwise_convexity

    @functools.wraps(real)  # keeps the engine's signature (the store reads its defaults)
    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "layerwise_convexity", counted)
    return calls


def test_round_trip_returns_the_same_curves_without_recomputing(monkeypatch) -> None:
    fs = fake_features()
    labels = {"word": fs.words, "speaker": fs.speakers}
    calls = count_engine(monkeypatch)
    first = stored_convexity(
        fs, labels, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    )
    again = stored_convexity(
        fs, labels, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    )
    assert len(calls) == 1 and list(again) == list(labels) == ["word", "speaker"]
    for name in labels:
        np.testing.assert_array_equal(first[name].scores, again[name].scores)
        np.testing.assert_array_equal(first[name].sems, again[name].sems)
        assert first[name].layers == again[name].layers
        a, b = first[name].results[2].per_class, again[name].results[2].per_class
        assert {str(c): vars(v) for c, v in a.items()} == {c: vars(v) for c, v in b.items()}
    stored_convexity(
        fs, labels, ConvexityOptions(k=6, max_pairs_per_class=None, device="cpu")
    )  # other settings
    assert len(calls) == 2
    entry, hit = convexity_entry(
        fs, labels, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    )
    assert hit and entry.provenance.exact and entry.provenance.k == 5
    assert entry.provenance.model_id == "org/model-a" and entry.provenance.dataset == "synthetic"
    assert entry.request["label_sets"] == ["word", "speaker"]
    assert "match_pair_precision" in entry.request  # engine defaults are part of the key
    assert "exact (all pairs)" in entry.provenance.caption()
    assert [e.key for e in list_results("convexity")].count(entry.key) == 1


def test_corrupt_entries_are_recomputed_not_fatal(monkeypatch) -> None:
    fs = fake_features()
    labels = {"word": fs.words}
    calls = count_engine(monkeypatch)
    entry, _ = convexity_entry(fs, labels, ConvexityOptions(k=5, device="cpu"))
    path = results_root() / entry.key / "entry.json"
    text = path.read_text()
    score = f"{entry.data['curves']['word']['results'][1]['score']!r}"
    path.write_text(text.replace(score, "0.5", 1))  # a plausible but wrong number
    assert load_result(entry.key) is None
    _, hit = convexity_entry(fs, labels, ConvexityOptions(k=5, device="cpu"))
    assert not hit and len(calls) == 2
    path.write_text("{not json")
    assert load_result(entry.key) is None
    path.write_text(json.dumps({"schema": 99}))
    assert load_result(entry.key) is None
    _, hit = convexity_entry(fs, labels, ConvexityOptions(k=5, device="cpu"))
    assert not hit and len(calls) == 3 and load_result(entry.key) is not None

    layout, hit = stored_umap(fs, {"n": 1}, lambda: np.ones((4, 60, 2)))
    assert not hit and layout.shape == (4, 60, 2)
    (key,) = [e.key for e in list_results("umap")]
    npy = results_root() / key / "layout.npy"
    npy.write_bytes(npy.read_bytes()[:-8])  # truncated array
    layout, hit = stored_umap(fs, {"n": 1}, lambda: np.zeros((4, 60, 2)))
    assert not hit and float(layout.sum()) == 0.0


CHILD = """
import time
from core.results.provenance import Provenance
from core.results.store import StoredResult, get_or_compute, result_key

key = result_key("features-1", "umap", {"n": 1})
prov = Provenance("m", "w", "d", {}, "f", "features-1", 3, 2, (), {}, "cpu", "1", "c", "2026")


def compute():
    time.sleep(1.0)  # long enough for the other process to arrive meanwhile
    return StoredResult(key, "umap", {"n": 1}, prov, {"shape": [1, 1, 2]})


_, hit = get_or_compute(key, compute)
print("HIT" if hit else "COMPUTED")
"""


@pytest.mark.slow
def test_two_processes_computing_one_key_leave_one_valid_entry(cache: Path) -> None:
    env = {**os.environ, "CONVEXITY_LAB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in outs]
    assert sorted(out.strip().splitlines()[-1] for out, _ in outs) == ["COMPUTED", "HIT"]
    entries = list_results("umap")
    assert len(entries) == 1 and load_result(entries[0].key) is not None
    assert not [p for p in results_root().iterdir() if p.name.endswith(".tmp")]


def _bundle_with(tmp_path: Path, members: dict[str, bytes]) -> Path:
    """A zip whose manifest lists ``members`` correctly (so only the member checks can reject it)."""
    import hashlib

    key = "0" * 64
    manifest = {
        "schema": 1,
        "entries": [key],
        "members": {
            n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for n, d in members.items()
        },
    }
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_bundle_round_trip_and_rejections(tmp_path: Path, cache: Path, monkeypatch) -> None:
    fs = fake_features()
    entry, _ = convexity_entry(fs, {"word": fs.words}, ConvexityOptions(k=5, device="cpu"))
    stored_umap(fs, {"n": 1}, lambda: np.ones((4, 60, 2), dtype=np.float32))
    keys = [e.key for e in list_results()]
    bundle = export_bundle([k[:8] for k in keys], tmp_path / "b.zip")
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "laptop"))  # another machine
    assert sorted(import_bundle(bundle)) == sorted(keys)
    assert load_result(entry.key).data == entry.data

    key = "0" * 64
    with pytest.raises(BundleError, match="absolute or escaping"):
        import_bundle(_bundle_with(tmp_path, {f"{key}/../../evil.json": b"{}"}))
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(
        BundleError, match="invalid"
    ):  # an object array is a pickle: np.load refuses it
        doc = json.loads((results_root() / keys[0] / "entry.json").read_text())
        import_bundle(
            _bundle_with(
                tmp_path,
                {
                    f"{key}/entry.json": json.dumps(doc).encode(),
                    f"{key}/layout.npy": buf.getvalue(),
                },
            )
        )
    with pytest.raises(BundleError, match="not <key>/<name>.json or .npy"):
        import_bundle(_bundle_with(tmp_path, {f"{key}/data.pkl": b"\x80\x04K\x01."}))
    with pytest.raises(BundleError, match="not a zip"):
        import_bundle(b"not a zip at all")
    assert not [p for p in results_root().iterdir() if p.name.startswith(key[:12])]


def test_pickled_npy_in_a_well_formed_entry_is_rejected(tmp_path: Path) -> None:
    fs = fake_features()
    stored_umap(fs, {"n": 1}, lambda: np.ones((4, 60, 2), dtype=np.float32))
    (key,) = [e.key for e in list_results()]
    bundle = export_bundle([key], tmp_path / "b.zip")
    with zipfile.ZipFile(bundle) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}
    buf = io.BytesIO()
    np.save(buf, np.array([None, 1], dtype=object), allow_pickle=True)
    members[f"{key}/layout.npy"] = buf.getvalue()
    bad = _bundle_with(tmp_path, {n.replace(key, "0" * 64): d for n, d in members.items()})
    with pytest.raises(BundleError):
        import_bundle(bad)


def test_cli_results_list_export_import(tmp_path: Path, capsys, monkeypatch) -> None:
    fs = fake_features()
    entry, _ = convexity_entry(fs, {"word": fs.words}, ConvexityOptions(k=5, device="cpu"))
    assert main(["results", "list"]) == 0
    out = capsys.readouterr().out
    assert entry.key[:12] in out and "model-a" in out and "k=5" in out
    assert main(["export-results", entry.key[:10], "--out", str(tmp_path / "b.zip")]) == 0
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "other"))
    assert main(["import-results", str(tmp_path / "b.zip")]) == 0
    assert load_result(entry.key) is not None
    bad = _bundle_with(tmp_path, {f"{'0' * 64}/../x.json": b"{}"})
    assert main(["import-results", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert main(["export-results", "zzzzzz", "--out", str(tmp_path / "c.zip")]) == 2


def test_compare_helpers_align_depths_and_name_exact_curves() -> None:
    series = []
    for layers, model in ((5, "tiny"), (7, "base")):
        fs = fake_features(layers=layers, model=model)
        entry, _ = convexity_entry(
            fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
        )
        series += series_of(entry.key, entry.kind, entry.data, entry.provenance)
    tiny, base = series
    assert tiny.x(True)[-1] == 1.0 and base.x(True)[-1] == 1.0 and len(base.layers) == 7
    assert tiny.exact and np.all(tiny.sems == 0) and np.all(tiny.spread > 0)
    rows = prune_table(series, 0.95)
    assert [r["layers"] for r in rows] == [4, 6] and all(r["error"] == "exact" for r in rows)
    d = class_difference(tiny, base)
    assert (
        d.resampled and d.classes == ["w0", "w1", "w2"] and d.z.shape == (3, 5) and d.x[-1] == 1.0
    )


def test_lru_is_bounded() -> None:
    lru = LRUCache(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert "b" not in lru and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2


def test_exports_carry_provenance() -> None:
    fs = fake_features()
    entry, _ = convexity_entry(fs, {"word": fs.words}, ConvexityOptions(k=5, device="cpu"))
    prov = Provenance.from_dict(json.loads(json.dumps(entry.provenance.to_dict())))
    assert prov == entry.provenance
    text = export.csv_with_provenance("a,b\n1,2\n", [prov])
    assert text.startswith("# provenance: ") and "org/model-a" in text.splitlines()[0]
    assert export.json_with_provenance({"x": 1}, [prov])["provenance"][0]["settings"]["k"] == 5
    assert export.image_config("f", "svg")["toImageButtonOptions"]["format"] == "svg"


def test_criteria_round_trip() -> None:
    from core.geometry.criteria import run_criteria

    fs = fake_features()
    calls: list[int] = []

    def compute():
        calls.append(1)
        return run_criteria(fs.features, fs.words, names=["block_influence", "linear_cka"], k=5)

    request = {"names": ["block_influence", "linear_cka"], "k": 5, "options": {}}
    first, hit = stored_criteria(fs, "word", request, compute)
    again, hit2 = stored_criteria(fs, "word", request, compute)
    assert (hit, hit2, len(calls)) == (False, True, 1)
    for name, r in first.items():
        np.testing.assert_array_equal(r.values, again[name].values)
        assert again[name].kind == r.kind and again[name].prune_rule == r.prune_rule
        assert again[name].proposed_prune_point() == r.proposed_prune_point()


def test_finetuned_vs_pretrained_curves_of_a_run(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "20261129-tiny-p2"
    run.mkdir(parents=True)
    curve = {"layers": [0, 1, 2], "scores": [0.2, 0.5, 0.9], "sems": [0.0, 0.0, 0.0]}
    conv = {
        "split": "test",
        "n_clips": 40,
        "relevant": "word",
        "pretrained": {"word": curve, "speaker": curve},
        "finetuned": {"word": curve, "speaker": curve},
    }
    folder = RunFolder(run)
    folder.write_spec(
        RunSpec(
            "finetune", {"model": "whisper-tiny.en-offline", "dataset": "sample", "task": "words"}
        )
    )
    folder.write_json(RunFolder.CONVEXITY, conv)
    (key,) = store_all_run_curves(tmp_path / "runs")
    entry = load_result(key)
    names = [s.label_set for s in series_of(key, entry.kind, entry.data, entry.provenance)]
    assert sorted(names) == [
        "speaker (finetuned)",
        "speaker (pretrained)",
        "word (finetuned)",
        "word (pretrained)",
    ]
    assert (
        entry.provenance.model_key == "whisper-tiny.en-offline" and entry.provenance.n_layers == 2
    )


def test_wrapped_captions_break_at_spaces_never_inside_a_hyphenated_word() -> None:
    from core.results import export

    line = "model /tmp/pytest-of-root/models0/tiny-w2v [files-sha256:f2e5fc2cbf05] · data folder, 18 clips"
    for width in range(48, 100, 7):  # wider than the longest word (the model path)
        wrapped = export.wrap_caption([line], width)
        assert " ".join(wrapped) == line, width
        assert all(len(w) <= width for w in wrapped), width
