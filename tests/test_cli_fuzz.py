"""Bad input, table-driven: every bad CLI invocation and every malformed bundle is one line on stderr,
exit status 2, and leaves the cache as it was (no run folder, no entry, no staging folder)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from core.cli.main import main
from core.geometry.options import ConvexityOptions
from core.results.bundle import export_bundle
from core.results.kinds import convexity_entry
from tests.helpers.builders import fake_features

TOO_LONG = "r" * 300
MODEL = "whisper-tiny.en-offline"

# (id, argv): each must be refused in one line with exit status 2 before any work.
BAD_INVOCATIONS: list[tuple[str, list[str]]] = [
    ("no-command", []),
    ("unknown-command", ["bogus"]),
    ("extract-no-args", ["extract"]),
    ("extract-unknown-model", ["extract", "no-such-model", "sample"]),
    ("extract-unknown-dataset", ["extract", MODEL, "no-such-dataset"]),
    ("extract-device-typo", ["extract", MODEL, "sample", "--device", "bogus"]),
    ("extract-device-cuda", ["extract", MODEL, "sample", "--device", "cuda"]),
    ("extract-device-cuda-index", ["extract", MODEL, "sample", "--device", "cuda:7"]),
    ("extract-device-empty", ["extract", MODEL, "sample", "--device", ""]),
    ("extract-max-clips-0", ["extract", MODEL, "sample", "--max-clips", "0"]),
    ("extract-max-clips-text", ["extract", MODEL, "sample", "--max-clips", "many"]),
    ("extract-seed-negative", ["extract", MODEL, "sample", "--seed", "-1"]),
    ("extract-seed-huge", ["extract", MODEL, "sample", "--seed", str(2**40)]),
    ("extract-batch-0", ["extract", MODEL, "sample", "--batch-size", "0"]),
    ("extract-task-typo", ["extract", MODEL, "sample", "--task", "word"]),
    ("extract-split-typo", ["extract", MODEL, "sample", "--split", "dev"]),
    ("extract-whisper-input", ["extract", MODEL, "sample", "--whisper-input", "full"]),
    ("extract-bad-regex", ["extract", MODEL, "sample", "--speaker-regex", "(unclosed"]),
    ("extract-folder-missing", ["extract", MODEL, "folder", "--root", "/nonexistent/clips"]),
    ("convexity-nothing", ["convexity"]),
    ("convexity-k-0", ["convexity", MODEL, "sample", "--k", "0"]),
    ("convexity-k-negative", ["convexity", MODEL, "sample", "--k", "-3"]),
    ("convexity-k-text", ["convexity", MODEL, "sample", "--k", "ten"]),
    ("convexity-pairs-0", ["convexity", MODEL, "sample", "--pairs", "0"]),
    ("convexity-target-se-0", ["convexity", MODEL, "sample", "--target-se", "0"]),
    ("convexity-target-se-2", ["convexity", MODEL, "sample", "--target-se", "2"]),
    ("convexity-target-se-nan", ["convexity", MODEL, "sample", "--target-se", "nan"]),
    ("convexity-target-se-text", ["convexity", MODEL, "sample", "--target-se", "tight"]),
    ("convexity-pair-seed-negative", ["convexity", MODEL, "sample", "--pair-seed", "-1"]),
    ("convexity-labels-typo", ["convexity", MODEL, "sample", "--labels", "words"]),
    ("convexity-device-typo", ["convexity", MODEL, "sample", "--device", "gpu"]),
    ("convexity-key-short", ["convexity", "--key", "abc"]),
    ("convexity-key-not-hex", ["convexity", "--key", "zzzzzzzzzz"]),
    ("convexity-key-absent", ["convexity", "--key", "abcdef0123"]),
    ("convexity-key-path", ["convexity", "--key", "../../etc"]),
    ("convexity-resamples-0", ["convexity", MODEL, "sample", "--resamples", "0"]),
    ("convexity-resamples-1", ["convexity", MODEL, "sample", "--resamples", "1"]),
    ("convexity-resamples-huge", ["convexity", MODEL, "sample", "--resamples", "5000"]),
    ("convexity-resamples-text", ["convexity", MODEL, "sample", "--resamples", "many"]),
    ("convexity-chance-1", ["convexity", MODEL, "sample", "--chance", "1"]),
    ("convexity-chance-huge", ["convexity", MODEL, "sample", "--chance", "1000"]),
    ("convexity-level-1", ["convexity", MODEL, "sample", "--resamples", "5", "--level", "1"]),
    ("convexity-seeds-huge", ["convexity", MODEL, "sample", "--resamples", "5", "--seeds", "99"]),
    ("convexity-compare-alone", ["convexity", MODEL, "sample", "--compare", "abcdef0123"]),
    ("criteria-resamples-1", ["criteria", MODEL, "sample", "--resamples", "1"]),
    ("criteria-chance-0", ["criteria", MODEL, "sample", "--chance", "0"]),
    ("criteria-k-0", ["criteria", MODEL, "sample", "--k", "0"]),
    ("criteria-unknown-name", ["criteria", "--key", "abcdef0123", "--names", "bogus"]),
    ("criteria-device-typo", ["criteria", MODEL, "sample", "--device", "tpu"]),
    ("results-no-action", ["results"]),
    ("results-bad-action", ["results", "delete"]),
    ("results-rm-nothing", ["results", "rm"]),
    ("results-rm-short", ["results", "rm", "abc"]),
    ("results-rm-not-hex", ["results", "rm", "ghijklmnop"]),
    ("results-rm-absent", ["results", "rm", "abcdef0123"]),
    ("results-list-with-key", ["results", "list", "abcdef0123"]),
    ("results-kind-typo", ["results", "list", "--kind", "curves"]),
    ("export-no-out", ["export-results", "abcdef0123"]),
    ("export-out-not-zip", ["export-results", "abcdef0123", "--out", "b.tar"]),
    ("export-absent-key", ["export-results", "abcdef0123", "--out", "b.zip"]),
    ("export-no-keys", ["export-results", "--out", "b.zip"]),
    ("import-missing", ["import-results", "/nonexistent/bundle.zip"]),
    ("import-no-arg", ["import-results"]),
    ("jobs-no-action", ["jobs"]),
    ("jobs-bad-action", ["jobs", "explode"]),
    ("jobs-status-absent", ["jobs", "status", "20990101-000000-finetune-x-aaaaaa"]),
    ("jobs-status-path", ["jobs", "status", "../../etc"]),
    ("jobs-status-slash", ["jobs", "status", "a/b"]),
    ("jobs-cancel-absent", ["jobs", "cancel", "nope"]),
    ("jobs-status-too-long", ["jobs", "status", TOO_LONG]),
    ("jobs-cancel-too-long", ["jobs", "cancel", TOO_LONG]),
    ("jobs-resume-too-long", ["jobs", "resume", TOO_LONG]),
    ("jobs-watch-too-long", ["jobs", "watch", TOO_LONG]),
    ("jobs-restart-too-long", ["jobs", "restart", TOO_LONG]),
    ("prune-p-text", ["prune", MODEL, "two", "--out", "x"]),
    ("prune-p-0", ["prune", MODEL, "0", "--out", "x"]),
    ("prune-p-past-the-top", ["prune", MODEL, "9", "--out", "x"]),
    ("prune-drop-empty", ["prune", MODEL, "--drop", "", "--out", "x"]),
    ("prune-keep-empty", ["prune", MODEL, "--keep", " ", "--out", "x"]),
    ("prune-drop-out-of-range", ["prune", MODEL, "--drop", "5", "--out", "x"]),
    ("prune-drop-layer-0", ["prune", MODEL, "--drop", "0-1", "--out", "x"]),
    ("prune-drop-duplicates", ["prune", MODEL, "--drop", "2,2", "--out", "x"]),
    ("prune-keep-unordered", ["prune", MODEL, "--keep", "3,1", "--out", "x"]),
    ("prune-drop-backwards", ["prune", MODEL, "--drop", "4-3", "--out", "x"]),
    ("prune-drop-all", ["prune", MODEL, "--drop", "1-4", "--out", "x"]),
    ("prune-drop-text", ["prune", MODEL, "--drop", "middle", "--out", "x"]),
    ("prune-no-plan", ["prune", MODEL, "--out", "x"]),
    ("prune-p-and-drop", ["prune", MODEL, "2", "--drop", "3", "--out", "x"]),
    ("prune-drop-and-keep", ["prune", MODEL, "--drop", "3", "--keep", "1", "--out", "x"]),
    ("plans-unknown-model", ["plans", "no-such-model", "sample"]),
    ("plans-unknown-dataset", ["plans", MODEL, "no-such-dataset"]),
    ("plans-out-not-csv", ["plans", MODEL, "sample", "--out", "p.txt"]),
    ("plans-threshold-nan", ["plans", MODEL, "sample", "--threshold", "nan"]),
    ("plans-threshold-text", ["plans", MODEL, "sample", "--threshold", "high"]),
    ("plans-bootstrap-0", ["plans", MODEL, "sample", "--bootstrap", "0"]),
    ("plans-labels-typo", ["plans", MODEL, "sample", "--labels", "words"]),
    ("plans-similarity-typo", ["plans", MODEL, "sample", "--similarity", "cosine"]),
    ("euclidean-absent-run", ["euclidean", "/nonexistent/run"]),
    ("euclidean-pairs-0", ["euclidean", "/nonexistent/run", "--pairs", "0"]),
    ("datasets-unknown", ["datasets", "no-such-dataset"]),
    ("finetune-epochs-0", ["finetune", "--model", MODEL, "--epochs", "0"]),
    ("finetune-lr-negative", ["finetune", "--model", MODEL, "--lr", "-1"]),
    ("finetune-lr-nan", ["finetune", "--model", MODEL, "--lr", "nan"]),
    ("finetune-dataset-bogus", ["finetune", "--model", MODEL, "--dataset", "bogus"]),
    ("finetune-prune-99", ["finetune", "--model", MODEL, "--prune-point", "99"]),
    ("finetune-model-unknown", ["finetune", "--model", "no-such-model"]),
    ("finetune-imported-model", ["finetune", "--model", "imported:my-set"]),
    ("finetune-imported-dataset", ["finetune", "--model", MODEL, "--dataset", "imported"]),
    ("sweep-imported-model", ["sweep", "--model", "imported:my-set"]),
    ("benchmark-imported-model", ["benchmark", "--model", "imported:my-set", "--prune", "2"]),
    ("finetune-bg-epochs-0", ["finetune", "--model", MODEL, "--epochs", "0", "--background"]),
    ("finetune-bg-warmup-2", ["finetune", "--model", MODEL, "--warmup-ratio", "2", "--background"]),
    ("finetune-device-bogus", ["finetune", "--model", MODEL, "--device", "bogus"]),
    ("finetune-folder-missing", ["finetune", "--model", MODEL, "--dataset", "folder"]),
    ("finetune-bad-regex", ["finetune", "--model", MODEL, "--speaker-regex", "("]),
    ("sweep-points-99", ["sweep", "--model", MODEL, "--points", "99"]),
    ("sweep-bg-points-abc", ["sweep", "--model", MODEL, "--points", "abc", "--background"]),
    ("sweep-bg-fraction-2", ["sweep", "--model", MODEL, "--fraction", "2", "--background"]),
    ("sweep-bg-epochs-0", ["sweep", "--model", MODEL, "--epochs", "0", "--background"]),
    (
        "finetune-ray-nobody-there",
        ["finetune", "--model", MODEL, "--executor", "ray", "--address", "127.0.0.1:1"],
    ),
    (
        "sweep-ray-nobody-there",
        ["sweep", "--model", MODEL, "--executor", "ray", "--address", "127.0.0.1:1"],
    ),
    (
        "benchmark-repeats-0",
        ["benchmark", "--model", MODEL, "--prune-point", "1", "--repeats", "0"],
    ),
    ("benchmark-prune-99", ["benchmark", "--model", MODEL, "--prune-point", "99"]),
    ("benchmark-model-unknown", ["benchmark", "--model", "nope", "--prune-point", "1"]),
    ("import-features-missing", ["import-features", "/nonexistent/h.npy", "/nonexistent/l.csv"]),
    ("import-features-not-array", ["import-features", "/etc/hostname", "/etc/hostname"]),
    ("import-features-one-arg", ["import-features", "h.npy"]),
    ("diagnose-nothing", ["diagnose"]),
    ("diagnose-layer-negative", ["diagnose", MODEL, "sample", "--layer", "-1"]),
    ("diagnose-layer-text", ["diagnose", MODEL, "sample", "--layer", "top"]),
    ("diagnose-layer-past-the-top", ["diagnose", MODEL, "sample", "--layer", "9"]),
    ("diagnose-k-0", ["diagnose", MODEL, "sample", "--k", "0"]),
    ("diagnose-labels-typo", ["diagnose", MODEL, "sample", "--labels", "words"]),
    ("diagnose-top-0", ["diagnose", MODEL, "sample", "--top", "0"]),
    ("diagnose-out-is-a-file", ["diagnose", MODEL, "sample", "--out", "/etc/hostname"]),
    ("diagnose-key-absent", ["diagnose", "--key", "abcdef0123"]),
    ("diagnose-sources-1", ["diagnose", MODEL, "sample", "--sources", "1"]),
    ("diagnose-source-seed-negative", ["diagnose", MODEL, "sample", "--source-seed", "-2"]),
    ("path-no-from", ["path", MODEL, "sample"]),
    ("path-from-negative", ["path", MODEL, "sample", "--from", "-3"]),
    ("path-from-blank", ["path", MODEL, "sample", "--from", " "]),
    ("path-out-not-csv", ["path", MODEL, "sample", "--from", "0", "--out", "p.json"]),
    ("path-layer-past-the-top", ["path", MODEL, "sample", "--from", "0", "--layer", "9"]),
    ("path-labels-typo", ["path", MODEL, "sample", "--from", "0", "--labels", "both"]),
    ("path-key-absent", ["path", "--key", "abcdef0123", "--from", "0"]),
    ("path-from-superscript-digit", ["path", MODEL, "sample", "--from", "\u00b2"]),
    ("path-to-arabic-digit", ["path", MODEL, "sample", "--from", "0", "--to", "\u0663"]),
    ("convexity-resample-seed-negative", ["convexity", MODEL, "sample", "--resample-seed", "-1"]),
    ("series-unknown-second-checkpoint", ["series", f"a={MODEL}", "b=no-such-model"]),
    ("series-out-into-a-file", ["series", f"a={MODEL}", "--out", "/dev/null/s.csv"]),
    ("convexity-out-into-a-file", ["convexity", MODEL, "sample", "--out", "/dev/null/c.json"]),
    ("results-verify-no-key", ["results", "verify"]),
    ("results-verify-two-keys", ["results", "verify", "abcdef0123", "abcdef0124"]),
    ("results-verify-classes-0", ["results", "verify", "abcdef0123", "--classes", "0"]),
]


def _snapshot(root: Path) -> dict[str, int]:
    """Every file and folder under the cache with its size (lock files excluded: they are harmless)."""
    return {
        str(p.relative_to(root)): p.stat().st_size if p.is_file() else -1
        for p in root.rglob("*")
        if p.suffix != ".lock"
    }


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """``python -m core ARGV`` in this process: (exit status, stderr)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    return code, capsys.readouterr().err


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    (root / "runs").mkdir(parents=True)
    (root / "results").mkdir()
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return root


@pytest.mark.parametrize(
    ("argv",), [(a,) for _, a in BAD_INVOCATIONS], ids=[i for i, _ in BAD_INVOCATIONS]
)
def test_bad_invocation_is_one_line_exit_2_and_changes_nothing(
    argv: list[str], cache: Path, capsys: pytest.CaptureFixture
) -> None:
    before = _snapshot(cache)
    code, err = _run(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert _snapshot(cache) == before


def test_out_naming_a_folder_is_refused_before_any_work(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "table.csv").mkdir()
    before = _snapshot(cache)
    code, err = _run(["series", f"a={MODEL}", "--out", str(tmp_path / "table.csv")], capsys)
    assert code == 2 and "is a folder" in err and len(err.strip().splitlines()) == 1
    assert _snapshot(cache) == before


def test_the_table_is_large_enough() -> None:
    assert len(BAD_INVOCATIONS) >= 60 and len(MUTATIONS) >= 30


# ------------------------------------------------------------------------------------------------
# Malformed bundles: a genuine bundle, mutated one way each


def _members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _pack(members: dict[str, bytes], *, reseal: bool = True) -> bytes:
    """A zip of ``members``; ``reseal`` rewrites the manifest's sizes and checksums to match."""
    if reseal and "manifest.json" in members:
        manifest = json.loads(members["manifest.json"])
        if isinstance(manifest, dict) and isinstance(manifest.get("members"), dict):
            manifest["members"] = {
                n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                for n, d in members.items()
                if n != "manifest.json"
            }
            members = {**members, "manifest.json": json.dumps(manifest).encode()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _entry_name(m: dict[str, bytes]) -> str:
    return next(n for n in m if n.endswith("/entry.json"))


def _edit_doc(edit: Callable[[dict], None], reseal_doc: bool = True) -> Callable[[dict], bytes]:
    """A mutation that edits the entry document (and reseals its checksum, as a forger would)."""

    def mutate(m: dict[str, bytes]) -> bytes:
        from core.results.store import _doc_sha  # the forger's tool

        name = _entry_name(m)
        doc = json.loads(m[name])
        edit(doc)
        if reseal_doc:
            doc["sha256"] = _doc_sha(doc)
        return _pack({**m, name: json.dumps(doc).encode()})

    return mutate


def _edit_manifest(edit: Callable[[dict], None]) -> Callable[[dict], bytes]:
    def mutate(m: dict[str, bytes]) -> bytes:
        manifest = json.loads(m["manifest.json"])
        edit(manifest)
        return _pack({**m, "manifest.json": json.dumps(manifest).encode()}, reseal=False)

    return mutate


def _rename_key(m: dict[str, bytes]) -> bytes:
    old = _entry_name(m).split("/")[0]
    new = "f" * 64
    renamed = {n.replace(old, new): d for n, d in m.items()}
    renamed["manifest.json"] = m["manifest.json"].replace(old.encode(), new.encode())
    return _pack(renamed)


def _with(extra: dict[str, bytes]) -> Callable[[dict], bytes]:
    return lambda m: _pack({**m, **extra})


def _without(pick: Callable[[dict], str]) -> Callable[[dict], bytes]:
    return lambda m: _pack({n: d for n, d in m.items() if n != pick(m)})


def _set_path(path: tuple, value: object) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


MUTATIONS: list[tuple[str, Callable[[dict], bytes]]] = [
    ("not-a-zip", lambda m: b"definitely not a zip file"),
    ("empty-file", lambda m: b""),
    ("truncated", lambda m: _pack(m)[:200]),
    ("no-manifest", _without(lambda m: "manifest.json")),
    ("manifest-not-json", lambda m: _pack({**m, "manifest.json": b"{oops"}, reseal=False)),
    ("manifest-list", lambda m: _pack({**m, "manifest.json": b"[]"}, reseal=False)),
    ("manifest-deep", lambda m: _pack({**m, "manifest.json": b"[" * 50000}, reseal=False)),
    ("manifest-schema", _edit_manifest(lambda d: d.update(schema=9))),
    ("manifest-no-entries", _edit_manifest(lambda d: d.update(entries=[]))),
    ("manifest-bad-key", _edit_manifest(lambda d: d.update(entries=["../x"]))),
    (
        "manifest-spec-int",
        _edit_manifest(lambda d: d["members"].update(dict.fromkeys(d["members"], 5))),
    ),
    (
        "manifest-wrong-size",
        _edit_manifest(lambda d: [s.update(bytes=1) for s in d["members"].values()]),
    ),
    ("member-escaping", _with({"../evil.json": b"{}"})),
    ("member-absolute", _with({"/etc/evil.json": b"{}"})),
    ("member-unlisted-file", _with({"a" * 64 + "/extra.txt": b"x"})),
    ("member-pickle", _with({"a" * 64 + "/x.pkl": b"\x80\x04."})),
    ("entry-missing", _without(_entry_name)),
    ("entry-not-json", lambda m: _pack({**m, _entry_name(m): b"not json"})),
    ("entry-checksum", _edit_doc(_set_path(("kind",), "umap"), reseal_doc=False)),
    ("entry-rekeyed", _rename_key),
    ("entry-kind-criteria", _edit_doc(_set_path(("kind",), "criteria"))),
    ("entry-kind-unknown", _edit_doc(_set_path(("kind",), "bogus"))),
    ("entry-schema", _edit_doc(_set_path(("schema",), 7))),
    ("entry-data-list", _edit_doc(_set_path(("data",), []))),
    ("entry-request-str", _edit_doc(_set_path(("request",), "k=5"))),
    ("prov-created-int", _edit_doc(_set_path(("provenance", "created"), 5))),
    ("prov-model-null", _edit_doc(_set_path(("provenance", "model_id"), None))),
    ("prov-label-sets-str", _edit_doc(_set_path(("provenance", "label_sets"), "word"))),
    ("prov-n-clips-float", _edit_doc(_set_path(("provenance", "n_clips"), 1.5))),
    ("prov-missing-field", _edit_doc(lambda d: d["provenance"].pop("feature_key"))),
    ("entry-deep-data", _edit_doc(_set_path(("data", "deep"), json.loads("[" * 300 + "]" * 300)))),
    ("entry-bad-array", _edit_doc(_set_path(("arrays",), {"x": {"file": "y.npy"}}))),
    ("entry-data-empty", _edit_doc(_set_path(("data",), {}))),
    ("entry-data-curves-list", _edit_doc(_set_path(("data", "curves"), []))),
]


@pytest.fixture(scope="module")
def genuine_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A bundle of one real convexity entry, made in a throw-away cache."""
    root = tmp_path_factory.mktemp("bundle-source")
    old = os.environ.get("CONVEXITY_LAB_CACHE")
    os.environ["CONVEXITY_LAB_CACHE"] = str(root)
    try:
        fs = fake_features()
        entry, _ = convexity_entry(
            fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None)
        )
        return export_bundle([entry.key], root / "b.zip").read_bytes()
    finally:
        if old is None:
            os.environ.pop("CONVEXITY_LAB_CACHE")
        else:
            os.environ["CONVEXITY_LAB_CACHE"] = old


@pytest.mark.parametrize(("mutate",), [(m,) for _, m in MUTATIONS], ids=[i for i, _ in MUTATIONS])
def test_malformed_bundle_is_one_line_exit_2_and_changes_nothing(
    mutate: Callable[[dict], bytes],
    genuine_bundle: bytes,
    cache: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    path = cache.parent / "bad.zip"
    path.write_bytes(mutate(_members(genuine_bundle)))
    before = _snapshot(cache)
    code, err = _run(["import-results", str(path)], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert _snapshot(cache) == before


def test_the_genuine_bundle_itself_imports(genuine_bundle: bytes, cache: Path, capsys) -> None:
    path = cache.parent / "good.zip"
    path.write_bytes(_pack(_members(genuine_bundle)))
    assert _run(["import-results", str(path)], capsys)[0] == 0
