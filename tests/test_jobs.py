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
from core.io.processes import proc_start
from core.runs import lifecycle, records
from core.runs.folders import RunState, discard_partial_metrics, set_state
from core.runs.metrics import metrics_of
from core.runs.records import estimate_progress
from tests.helpers.fixtures import isolated_jobs  # noqa: F401  (own cache, one thread, one job slot)
from tests.helpers.tiny_assets import tiny_config_dict


def _steps(run: Path) -> list[int]:
    """The optimizer steps of the training rows in a run's metrics, in file order."""
    rows = runs.read_metrics(run)
    return [r["step"] for r in rows if r.get("kind") == "train"]


def _wait_for_step(run: Path, step: int, timeout: float = 120.0) -> None:
    """Poll until the run has logged ``step`` training steps (while it stays active)."""
    lifecycle.wait(
        run, timeout=timeout, until=lambda s: s.state == "running" and (s.step or 0) >= step
    )


def test_run_ids_are_validated(tmp_path: Path) -> None:
    """Paths, '..' and unknown ids are refused with RunError before anything is touched."""
    root = runs.runs_root()
    for bad in ("../../etc", "/etc", "a/b", "..", ".hidden", "", "x..y"):
        for call in (runs.status, runs.result, runs.log_tail, lifecycle.cancel, lifecycle.resume):
            with pytest.raises(RunError):
                call(bad)
    with pytest.raises(RunError, match="no run"):
        lifecycle.resume("no-such-id")
    with pytest.raises(RunError):
        runs.run_dir(tmp_path)  # a folder outside the runs folder
    assert list(root.iterdir()) == []


@pytest.mark.slow
def test_failing_run_reports_its_error(tmp_path: Path) -> None:
    run = lifecycle.create_run("finetune", {"model": str(tmp_path / "no-such-model"), "epochs": 1})
    assert runs.status(run.name).state == "queued"
    assert lifecycle.run_job(run) == 1
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
    run = lifecycle.create_run("finetune", {"model": "m"})
    assert runs.status(run.name).label == "queued"  # never started: genuinely queued
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        set_state(run, RunState.RUNNING, pid=sleeper.pid, pid_start=proc_start(sleeper.pid))
        assert runs.status(run.name).label == "running"
        (run / "cancel.request").write_text("{}")
        assert runs.status(run.name).label == "cancelling"
    finally:
        sleeper.kill()
        sleeper.wait()
    gone = runs.status(run.name)
    assert (gone.state, gone.label, gone.interrupted) == ("failed", "failed", True)

    never = lifecycle.create_run("finetune", {"model": "m"})
    assert lifecycle.cancel(never.name).state == "cancelled"


def _train(step: int, epoch: int, progress: float, time: float) -> dict:
    """A training step's metrics row, as the fine-tune writes it."""
    return {
        "kind": "train",
        "step": step,
        "epoch": epoch,
        "loss": 1.0,
        "epoch_progress": progress,
        "time": time,
    }


def _eval(step: int, epoch: int, seconds: float, time: float) -> dict:
    """An epoch evaluation's metrics row, as the fine-tune writes it."""
    return {
        "kind": "eval",
        "step": step,
        "epoch": epoch,
        "accuracy": 0.5,
        "loss": 1.0,
        "epoch_seconds": seconds,
        "time": time,
    }


def test_estimate_progress_from_epoch_timings() -> None:
    """Per-epoch time is the median of finished epochs; the current epoch's share left counts too."""
    rows = [
        _train(1, 1, 0.5, 105.0),
        _eval(2, 1, 10.0, 111.0),
        _train(3, 2, 0.5, 116.0),
        _eval(4, 2, 12.0, 124.0),
        _train(5, 3, 0.25, 127.0),
    ]
    est = estimate_progress(metrics_of(rows), epochs=5, started=100.0, now=128.0)
    assert (est.epoch, est.epoch_fraction, est.seconds_per_epoch) == (3, 0.25, 11.0)
    assert est.epoch_remaining_s == pytest.approx(8.25)
    assert est.total_remaining_s == pytest.approx(8.25 + 2 * 11.0)
    assert est.phase == "training"


def test_first_estimate_rests_on_measured_steps_only() -> None:
    """A first estimate from one row and the start time counted model loading as training (8 min shown
    for a 1.5 min run): no estimate until two steps of this attempt are logged, then their rate."""
    rows = [_train(1, 1, 0.1, 160.0)]
    # 60 s of loading before the first step
    first = estimate_progress(metrics_of(rows), epochs=3, started=100.0, now=161.0)
    assert first.seconds_per_epoch is None and first.total_remaining_s is None
    rows.append(_train(2, 1, 0.2, 163.0))
    second = estimate_progress(metrics_of(rows), epochs=3, started=100.0, now=164.0)
    assert second.seconds_per_epoch == pytest.approx(30.0)  # 3 s per tenth, not 630 s
    assert second.total_remaining_s == pytest.approx(0.8 * 30 + 2 * 30)
    resumed = [*rows, {"event": "resumed", "epoch": 0, "time": 300.0}]
    resumed.append(_train(1, 1, 0.1, 340.0))
    assert estimate_progress(metrics_of(resumed), 3, 300.0, 341.0).seconds_per_epoch is None


def test_metric_rows_are_typed_once_and_know_their_attempt() -> None:
    """Rows of the wrong shape are left out when typed; a step knows the resumes before it, so the
    estimate of a resumed run measures its current attempt only."""
    rows = [
        _train(1, 1, 0.1, 1.0),
        {"kind": "train", "step": "x", "epoch": 1, "loss": 1.0},
        _eval(2, 1, 5.0, 2.0),
        {"event": "resumed", "epoch": 1, "time": 3.0},
        _train(3, 2, 0.1, 4.0),
        {"kind": "eval", "epoch": 2},
    ]
    metrics = metrics_of(rows)
    assert [(r.step, r.attempt) for r in metrics.train] == [(1, 0), (3, 1)]
    assert (metrics.done_epochs, metrics.attempt, len(metrics.evals)) == (1, 1, 1)
    assert estimate_progress(metrics, 3, None, 5.0).epoch == 2


def test_final_evaluation_claims_no_time_left() -> None:
    """'0 s left' for half a minute: once every epoch is done the phase says final evaluation."""
    rows = [
        _train(1, 1, 1.0, 105.0),
        _eval(1, 1, 5.0, 106.0),
    ]
    assert estimate_progress(metrics_of(rows[:1]), 1, 100.0, 105.5).phase == "evaluating"
    est = estimate_progress(metrics_of(rows), epochs=1, started=100.0, now=130.0)
    assert est.phase == "final evaluation"
    assert est.total_remaining_s is None and est.epoch_remaining_s is None


@pytest.mark.slow
def test_elapsed_time_continues_across_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Elapsed restarted at 1 s after a resume: it adds up every attempt."""
    run = lifecycle.create_run("finetune", {"model": str(tmp_path / "no-such-model"), "epochs": 1})
    set_state(
        run,
        RunState.CANCELLED,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:40+00:00",
    )
    assert runs.progress(run.name).elapsed_s == pytest.approx(100.0)
    monkeypatch.setattr(lifecycle, "start", lambda run: 0)  # queued again, its worker not up yet
    lifecycle.resume(run.name)
    assert runs.progress(run.name).elapsed_s == pytest.approx(
        100.0
    )  # not counting from the old start
    lifecycle.run_job(run)  # the worker: fails at once, no such model
    second = runs.progress(run.name)
    assert second.state == "failed" and 100.0 <= second.elapsed_s < 160.0


@pytest.mark.slow
def test_spawned_worker_does_not_stay_a_zombie(tmp_path: Path) -> None:
    """A failed run left a defunct child of the server: the spawner collects every worker's exit."""
    run = lifecycle.create_run("finetune", {"model": str(tmp_path / "no-such-model"), "epochs": 1})
    pid = lifecycle.start(run)
    deadline = time.monotonic() + 120
    while runs.read_status(run).get("state") != "failed":  # the raw file: nothing here reaps
        assert time.monotonic() < deadline, runs.read_status(run)
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while _proc_state(pid) not in ("gone", "X"):
        assert time.monotonic() < deadline, f"worker {pid} left as {_proc_state(pid)}"
        time.sleep(0.1)


def _proc_state(pid: int) -> str:
    """The kernel's state letter of ``pid`` (Z: zombie), or 'gone'."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.slow
def test_benchmark_runs_as_a_job_in_its_own_process(tmp_path: Path) -> None:
    """The page's benchmark ran in a thread of the server; it is a job kind with a worker process."""
    from core.runs.views import list_benchmarks
    from core.training.benchmark import BenchmarkResult
    from core.training.configs import BenchmarkConfig
    from tests.helpers.tiny_assets import make_trainable_wav2vec2

    model = make_trainable_wav2vec2(tmp_path / "m", layers=2)
    cfg = BenchmarkConfig(
        model=str(model),
        prune_point=1,
        n_labels=4,
        train_batch=2,
        infer_batch=2,
        warmup=1,
        repeats=2,
        device="cpu",
    )
    run = lifecycle.submit("benchmark", cfg.to_dict())
    final = lifecycle.wait(run, timeout=240)
    assert final.state == "done", runs.log_tail(run.name)
    assert final.pid != os.getpid()
    saved = BenchmarkResult.from_dict(json.loads((run / "benchmark.json").read_text()))
    assert (saved.repeats, saved.warmup, saved.timing_threads) == (2, 1, 1)
    assert [b.run_id for b in list_benchmarks()] == [run.name]
    last = runs.read_status(run)["last"]
    assert (last["phase"], last["done"], last["total"]) == ("timing", 3, 3)
    pr = runs.progress(run.name)
    assert pr.phase == "done" and pr.elapsed_s > 0


def test_partial_metrics_are_discarded_only_without_a_checkpoint(tmp_path: Path) -> None:
    run = lifecycle.create_run("sweep", {"model": "m"})
    for name, files in (("p1", ["result.json"]), ("p2", ["state.pt"]), ("p3", [])):
        (run / name).mkdir()
        (run / name / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "epoch": 1}\n')
        for f in files:
            (run / name / f).write_text("x")
    assert discard_partial_metrics(run) == [run / "p3" / "metrics.jsonl"]
    assert (run / "p1" / "metrics.jsonl").exists() and (run / "p2" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_queue_and_cancel(tiny_assets: dict[str, Path]) -> None:
    first = lifecycle.submit("finetune", tiny_config_dict(tiny_assets, epochs=200))
    second = lifecycle.submit("finetune", tiny_config_dict(tiny_assets, epochs=1))
    _wait_for_step(first, 3)  # two logged steps at least: the first estimate rests on them
    running = runs.status(first.name)
    assert running.state == "running" and running.label == "running"
    pr = runs.progress(first.name)
    assert pr.state == "running" and pr.elapsed_s is not None and pr.epochs == 200
    assert pr.total_remaining_s is not None and pr.total_remaining_s > 0
    time.sleep(2.0)  # the second worker is up and waiting for the single slot
    status2 = runs.status(second.name)
    assert status2.state == "queued" and status2.pid
    assert lifecycle.cancel(second.name, timeout=30).state == "cancelled"
    status1 = lifecycle.cancel(first.name, timeout=60)
    assert status1.state == "cancelled", status1
    assert not records.worker_alive(first, runs.read_status(first))
    states = {r.run_id: r.label for r in runs.list_runs()}
    assert states == {first.name: "cancelled", second.name: "cancelled"}


def _cancelled_in_epoch_one(config: dict[str, Any], steps: int) -> Path:
    """A run folder as a worker leaves it when cancelled after ``steps`` steps of epoch 1 (no checkpoint)."""
    run = lifecycle.create_run("finetune", config)
    rows = [
        {"kind": "train", "step": s, "epoch": 1, "loss": 1.0, "time": s}
        for s in range(1, steps + 1)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    set_state(run, RunState.CANCELLED, pid=None, epoch=1, step=steps)
    return run


def test_restart_is_a_new_attempt_with_one_history(tiny_assets: dict[str, Path]) -> None:
    """Restart after a cancel: a new folder (attempt 2, parent = old) whose steps start at 1, once each."""
    old = _cancelled_in_epoch_one(
        tiny_config_dict(tiny_assets, epochs=1, max_steps_per_epoch=2), 13
    )
    assert not runs.status(old.name).resumable
    new = lifecycle.restart(old.name, background=False)
    assert new.state == "done", new
    assert new.run_id != old.name and (new.attempt, new.parent) == (2, old.name)
    assert new.config == runs.status(old.name).config
    assert _steps(runs.run_dir(new.run_id)) == [1, 2]  # one attempt: each step once
    assert _steps(old) == list(range(1, 14))  # the old attempt's history is untouched
    busy = lifecycle.create_run(
        "finetune", tiny_config_dict(tiny_assets)
    )  # queued: not restartable yet
    with pytest.raises(RunError, match="still queued"):
        lifecycle.restart(busy.name)


def test_resume_without_checkpoint_starts_one_clean_history(
    tiny_assets: dict[str, Path],
) -> None:
    """Resuming a run cancelled before its first checkpoint redoes epoch 1 without repeating steps."""
    run = _cancelled_in_epoch_one(
        tiny_config_dict(tiny_assets, epochs=1, max_steps_per_epoch=2), 13
    )
    resumed = lifecycle.resume(run.name, background=False)
    assert (resumed.state, resumed.run_id, resumed.attempt) == ("done", run.name, 1)
    assert _steps(run) == [1, 2]


@pytest.mark.slow
def test_sigkill_then_resume_from_last_epoch(tiny_assets: dict[str, Path]) -> None:
    epochs = 6
    run = lifecycle.submit(
        "finetune", tiny_config_dict(tiny_assets, epochs=epochs, max_steps_per_epoch=3)
    )
    deadline = time.monotonic() + 120
    while not (run / "state.pt").exists():
        assert time.monotonic() < deadline, runs.status(run.name)
        assert runs.status(run.name).active, runs.status(run.name)
        time.sleep(0.05)
    os.killpg(runs.status(run.name).pid, signal.SIGKILL)
    lifecycle.wait(run, timeout=30)  # status notices the dead worker
    status = next(r for r in runs.list_runs() if r.run_id == run.name)
    assert status.state == "failed" and status.interrupted and status.resumable
    done_epochs = torch.load(run / "state.pt", weights_only=True)["epoch"]
    assert 1 <= done_epochs < epochs

    resumed = lifecycle.resume(run.name)
    assert resumed.run_id == run.name and resumed.attempt == 1
    final = lifecycle.wait(run, timeout=150)
    assert final.state == "done", final
    rows = runs.read_metrics(run)
    assert [r["epoch"] for r in rows if r.get("kind") == "eval"] == list(range(1, epochs + 1))
    steps = _steps(run)
    assert steps == list(range(1, epochs * 3 + 1))  # one history: every step once, in order
    marks = [r for r in rows if r.get("event") == "resumed"]
    assert marks and marks[0]["epoch"] == done_epochs
    result = runs.result(run.name)
    assert result.best_accuracy > 0.5
    assert (run / "best" / "config.json").exists()
    pr = runs.progress(run.name)
    assert pr.state == "done" and pr.total_remaining_s == 0.0 and pr.elapsed_s > 0


@pytest.mark.slow
def test_cancel_in_a_sweeps_first_phase_stops_its_worker(
    tiny_assets: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Defect: `jobs cancel` during a sweep's pretrained-convexity phase (which polls nothing) left the
    `run-job` worker computing. Now the worker stops within its grace and only then is it cancelled."""
    monkeypatch.setenv("CONVEXITY_LAB_CANCEL_GRACE", "1")  # inherited by the worker
    cfg = tiny_config_dict(tiny_assets, points=["suggested", "full"], benchmark=False, epochs=1)
    run = lifecycle.submit("sweep", cfg)
    lifecycle.wait(run, timeout=120, until=lambda s: s.state == "running")  # phase 1 has begun
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


def test_foreground_resume_exits_with_the_runs_ending_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A failed resume exited 0 and printed a 2,300-character squashed traceback."""
    from core.cli.main import main
    from core.runs import local

    def fail(*args: Any) -> None:
        raise RuntimeError("CUDA out of memory " + "x" * 2300 + "\nTraceback line two")

    monkeypatch.setattr(local, "execute", fail)
    run = lifecycle.create_run("finetune", {"model": "m", "epochs": 1})
    lifecycle.cancel(run.name)
    assert main(["jobs", "resume", run.name, "--foreground"]) == 1
    out = capsys.readouterr()
    (err,) = [line for line in out.err.splitlines() if "error" in line]
    assert err.startswith("error: failed: RuntimeError: CUDA out of memory") and len(err) < 400
    assert json.loads(out.out)["state"] == "failed"
    status = runs.status(run.name)
    assert status.state == "failed" and "\n" not in status.error and len(status.error) <= 300
    assert "train.log" in status.error
    assert "Traceback line two" in runs.log_tail(run.name)  # the whole story stays in train.log
    monkeypatch.setattr(local, "execute", lambda *args: {"ok": True})
    monkeypatch.setattr(local, "finish", lambda run, result: local.set_state(run, RunState.DONE))
    assert main(["jobs", "resume", run.name, "--foreground"]) == 0
