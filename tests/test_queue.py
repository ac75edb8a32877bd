"""A queued run says what it waits for: the run holding the job slot, its place in line, a waiting time
that advances; the Benchmarks page shows it instead of "queued for 0 s ... loading models"."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import runs as run_store
from core.io.processes import proc_start
from core.runs import lifecycle
from core.runs.folders import RunState, set_state
from core.runs.queue import queue_place, waiting
from core.training.configs import BenchmarkConfig

MODEL = "whisper-tiny.en-offline"


def _live(run: Path, state: str, queued_at: float) -> None:
    """Mark ``run`` as held by a live worker (this test process) in ``state``."""
    pid = os.getpid()
    set_state(run, RunState(state), queued_at=queued_at, pid=pid, pid_start=proc_start(pid))


def _three_runs() -> tuple[Path, Path, Path]:
    """A running sweep holding the slot and two benchmarks queued behind it, oldest first."""
    sweep = lifecycle.create_run("sweep", {"model": MODEL, "task": "speakers", "epochs": 1})
    first = lifecycle.create_run("benchmark", BenchmarkConfig(model=MODEL, prune_point=1).to_dict())
    second = lifecycle.create_run(
        "benchmark", BenchmarkConfig(model=MODEL, prune_point=2).to_dict()
    )
    now = time.time()
    _live(sweep, "running", now - 600)
    _live(first, "queued", now - 100)
    _live(second, "queued", now - 50)
    return sweep, first, second


def test_a_queued_run_names_the_slot_holder_and_its_place(private_cache: Path) -> None:
    sweep, first, second = _three_runs()
    assert waiting() == [first, second]
    now = time.time()
    place = queue_place(second.name, now=now)
    assert place is not None
    assert (place.position, place.waiting, place.slots) == (2, 2, 1)
    assert [h.run_id for h in place.holders] == [sweep.name]
    assert [h.kind for h in place.holders] == ["sweep"]
    text = place.text()
    assert sweep.name in text and "(sweep)" in text and "2nd in line" in text
    assert queue_place(first.name, now=now).position == 1
    assert "next in the queue" in queue_place(first.name, now=now).text()
    assert queue_place(sweep.name) is None  # it runs: no place in the queue


def test_the_waiting_time_advances(private_cache: Path) -> None:
    _, first, _ = _three_runs()
    t0 = time.time()
    a, b = run_store.progress(first.name, now=t0), run_store.progress(first.name, now=t0 + 5)
    assert a.phase == b.phase == "queued"
    assert a.queued_s is not None and 99 <= a.queued_s <= 102
    assert b.queued_s - a.queued_s == 5.0
    assert (
        queue_place(first.name, now=t0 + 5).waited_s - queue_place(first.name, now=t0).waited_s == 5
    )


def test_benchmarks_page_says_what_a_queued_benchmark_waits_for(private_cache: Path) -> None:
    sweep, first, _ = _three_runs()
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    texts = [str(p.proto.text) for p in at.get("progress")]
    line = next(t for t in texts if first.name in t)
    assert "waiting" in line and sweep.name in line and "next in the queue" in line, line
    assert "loading models" not in line and "queued for 0 s" not in line


def test_jobs_watch_and_status_say_what_a_queued_run_waits_for(private_cache: Path, capsys) -> None:
    from core.cli.main import main

    sweep, first, _ = _three_runs()
    assert main(["jobs", "status", first.name]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["queue"]["position"] == 1 and doc["queue"]["holders"][0]["run_id"] == sweep.name
    assert main(["jobs", "watch", first.name, "--timeout", "0.1", "--interval", "0.05"]) == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert f"for the job slot, held by {sweep.name} (sweep); next in the queue" in line
