"""The run list and the run views stand whatever lies in the runs folder, and tidy what dead writers left."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from core.cli.main import main
from core.io.locks import try_exclusive
from core.io.run_folder import RunFolder
from core.runs import lifecycle, records
from core.runs.folders import RunState, runs_root, set_state
from core.runs.views import finished_results, list_benchmarks

HOUR_AGO = time.time() - 2 * 3600


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))


def _finished(kind: str = "finetune") -> Path:
    """A run folder recorded as done (no worker: nothing runs)."""
    run = lifecycle.create_run(kind, {"model": "m", "epochs": 1})
    set_state(run, RunState.DONE)
    return run


def _debris(root: Path, tmp_path: Path) -> None:
    """What does not belong in a runs folder: a file, links (to a folder, dangling, to a run's
    settings), folders without or with malformed settings, a malformed status."""
    (root / "notes.txt").write_text("not a run")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text(json.dumps({"kind": "finetune", "config": {}}))
    (root / "link-to-folder").symlink_to(outside, target_is_directory=True)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "empty-folder").mkdir()
    torn = root / "torn-settings"
    torn.mkdir()
    (torn / "config.json").write_text('{"kind": "fine')
    odd = root / "odd-status"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"kind": "finetune", "config": {}}))
    (odd / "status.json").write_text(
        json.dumps({"state": "done", "pid": "not a pid", "attempt": []})
    )


def test_the_run_list_skips_what_is_not_a_run_and_lists_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good = _finished()
    _debris(runs_root(), tmp_path)
    assert [r.run_id for r in records.list_runs()] == [good.name]
    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    assert good.name in out and "notes" not in out and "odd-status" not in out
    assert finished_results() == [] and list_benchmarks() == []  # no crash on the same folder


def test_a_finished_runs_stale_locks_and_staging_files_are_removed(tmp_path: Path) -> None:
    run = RunFolder(_finished("sweep"))
    point = run.point(2)
    point.path.mkdir()
    point.set_state(RunState.DONE)
    stale = [
        run.file(RunFolder.STATUS_LOCK),
        run.file(".result.json.abc123.tmp"),
        point.file(RunFolder.STATUS_LOCK),
        point.file(".metrics.jsonl.x.tmp"),
    ]
    fresh = run.file(".results.json.new.tmp")  # a writer may still be renaming it
    fresh.write_text("{}")
    held_path = run.file("other.lock")
    held_path.write_text("")
    for path in [*stale, held_path]:
        path.touch()
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    held = try_exclusive(held_path)  # a live process holds it
    try:
        assert [r.run_id for r in records.list_runs()] == [run.name]
    finally:
        held.close()
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and held_path.exists()
    assert run.read_status()["state"] == "done" and run.read_spec() is not None


def test_an_active_runs_files_are_left_alone(tmp_path: Path) -> None:
    run = RunFolder(lifecycle.create_run("finetune", {"model": "m"}))  # queued, never started
    staging = run.file(".status.json.abc.tmp")
    staging.write_text("{}")
    os.utime(staging, (HOUR_AGO, HOUR_AGO))
    assert [r.state for r in records.list_runs()] == ["queued"]
    assert staging.exists()
