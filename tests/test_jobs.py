"""Background jobs for real: ids, status labels, queue + cancel, restart as a new attempt, SIGKILL then resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from core import runs
from core.errors import RunError
from core.runs import jobs
from core.runs.folders import discard_partial_metrics, write_status
from core.runs.records import estimate_progress, proc_start
from tests.tiny_assets import tiny_config_dict


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Own cache (and so runs folder) per test; one thread per worker process."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CONVEXITY_LAB_MAX_JOBS", "1")
    torch.set_num_threads(1)


def _steps(run: Path) -> list[int]:
    """The optimizer steps of the training rows in a run's metrics, in file order."""
    rows = runs.read_metrics(run)
    return [r["step"] for r in rows if r.get("kind") == "train"]


def _wait_for_step(run: Path, step: int, timeout: float = 120.0) -> None:
    """Poll until the run has logged ``step`` training steps (while it stays active)."""
    jobs.wait(run, timeout=timeout, until=lambda s: s.state == "running" and (s.step or 0) >= step)


def test_run_ids_are_validated(tmp_path: Path) -> None:
    """Paths, '..' and unknown ids are refused with RunError before anything is touched."""
    root = runs.runs_root()
    for bad in ("../../etc", "/etc", "a/b", "..", ".hidden", "", "x..y"):
        for call in (runs.status, runs.result, runs.log_tail, jobs.cancel, jobs.resume):
            with pytest.raises(RunError):
                call(bad)
    with pytest.raises(RunError, match="no run"):
        jobs.resume("no-such-id")
    with pytest.raises(RunError):
        runs.run_dir(tmp_path)  # a folder outside the runs folder
    assert list(root.iterdir()) == []


def test_failing_run_reports_its_error(tmp_path: Path) -> None:
    run = jobs.create_run("finetune", {"model": str(tmp_path / "no-such-model"), "epochs": 1})
    assert runs.status(run.name).state == "queued"
    assert jobs.run_job(run) == 1
    status = runs.status(run.name)
    assert status.state == "failed"
    assert "no-such-model" in status.error
    raw = runs.read_status(run)
    assert status.pid == os.getpid() and raw["pid_start"] == proc_start(os.getpid())
    assert "failed" in runs.log_tail(run.name)
    assert [r.run_id for r in runs.list_runs()] == [run.name]
    assert runs.RunStatus.from_dict(status.to_dict()) == status


def test_status_labels_follow_the_process(tmp_path: Path) -> None:
    """queued until a worker runs; running only while it lives; cancelling once asked; failed when gone."""
    run = jobs.create_run("finetune", {"model": "m"})
    assert runs.status(run.name).label == "queued"  # never started: genuinely queued
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        write_status(run, state="running", pid=sleeper.pid, pid_start=proc_start(sleeper.pid))
        assert runs.status(run.name).label == "running"
        (run / "cancel.request").write_text("{}")
        assert runs.status(run.name).label == "cancelling"
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = runs.status(run.name)
    assert (gone.state, gone.label, gone.interrupted) == ("failed", "failed", True)

    never = jobs.create_run("finetune", {"model": "m"})
    assert jobs.cancel(never.name).state == "cancelled"


def test_estimate_progress_from_epoch_timings() -> None:
    """Per-epoch time is the median of finished epochs; the current epoch's share left counts too."""
    rows = [
        {"kind": "train", "step": 1, "epoch": 1, "epoch_progress": 0.5, "time": 105.0},
        {"kind": "eval", "step": 2, "epoch": 1, "epoch_seconds": 10.0, "time": 111.0},
        {"kind": "train", "step": 3, "epoch": 2, "epoch_progress": 0.5, "time": 116.0},
        {"kind": "eval", "step": 4, "epoch": 2, "epoch_seconds": 12.0, "time": 124.0},
        {"kind": "train", "step": 5, "epoch": 3, "epoch_progress": 0.25, "time": 127.0},
    ]
    est = estimate_progress(rows, epochs=5, started=100.0, now=128.0)
    assert (est["epoch"], est["epoch_fraction"], est["seconds_per_epoch"]) == (3, 0.25, 11.0)
    assert est["epoch_remaining_s"] == pytest.approx(8.25)
    assert est["total_remaining_s"] == pytest.approx(8.25 + 2 * 11.0)
    first = estimate_progress(rows[:1], epochs=5, started=100.0, now=106.0)
    assert first["seconds_per_epoch"] == pytest.approx(10.0)  # 5 s for half an epoch
    assert first["total_remaining_s"] == pytest.approx(5.0 + 4 * 10.0)


def test_partial_metrics_are_discarded_only_without_a_checkpoint(tmp_path: Path) -> None:
    run = jobs.create_run("sweep", {"model": "m"})
    for name, files in (("p1", ["result.json"]), ("p2", ["state.pt"]), ("p3", [])):
        (run / name).mkdir()
        (run / name / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "epoch": 1}\n')
        for f in files:
            (run / name / f).write_text("x")
    assert discard_partial_metrics(run) == [run / "p3" / "metrics.jsonl"]
    assert (run / "p1" / "metrics.jsonl").exists() and (run / "p2" / "metrics.jsonl").exists()


def test_queue_and_cancel(tiny_assets: dict[str, Path]) -> None:
    first = jobs.submit("finetune", tiny_config_dict(tiny_assets, epochs=200))
    second = jobs.submit("finetune", tiny_config_dict(tiny_assets, epochs=1))
    _wait_for_step(first, 1)
    running = runs.status(first.name)
    assert running.state == "running" and running.label == "running"
    pr = runs.progress(first.name)
    assert pr.state == "running" and pr.elapsed_s is not None and pr.epochs == 200
    assert pr.total_remaining_s is not None and pr.total_remaining_s > 0
    time.sleep(2.0)  # the second worker is up and waiting for the single slot
    status2 = runs.status(second.name)
    assert status2.state == "queued" and status2.pid
    assert jobs.cancel(second.name, timeout=30).state == "cancelled"
    status1 = jobs.cancel(first.name, timeout=60)
    assert status1.state == "cancelled", status1
    assert not jobs.worker_alive(first, runs.read_status(first))
    states = {r.run_id: r.label for r in runs.list_runs()}
    assert states == {first.name: "cancelled", second.name: "cancelled"}


def _cancelled_in_epoch_one(config: dict[str, Any], steps: int) -> Path:
    """A run folder as a worker leaves it when cancelled after ``steps`` steps of epoch 1 (no checkpoint)."""
    run = jobs.create_run("finetune", config)
    rows = [
        {"kind": "train", "step": s, "epoch": 1, "loss": 1.0, "time": s}
        for s in range(1, steps + 1)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_status(run, state="cancelled", pid=None, epoch=1, step=steps)
    return run


def test_restart_is_a_new_attempt_with_one_history(tiny_assets: dict[str, Path]) -> None:
    """Restart after a cancel: a new folder (attempt 2, parent = old) whose steps start at 1, once each."""
    old = _cancelled_in_epoch_one(
        tiny_config_dict(tiny_assets, epochs=1, max_steps_per_epoch=2), 13
    )
    assert not runs.status(old.name).resumable
    new = jobs.restart(old.name, background=False)
    assert new.state == "done", new
    assert new.run_id != old.name and (new.attempt, new.parent) == (2, old.name)
    assert new.config == runs.status(old.name).config
    assert _steps(runs.run_dir(new.run_id)) == [1, 2]  # one attempt: each step once
    assert _steps(old) == list(range(1, 14))  # the old attempt's history is untouched
    busy = jobs.create_run("finetune", tiny_config_dict(tiny_assets))  # queued: not restartable yet
    with pytest.raises(RunError, match="still queued"):
        jobs.restart(busy.name)


def test_resume_without_checkpoint_starts_one_clean_history(
    tiny_assets: dict[str, Path],
) -> None:
    """Resuming a run cancelled before its first checkpoint redoes epoch 1 without repeating steps."""
    run = _cancelled_in_epoch_one(
        tiny_config_dict(tiny_assets, epochs=1, max_steps_per_epoch=2), 13
    )
    resumed = jobs.resume(run.name, background=False)
    assert (resumed.state, resumed.run_id, resumed.attempt) == ("done", run.name, 1)
    assert _steps(run) == [1, 2]


def test_sigkill_then_resume_from_last_epoch(tiny_assets: dict[str, Path]) -> None:
    epochs = 6
    run = jobs.submit(
        "finetune", tiny_config_dict(tiny_assets, epochs=epochs, max_steps_per_epoch=3)
    )
    deadline = time.monotonic() + 120
    while not (run / "state.pt").exists():
        assert time.monotonic() < deadline, runs.status(run.name)
        assert runs.status(run.name).active, runs.status(run.name)
        time.sleep(0.05)
    os.killpg(runs.status(run.name).pid, signal.SIGKILL)
    jobs.wait(run, timeout=30)  # status notices the dead worker
    status = next(r for r in runs.list_runs() if r.run_id == run.name)
    assert status.state == "failed" and status.interrupted and status.resumable
    done_epochs = torch.load(run / "state.pt", weights_only=True)["epoch"]
    assert 1 <= done_epochs < epochs

    resumed = jobs.resume(run.name)
    assert resumed.run_id == run.name and resumed.attempt == 1
    final = jobs.wait(run, timeout=150)
    assert final.state == "done", final
    rows = runs.read_metrics(run)
    assert [r["epoch"] for r in rows if r.get("kind") == "eval"] == list(range(1, epochs + 1))
    steps = _steps(run)
    assert steps == list(range(1, epochs * 3 + 1))  # one history: every step once, in order
    marks = [r for r in rows if r.get("event") == "resumed"]
    assert marks and marks[0]["epoch"] == done_epochs
    result = runs.result(run.name)
    assert result["best_accuracy"] > 0.5
    assert (run / "best" / "config.json").exists()
    pr = runs.progress(run.name)
    assert pr.state == "done" and pr.total_remaining_s == 0.0 and pr.elapsed_s > 0


def test_cancel_in_a_sweeps_first_phase_stops_its_worker(
    tiny_assets: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Defect: `jobs cancel` during a sweep's pretrained-convexity phase (which polls nothing) left the
    `run-job` worker computing. Now the worker stops within its grace and only then is it cancelled."""
    monkeypatch.setenv("CONVEXITY_LAB_CANCEL_GRACE", "1")  # inherited by the worker
    cfg = tiny_config_dict(tiny_assets, points=["suggested", "full"], benchmark=False, epochs=1)
    run = jobs.submit("sweep", cfg)
    jobs.wait(run, timeout=120, until=lambda s: s.state == "running")  # phase 1 has begun
    pid = runs.status(run.name).pid
    from core.cli.main import main

    assert main(["jobs", "cancel", run.name]) == 0  # waits out the 1-s grace (+5 s)
    printed = json.loads(capsys.readouterr().out)
    final = runs.status(run.name)
    assert printed["state"] == final.state == "cancelled", printed
    assert not Path(f"/proc/{pid}").exists() or "run-job" not in _cmdline(pid)
    assert not (run / "pretrained_convexity.json").exists()  # stopped inside phase 1, not after
    log = (run / "train.log").read_text()
    # the grace stopped it: its Cancelled, or whatever a library wrapped it in (e.g. mid-import), or,
    # when its main thread sat in one long compiled call past the grace (+2 s), the canceller's SIGKILL
    stopped = r"no stopping point within 1 s|cancelled \(stopped with|killed \(no stopping point within 3 s"
    assert re.search(stopped, log), log[-2000:]
    assert "suggested prune point" not in log
    assert not any(run.glob("p*"))  # no point was fine-tuned


def _cmdline(pid: int) -> str:
    """The command line of a live process ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
