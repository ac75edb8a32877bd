"""The ``python -m core`` command line, in-process through ``main(argv)`` on a tiny model and a small audio folder.

Two subprocess smoke tests cover the entry points themselves: ``python -m core --help`` and the
background worker's ``python -m core jobs run-job RUN``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from core.cli import data_commands
from core.cli.main import build_parser, main
from core.cli.options import config_from_args, option_name
from core.errors import DatasetError
from core.io.paths import REPO_ROOT
from core.training.configs import FinetuneConfig, SweepConfig, setting_fields
from tests.helpers.tiny_assets import SPEAKERS, WORDS, L, N


@dataclasses.dataclass
class Res:
    """What one CLI call returned and printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def cli_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One private cache for the module (extract, then convexity from the cache)."""
    return str(tmp_path_factory.mktemp("cli_cache"))


@pytest.fixture
def run(
    cli_cache: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> Callable[..., Res]:
    """``python -m core ARGS`` in this process: exit code, stdout and stderr."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", cli_cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("CONVEXITY_LAB_DEBUG", raising=False)

    def call(*args: str) -> Res:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # --help and argparse errors
            code = exc.code if isinstance(exc.code, int) else 0
        out = capsys.readouterr()
        return Res(code, out.out, out.err)

    return call


def test_help_smoke_subprocess(cli_cache: str) -> None:
    """The real entry point: ``python -m core --help`` in a fresh interpreter."""
    env = dict(os.environ, CONVEXITY_LAB_CACHE=cli_cache, PYTHONWARNINGS="ignore")
    res = subprocess.run(
        [sys.executable, "-m", "core", "--help"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and "examples:" in res.stdout, res.stderr
    for command in ("models", "datasets", "extract", "convexity", "criteria", "finetune", "jobs"):
        assert command in res.stdout


def test_help_does_not_load_the_training_stack() -> None:
    """Building every command's options (what ``--help`` shows) imports neither torch nor transformers:
    the run settings are plain dataclasses (``core.training.configs``); help took ~5 s with torch."""
    code = (
        "import sys; from core.cli.main import build_parser; build_parser().format_help(); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0 and res.stdout.strip() == "[]", (res.stdout, res.stderr)


@pytest.mark.slow
def test_worker_entry_smoke_subprocess(tmp_path: Path) -> None:
    """``python -m core jobs run-job RUN`` (what core.runs.lifecycle.start spawns) runs the worker body."""
    from core.runs import lifecycle, records

    env = dict(os.environ, CONVEXITY_LAB_CACHE=str(tmp_path), PYTHONWARNINGS="ignore")
    os.environ["CONVEXITY_LAB_CACHE"], old = str(tmp_path), os.environ.get("CONVEXITY_LAB_CACHE")
    try:
        run = lifecycle.create_run("finetune", {"model": "never-loaded"})
        (run / "cancel.request").write_text("{}")  # the worker stops before training anything
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "jobs", "run-job", run.name],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        status = records.status(run.name)
        assert status.state == "cancelled" and status.pid == proc.pid
    finally:
        if old is None:
            os.environ.pop("CONVEXITY_LAB_CACHE", None)
        else:
            os.environ["CONVEXITY_LAB_CACHE"] = old


def test_help_has_examples(run: Callable[..., Res]) -> None:
    res = run("--help")
    assert res.returncode == 0 and "examples:" in res.stdout
    for command in ("models", "datasets", "extract", "convexity", "criteria", "download", "prune"):
        assert command in res.stdout
    res = run("extract", "--help")
    assert res.returncode == 0 and "trimmed" in res.stdout and "default" in res.stdout


def test_models_and_datasets(run: Callable[..., Res], tree: Path) -> None:
    res = run("models")
    assert res.returncode == 0, res.stderr
    assert "wav2vec2-base" in res.stdout and "whisper-tiny.en-offline" in res.stdout
    assert "layers" in res.stdout and "params" in res.stdout and "offline" in res.stdout
    res = run("datasets")
    assert res.returncode == 0, res.stderr
    assert all(k in res.stdout for k in ("sample", "speech-commands", "folder"))
    res = run("datasets", "folder", "--root", str(tree))
    assert res.returncode == 0, res.stderr
    assert f"words: {len(WORDS)} classes, {N} clips" in res.stdout
    assert f"speakers: {len(SPEAKERS)} classes" in res.stdout
    assert "go 6" in res.stdout and "aa11 6" in res.stdout


def test_extract_convexity_json_csv_and_cache_key(
    run: Callable[..., Res], tree: Path, model_dir: Path, tmp_path: Path
) -> None:
    common = [str(model_dir), "folder", "--root", str(tree), "--batch-size", "4"]
    res = run("extract", *common)
    assert res.returncode == 0, res.stderr
    assert f"features: {N} x {L + 1} x 32 float32" in res.stdout
    key = next(line.split()[1] for line in res.stdout.splitlines() if line.startswith("key:"))
    assert len(key) == 64 and "computed" in res.stdout

    out_json = tmp_path / "curves.json"
    res = run("convexity", *common, "--k", "5", "--out", str(out_json))
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
    res = run(
        "convexity",
        "--key",
        key[:10],
        "--labels",
        "speaker",
        "--k",
        "5",
        "--exhaustive",
        "--out",
        str(out_csv),
    )
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert {r["labels"] for r in rows} == {"speaker"}
    layer_rows = [r for r in rows if r["class"] == ""]
    assert [int(r["layer"]) for r in layer_rows] == list(range(L + 1))
    assert {r["class"] for r in rows if r["class"]} == set(SPEAKERS)
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)


def test_prune_saves_a_smaller_model(
    run: Callable[..., Res], model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pruned"
    res = run("prune", str(model_dir), "2", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "before" in res.stdout and "after" in res.stdout and "removed" in res.stdout
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2


def _one_line_error(res: Res) -> str:
    """Assert exit 2 with exactly one stderr line and no traceback; return that line."""
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and lines[0].startswith("error: ")
    return lines[0]


def test_errors_are_one_line(run: Callable[..., Res], tree: Path, model_dir: Path) -> None:
    line = _one_line_error(run("extract", "no-such-model-xyz", "folder", "--root", str(tree)))
    assert "Unknown model 'no-such-model-xyz'" in line
    line = _one_line_error(run("extract", "facebook/wav2vec2-base", "folder", "--root", str(tree)))
    assert "hub is unreachable" in line and "HF_HUB_OFFLINE" in line
    line = _one_line_error(run("extract", str(model_dir), "folder", "--root", str(tree / "nope")))
    assert "does not exist" in line


def test_errors_in_process(run: Callable[..., Res], model_dir: Path, tmp_path: Path) -> None:
    """The same one-line contract for option and cache errors."""
    cases = [
        (["prune", str(model_dir), "9", "--out", str(tmp_path / "bad")], "1 <= p <= 3"),
        (["convexity", "--key", "ffffffffff"], "no cached features"),
        (["convexity", str(model_dir)], "give MODEL DATASET"),
        (["convexity", "--key", "ffffffffff", "--out", "x.txt"], "--out must end in .json or .csv"),
    ]
    for argv, expected in cases:
        assert expected in _one_line_error(run(*argv))


def test_lab_error_is_one_line_any_other_error_a_traceback(
    run: Callable[..., Res], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LabError: one line, exit 2. Anything else is a bug: it propagates (python -m prints the traceback)."""

    def user_error(args: object) -> int:
        raise DatasetError("the folder\n  has no clips")

    monkeypatch.setattr(data_commands, "cmd_models", user_error)
    assert _one_line_error(run("models")) == "error: the folder has no clips"

    def bug(args: object) -> int:
        raise ValueError("a bug, not the user's doing")

    monkeypatch.setattr(data_commands, "cmd_models", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["models"])


def test_run_ids_are_validated_and_nothing_is_created(
    run: Callable[..., Res], cli_cache: str
) -> None:
    """The audit's commands: paths and unknown ids exit 2 with one line; no folder, no worker."""
    runs_root = Path(cli_cache) / "runs"
    before = sorted(runs_root.iterdir()) if runs_root.exists() else []
    for argv in (
        ["jobs", "cancel", "../../etc"],
        ["jobs", "cancel", "/etc"],
        ["jobs", "resume", "../../victim"],
        ["jobs", "resume", "no-such-id"],
        ["jobs", "status", "../x"],
        ["jobs", "restart", "no-such-id"],
    ):
        line = _one_line_error(run(*argv))
        assert "run id" in line or "no run" in line, line
    assert (sorted(runs_root.iterdir()) if runs_root.exists() else []) == before
    assert not (Path(cli_cache).parent / "victim").exists()
    assert not (Path(cli_cache) / "victim").exists()


def _other_value(f: dataclasses.Field, hint: object) -> tuple[list[str], object]:
    """Command-line words that set field ``f`` to a non-default value, and that value."""
    flag = option_name(f.name)
    if f.default is True or f.default is False:
        return ([flag.replace("--", "--no-", 1)] if f.default else [flag]), not f.default
    if "choices" in f.metadata:
        value = next(c for c in f.metadata["choices"] if c != f.default)
        return [flag, value], value
    text = str(hint)
    if "int" in text:
        return [flag, "7"], 7
    if "float" in text:
        return [flag, "0.25"], 0.25
    return [flag, "x-" + f.name], "x-" + f.name


def test_every_config_field_is_an_option(run: Callable[..., Res]) -> None:
    """Every FinetuneConfig field is settable from the CLI with its help text; SweepConfig's too.
    The weights a run is pinned to are recorded at launch, never an option."""
    help_text = run("finetune", "--help").stdout
    argv, expected = [], {"model_identity": None}
    assert "--model-identity" not in help_text
    for f, hint in setting_fields(FinetuneConfig):
        if f.metadata.get("cli") is False:
            continue
        assert option_name(f.name) in help_text, f.name
        assert f.metadata.get("help"), f"{f.name} has no help text"
        words, value = _other_value(f, hint)
        argv += words
        expected[f.name] = value
    parsed = build_parser().parse_args(["finetune", *argv])
    assert config_from_args(FinetuneConfig, parsed).to_dict() == expected
    # defaults stay the dataclass's; 'none' clears an optional value; explicit options beat --paper
    parsed = build_parser().parse_args(
        ["finetune", "--model", "m", "--convexity-max-pairs", "none", "--paper", "--epochs", "2"]
    )
    cfg = config_from_args(FinetuneConfig, parsed, {"dataset": "speech-commands", "epochs": 20})
    assert cfg.probes.convexity_max_pairs is None and cfg.optimiser.epochs == 2
    assert cfg.data.source.dataset == "speech-commands"
    assert cfg.optimiser.lr == FinetuneConfig(model="m").optimiser.lr
    sweep_help = run("sweep", "--help").stdout
    for f, _ in setting_fields(SweepConfig):
        if f.name != "prune_point" and f.metadata.get("cli") is not False:
            assert option_name(f.name) in sweep_help, f.name
    parsed = build_parser().parse_args(["sweep", "--model", "m", "--points", "full,suggested,3,2"])
    assert config_from_args(SweepConfig, parsed).points == ["full", "suggested", 3, 2]


def test_criteria_table_and_exports(
    run: Callable[..., Res], tree: Path, model_dir: Path, tmp_path: Path
) -> None:
    """`criteria` prints every criterion's prune point and exports JSON and long-format CSV."""
    common = [str(model_dir), "folder", "--root", str(tree), "--batch-size", "4", "--no-progress"]
    out_json, out_csv = tmp_path / "criteria.json", tmp_path / "criteria.csv"
    res = run("criteria", *common, "--k", "5", "--out", str(out_json))
    assert res.returncode == 0, res.stderr
    printed = res.stdout
    doc = json.loads(out_json.read_text())
    names = {"linear_probe", "knn_accuracy", "linear_cka", "mutual_knn", "block_influence"}
    assert names <= set(doc["criteria"])
    assert len(doc["criteria"]["linear_cka"]["values"]) == L + 1
    points = {row["criterion"]: row["layer"] for row in doc["proposed_prune_points"]}
    assert "convexity" in points and all(1 <= p <= L for p in points.values())
    assert all(name in printed for name in names)
    res = run("criteria", *common, "--k", "5", "--names", "knn_accuracy", "--out", str(out_csv))
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert {r["criterion"] for r in rows} == {"knn_accuracy"}
    assert [int(r["layer"]) for r in rows] == list(range(L + 1))


def test_job_commands_are_mounted(run: Callable[..., Res]) -> None:
    """`jobs`, `finetune`, `sweep`, `benchmark` are commands of the one tree."""
    res = run("jobs", "list")
    assert res.returncode == 0, res.stderr
    res = run("sweep", "--help")
    assert res.returncode == 0 and "--points" in res.stdout
    res = run("benchmark", "--help")
    assert res.returncode == 0 and "--prune" in res.stdout


def test_foreground_finetune_logs_progress_plainly(
    run: Callable[..., Res], tiny_assets: dict[str, Path], one_thread: None
) -> None:
    """Progress lines go to stderr at INFO without a 'warning:' prefix; the result JSON to stdout."""
    res = run(
        "finetune",
        "--model",
        str(tiny_assets["wav2vec2"]),
        "--dataset",
        "folder",
        "--root",
        str(tiny_assets["data"]),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--max-steps-per-epoch",
        "2",
        "--no-convexity",
        "--device",
        "cpu",
    )
    assert res.returncode == 0, res.stderr
    assert "epoch 1/1: validation accuracy" in res.stderr
    assert "warning: epoch" not in res.stderr
    assert res.stdout.splitlines()[1] == "done:"
    doc = json.loads(res.stdout.split("done:", 1)[1])
    assert 0.0 <= doc["best_accuracy"] <= 1.0 and doc["epoch_seconds_median"] > 0
    run_id = res.stdout.split()[1].rstrip(":")
    res = run("euclidean", run_id, "--pairs", "2", "--max-clips", "16", "--no-progress")
    assert res.returncode == 0 and "±sem" in res.stdout, (
        res.stderr
    )  # a run id works as well as a folder


def test_jobs_list_status_and_watch(run: Callable[..., Res]) -> None:
    """`jobs list|status|watch` on finished runs: labels, attempts, progress; watch exits 0 only if done."""
    from core.geometry.curves import LayerCurve
    from core.runs import lifecycle
    from core.runs.folders import RunState, set_state
    from core.training.trajectory import TrajectoryPoint

    done = lifecycle.create_run("finetune", {"model": "m", "epochs": 2, "task": "words"})
    rows = [
        {
            "kind": "eval",
            "step": 2 * e,
            "epoch": e,
            "accuracy": 0.5,
            "loss": 1.0,
            "epoch_seconds": 3.0,
            "time": e,
        }
        for e in (1, 2)
    ]
    curve = LayerCurve(scores=(0.25, 0.5))
    rows += [
        {"kind": "convexity", **TrajectoryPoint(e, 2 * e, 1.0, 0.1, 30, {"word": curve}).to_dict()}
        for e in (0, 2)
    ]
    (done / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    set_state(
        done,
        RunState.DONE,
        epoch=2,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:05+00:00",
    )
    cancelled = lifecycle.create_run("finetune", {"model": "m"}, parent=done.name, attempt=2)
    set_state(cancelled, RunState.CANCELLED)
    listed = run("jobs", "list").stdout
    assert re.search(rf"^{done.name}\s+done\s+finetune\s+2\s+words\s+full\s+1\s", listed, re.M)
    assert re.search(rf"^{cancelled.name}\s+cancelled\s.*\s2\s", listed, re.M)
    doc = json.loads(run("jobs", "status", done.name).stdout)
    assert doc["progress"]["elapsed_s"] == 65.0 and doc["progress"]["total_remaining_s"] == 0.0
    assert len(doc["metrics_tail"]) == 3
    res = run("jobs", "watch", done.name, "--interval", "0.05")
    assert res.returncode == 0 and "done" in res.stdout and "elapsed 1 min 05 s" in res.stdout
    assert "convexity pretrained: word 0.25 0.50" in res.stdout
    assert "convexity epoch 2 (step 4): word 0.25 0.50" in res.stdout
    assert run("jobs", "watch", cancelled.name, "--interval", "0.05").returncode == 1
    assert json.loads(run("jobs", "status", cancelled.name).stdout)["parent"] == done.name


def test_diagnose_writes_clip_and_class_tables_and_path_lists_every_vertex(
    run: Callable[..., Res], tree: Path, model_dir: Path, tmp_path: Path
) -> None:
    common = [str(model_dir), "folder", "--root", str(tree), "--batch-size", "4", "--k", "3"]
    out = tmp_path / "diag"
    res = run("diagnose", *common, "--layer", "1", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "diagnostics of hidden state 1" in res.stdout and "stored in" in res.stdout
    clips = list(csv.DictReader((out / "clips.csv").open()))
    classes = list(csv.DictReader((out / "classes.csv").open()))
    assert {r["label_set"] for r in clips} == {"word", "speaker"}
    n = sum(1 for r in clips if r["label_set"] == "word")
    assert n == sum(1 for r in clips if r["label_set"] == "speaker") == N
    assert all(r["exact"] == "True" for r in clips)
    assert {r["label"] for r in classes if r["label_set"] == "speaker"} == set(SPEAKERS)
    assert all(int(r["n_components"]) >= 1 for r in classes)
    again = run("diagnose", *common, "--layer", "1")
    assert "loaded from" in again.stdout
    path_csv = tmp_path / "path.csv"
    res = run("path", *common, "--layer", "1", "--from", "0", "--out", str(path_csv))
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(path_csv.open()))
    assert rows[0]["role"] == "source" and rows[0]["clip"] == "0"
    assert rows[-1]["role"] == "target" and "pair score" in res.stdout
    word = {r["clip"]: r["word"] for r in clips if r["label_set"] == "word"}
    assert all((r["in_class"] == "True") == (r["word"] == rows[0]["word"]) for r in rows)
    assert all(word[r["clip"]] == r["word"] for r in rows)
    bad = run("path", *common, "--layer", "1", "--from", str(N + 5))
    assert bad.returncode == 2 and "clip indices run" in bad.stderr


@pytest.mark.slow  # extracts features of a tiny model
def test_convexity_chance_and_a_class_too_small_to_resample(
    run: Callable[..., Res], tree: Path, model_dir: Path, tmp_path: Path
) -> None:
    """`--chance K` adds chance columns to the table and exports; `--resamples` on words spoken by 3
    speakers is refused in one line (quarter-samples of speakers need 8 per word), nothing computed;
    `--at-size` gives the curve at a chosen size, and a size the labels do not reach is one line."""
    common = [str(model_dir), "folder", "--root", str(tree), "--batch-size", "4", "--no-progress"]
    out_json, out_csv = tmp_path / "c.json", tmp_path / "c.csv"
    res = run(
        "convexity", *common, "--k", "3", "--exhaustive", "--chance", "3", "--out", str(out_json)
    )
    assert res.returncode == 0, res.stderr
    assert "chance ± sd" in res.stdout and "normalised" in res.stdout
    doc = json.loads(out_json.read_text())
    chance = doc["statistics"]["sets"]["word"]["chance"]
    assert chance["n_permutations"] == 3 and len(chance["mean"]) == L + 1
    res = run(
        "convexity", *common, "--k", "3", "--exhaustive", "--chance", "3", "--out", str(out_csv)
    )
    rows = [r for r in csv.DictReader(out_csv.open()) if not r["class"]]
    assert rows and all(r["chance"] for r in rows)
    res = run("convexity", *common, "--k", "3", "--resamples", "4")
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "needs at least 8" in lines[0], res.stderr
    sized = ["--labels", "word", "--k", "3", "--exhaustive", "--subsets", "3"]
    res = run("convexity", *common, *sized, "--at-size", "2x4")
    assert res.returncode == 0, res.stderr
    assert "word at 2 classes x 4 clips each: mean over 3 seeded subsets" in res.stdout
    res = run("convexity", *common, *sized, "--at-size", "5x2")
    assert res.returncode == 2 and "fewer than the 5 asked for" in res.stderr, res.stderr
    assert "graph convexity" not in res.stdout  # refused before any curve is computed


def test_a_bad_plan_is_one_line_before_any_run_folder(
    run: Callable[..., Res], cli_cache: str, model_dir: Path, tree: Path
) -> None:
    """finetune, sweep and benchmark refuse a plan no model of 3 layers has, in one line (exit 2),
    and make no run folder for it."""
    runs_root = Path(cli_cache) / "runs"
    before = sorted(runs_root.iterdir()) if runs_root.exists() else []
    model = ["--model", str(model_dir), "--dataset", "folder", "--root", str(tree)]
    cases = [
        (["finetune", *model, "--plan", ""], "the plan is empty"),
        (["finetune", *model, "--plan", "drop 4"], "layer 4 is out of range"),
        (["finetune", *model, "--plan", "drop 2,2"], "name layer 2 twice"),
        (["finetune", *model, "--plan", "drop 1-3"], "leaves no model"),
        (["finetune", *model, "--plan", "cut 2"], "a plan reads like 'drop 3-4'"),
        (["finetune", *model, "--plan", "drop 2", "--prune", "1"], "not both"),
        (["sweep", *model, "--plan", "keep 3,1"], "increasing order"),
        (["benchmark", "--model", str(model_dir), "--plan", "keep 0"], "layer 0 is out of range"),
        (["benchmark", "--model", str(model_dir), "--plan", "drop 1", "--prune", "2"], "not both"),
        (["benchmark", "--model", str(model_dir)], "a prune point or a plan"),
    ]
    for argv, expected in cases:
        assert expected in _one_line_error(run(*argv)), argv
    assert (sorted(runs_root.iterdir()) if runs_root.exists() else []) == before
