"""Run files edited by hand or by a broken writer: every jobs command answers in one line or as if the
row were absent, never with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import runs as run_store
from core.cli.main import main
from core.io.run_folder import RunFolder, RunState

BAD_LINES = {
    "deeply-nested": "[" * 100_000 + "]" * 100_000,
    "nested-object": '{"kind": "eval", "epoch": {"a": [[[1]]]}, "accuracy": [0.5]}',
    "not-an-object": "[1, 2, 3]",
    "wrong-types": '{"kind": "eval", "step": "3", "epoch": [1], "epoch_seconds": 9, "accuracy": 0.5}',
    "wrong-train": '{"kind": "train", "step": 4, "epoch": [2], "epoch_progress": "half", "time": 1}',
    "torn": '{"kind": "eval", "epo',
}


@pytest.fixture
def run_id(private_cache: Path) -> str:
    run = run_store.create_run("finetune", {"model": "m", "epochs": 2, "task": "words"})
    folder = RunFolder(run)
    folder.append_metric(
        {"kind": "eval", "step": 3, "epoch": 1, "epoch_seconds": 10.0, "accuracy": 0.5, "loss": 0.7}
    )
    folder.set_state(RunState.RUNNING, epoch=1)
    return run.name


@pytest.mark.parametrize("line", list(BAD_LINES.values()), ids=list(BAD_LINES))
@pytest.mark.parametrize("command", ["status", "trajectory", "list"])
def test_a_bad_metrics_line_never_breaks_a_jobs_command(
    run_id: str, line: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = RunFolder(run_store.run_dir(run_id)).file(RunFolder.METRICS)
    with metrics.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    argv = ["jobs", command] + ([] if command == "list" else [run_id])
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2) and len([x for x in err.splitlines() if x.strip()]) <= 1, err
