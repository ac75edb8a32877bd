"""The ``python -m core`` command line, run as a subprocess on a tiny model and a small audio folder."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.main import main
from core.io.paths import REPO_ROOT
from tests.tiny_assets import SPEAKERS, WORDS, L, N


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Subprocess environment: private cache, one thread, hub offline (nothing here needs it)."""
    out = dict(os.environ)
    out.update(
        CONVEXITY_LAB_CACHE=str(tmp_path_factory.mktemp("cli_cache")),
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    out.pop("CONVEXITY_LAB_DEBUG", None)
    return out


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``python -m core ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def test_help_has_examples(env: dict[str, str]) -> None:
    res = run(env, "--help")
    assert res.returncode == 0 and "examples:" in res.stdout
    for command in ("models", "datasets", "extract", "convexity", "criteria", "download", "prune"):
        assert command in res.stdout
    res = run(env, "extract", "--help")
    assert res.returncode == 0 and "trimmed" in res.stdout and "default" in res.stdout


def test_models_and_datasets(env: dict[str, str], tree: Path) -> None:
    res = run(env, "models")
    assert res.returncode == 0, res.stderr
    assert "wav2vec2-base" in res.stdout and "whisper-tiny.en-offline" in res.stdout
    assert "layers" in res.stdout and "params" in res.stdout and "offline" in res.stdout
    res = run(env, "datasets")
    assert res.returncode == 0, res.stderr
    assert all(k in res.stdout for k in ("sample", "speech-commands", "folder"))
    res = run(env, "datasets", "folder", "--root", str(tree))
    assert res.returncode == 0, res.stderr
    assert f"words: {len(WORDS)} classes, {N} clips" in res.stdout
    assert f"speakers: {len(SPEAKERS)} classes" in res.stdout
    assert "go 6" in res.stdout and "aa11 6" in res.stdout


def test_extract_convexity_json_csv_and_cache_key(env: dict[str, str], tree: Path,
                                                  model_dir: Path, tmp_path: Path) -> None:  # fmt: skip
    common = [str(model_dir), "folder", "--root", str(tree), "--batch-size", "4"]
    res = run(env, "extract", *common)
    assert res.returncode == 0, res.stderr
    assert f"features: {N} x {L + 1} x 32 float32" in res.stdout
    key = next(line.split()[1] for line in res.stdout.splitlines() if line.startswith("key:"))
    assert len(key) == 64 and "computed" in res.stdout

    out_json = tmp_path / "curves.json"
    res = run(env, "convexity", *common, "--k", "5", "--out", str(out_json))
    assert res.returncode == 0, res.stderr
    assert "from cache" in res.stdout and "word" in res.stdout and "speaker" in res.stdout
    table = [line.split() for line in res.stdout.splitlines() if line[:1].isdigit()]
    assert [int(r[0]) for r in table] == list(range(L + 1)) and all(len(r) == 5 for r in table)
    doc = json.loads(out_json.read_text())
    assert set(doc["curves"]) == {"word", "speaker"}
    assert doc["curves"]["word"]["layers"] == list(range(L + 1))
    assert doc["features"]["key"] == key and doc["settings"]["k"] == 5
    scores = [float(r[1]) for r in table]
    assert scores == pytest.approx(doc["curves"]["word"]["scores"], abs=1e-4)

    out_csv = tmp_path / "curves.csv"
    res = run(env, "convexity", "--key", key[:10], "--labels", "speaker", "--k", "5",
              "--exhaustive", "--out", str(out_csv))  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert {r["labels"] for r in rows} == {"speaker"}
    layer_rows = [r for r in rows if r["class"] == ""]
    assert [int(r["layer"]) for r in layer_rows] == list(range(L + 1))
    assert {r["class"] for r in rows if r["class"]} == set(SPEAKERS)
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)


def test_prune_saves_a_smaller_model(env: dict[str, str], model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned"
    res = run(env, "prune", str(model_dir), "2", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "before" in res.stdout and "after" in res.stdout and "removed" in res.stdout
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2


def _one_line_error(res: subprocess.CompletedProcess) -> str:
    """Assert exit 2 with exactly one stderr line and no traceback; return that line."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and lines[0].startswith("error: ")
    return lines[0]


def test_errors_are_one_line(env: dict[str, str], tree: Path, model_dir: Path) -> None:
    line = _one_line_error(run(env, "extract", "no-such-model-xyz", "folder", "--root", str(tree)))
    assert "Unknown model 'no-such-model-xyz'" in line
    line = _one_line_error(
        run(env, "extract", "facebook/wav2vec2-base", "folder", "--root", str(tree))
    )
    assert "hub is unreachable" in line and "HF_HUB_OFFLINE" in line
    line = _one_line_error(
        run(env, "extract", str(model_dir), "folder", "--root", str(tree / "nope"))
    )
    assert "does not exist" in line


def test_errors_in_process(env: dict[str, str], model_dir: Path, tmp_path: Path, capsys,
                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The same one-line contract through ``main()`` (cheaper than a subprocess per case)."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", env["CONVEXITY_LAB_CACHE"])
    cases = [
        (["prune", str(model_dir), "9", "--out", str(tmp_path / "bad")], "1 <= p <= 3"),
        (["convexity", "--key", "ffffffffff"], "no cached features"),
        (["convexity", str(model_dir)], "give MODEL DATASET"),
        (["convexity", "--key", "ffffffffff", "--out", "x.txt"], "--out must end in .json or .csv"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_criteria_table_and_exports(env: dict[str, str], tree: Path, model_dir: Path,
                                    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`criteria` prints every criterion's prune point and exports JSON and long-format CSV."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", env["CONVEXITY_LAB_CACHE"])
    common = [str(model_dir), "folder", "--root", str(tree), "--batch-size", "4", "--no-progress"]
    out_json, out_csv = tmp_path / "criteria.json", tmp_path / "criteria.csv"
    assert main(["criteria", *common, "--k", "5", "--out", str(out_json)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    names = {"linear_probe", "knn_accuracy", "linear_cka", "mutual_knn", "block_influence"}
    assert names <= set(doc["criteria"])
    assert len(doc["criteria"]["linear_cka"]["values"]) == L + 1
    points = {row["criterion"]: row["layer"] for row in doc["proposed_prune_points"]}
    assert "convexity" in points and all(1 <= p <= L for p in points.values())
    assert all(name in printed for name in names)
    assert (
        main(["criteria", *common, "--k", "5", "--names", "knn_accuracy", "--out", str(out_csv)])
        == 0
    )
    rows = list(csv.DictReader(out_csv.open()))
    assert {r["criterion"] for r in rows} == {"knn_accuracy"}
    assert [int(r["layer"]) for r in rows] == list(range(L + 1))


def test_job_commands_are_mounted(env: dict[str, str]) -> None:
    """`python -m core jobs|finetune|sweep|benchmark` reach core.cli.jobs through the one CLI."""
    res = run(env, "jobs", "list")
    assert res.returncode == 0, res.stderr
    res = run(env, "sweep", "--help")
    assert res.returncode == 0 and "--points" in res.stdout
