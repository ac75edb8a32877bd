"""Background jobs for real: failure reporting, queue + cancel, SIGKILL then resume from the epoch checkpoint."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from core.runs import jobs
from tests.tiny_assets import tiny_config


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Own cache (and so runs folder) per test; one thread per worker process."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CONVEXITY_LAB_MAX_JOBS", "1")
    torch.set_num_threads(1)


def _config(assets: dict[str, Path], **kw: object) -> dict:
    return tiny_config(assets, **kw).to_dict()


def test_failing_run_reports_its_error(tmp_path: Path) -> None:
    run = jobs.create_run("finetune", {"model": str(tmp_path / "no-such-model"), "epochs": 1})
    assert jobs.read_status(run)["state"] == "queued"
    assert jobs.run_job(run) == 1
    status = jobs.read_status(run)
    assert status["state"] == "failed"
    assert "no-such-model" in status["error"]
    assert status["pid"] == os.getpid() and status["pid_start"] == jobs._proc_start(os.getpid())
    assert "failed" in (run / "train.log").read_text()
    assert [r["run_id"] for r in jobs.list_runs()] == [run.name]


def test_queue_and_cancel(tiny_assets: dict[str, Path]) -> None:  # noqa: F811
    first = jobs.submit("finetune", _config(tiny_assets, epochs=200))
    second = jobs.submit("finetune", _config(tiny_assets, epochs=1))
    jobs.wait(first, timeout=120, until=lambda s: s.get("state") == "running" and s.get("step"))
    time.sleep(2.0)  # the second worker is up and waiting for the single slot
    status2 = jobs.read_status(second)
    assert status2["state"] == "queued" and status2["pid"]
    assert jobs.cancel(second, timeout=30)["state"] == "cancelled"
    status1 = jobs.cancel(first, timeout=60)
    assert status1["state"] == "cancelled", status1
    assert not jobs._pid_alive(status1["pid"], first)
    states = {r["run_id"]: r["state"] for r in jobs.list_runs()}
    assert states == {first.name: "cancelled", second.name: "cancelled"}


def test_sigkill_then_resume_from_last_epoch(tiny_assets: dict[str, Path]) -> None:  # noqa: F811
    epochs = 6
    run = jobs.submit("finetune", _config(tiny_assets, epochs=epochs, max_steps_per_epoch=3))
    deadline = time.monotonic() + 120
    while not (run / "state.pt").exists():
        assert time.monotonic() < deadline, jobs.read_status(run)
        assert jobs.read_status(run)["state"] in jobs.ACTIVE, jobs.read_status(run)
        time.sleep(0.05)
    pid = jobs.read_status(run)["pid"]
    os.killpg(pid, signal.SIGKILL)
    jobs.wait(run, timeout=30)  # list/wait notice the dead worker
    status = next(r for r in jobs.list_runs() if r["run_id"] == run.name)
    assert status["state"] == "failed" and status["interrupted"] and status["resumable"]
    done_epochs = torch.load(run / "state.pt", weights_only=True)["epoch"]
    assert 1 <= done_epochs < epochs

    jobs.resume(run.name)
    final = jobs.wait(run, timeout=150)
    assert final["state"] == "done", final
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r.get("kind") == "eval"] == list(range(1, epochs + 1))
    resumed = [r for r in rows if r.get("event") == "resumed"]
    assert resumed and resumed[0]["epoch"] == done_epochs
    result = json.loads((run / "result.json").read_text())
    assert result["best_accuracy"] > 0.5
    assert (run / "best" / "config.json").exists()
