"""The run-folder layout object: settings written once, status merged under a lock, metrics that survive
torn writes, and malformed files read as missing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from core.errors import RunError
from core.io.run_folder import RunFolder, RunSpec


def test_settings_are_written_once_and_read_back_typed(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r1")
    assert not run.exists and run.read_spec() is None
    spec = RunSpec("finetune", {"model": "m", "epochs": 2}, executor={"name": "local"})
    run.write_spec(spec)
    assert run.exists and run.read_spec() == spec
    with pytest.raises(RunError, match="already has its settings"):
        run.write_spec(RunSpec("sweep", {}))
    assert run.read_spec() == spec


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"kind": 3}', '{"kind": "finetune", "config": [1]}', "[" * 100000]
)
def test_malformed_settings_read_as_missing(tmp_path: Path, text: str) -> None:
    run = RunFolder(tmp_path / "r")
    run.path.mkdir()
    run.file(RunFolder.CONFIG).write_text(text)
    assert run.read_spec() is None


def test_status_updates_from_two_threads_keep_every_field(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    run.path.mkdir()

    def write(prefix: str) -> None:
        for i in range(40):
            run.update_status(**{f"{prefix}{i}": i})

    threads = [threading.Thread(target=write, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status = run.read_status()
    assert all(f"{p}{i}" in status for p in "ab" for i in range(40))
    assert status["run_id"] == "r" and status["resumable"] is False


def test_metrics_skip_a_torn_line_and_keep_only_completed_epochs(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "r")
    run.path.mkdir()
    for epoch in (1, 1, 2, 3):
        run.append_metric({"kind": "train", "epoch": epoch})
    with open(run.file(RunFolder.METRICS), "a") as fh:
        fh.write('{"kind": "tr')  # a writer killed mid-line
    assert [r["epoch"] for r in run.read_metrics()] == [1, 1, 2, 3]
    run.keep_metrics(2)
    assert [r["epoch"] for r in run.read_metrics()] == [1, 1, 2]


def test_sweep_points_checkpoints_and_partial_metrics(tmp_path: Path) -> None:
    run = RunFolder(tmp_path / "sweep")
    run.write_spec(RunSpec("sweep", {}))
    for p in (10, 2):
        run.point(p).path.mkdir()
        run.point(p).append_metric({"epoch": 1})
    (run.path / "plots").mkdir()  # not a point
    assert [p.name for p in run.points()] == ["p2", "p10"]
    assert not run.has_checkpoint()
    run.point(10).file(RunFolder.CHECKPOINT).write_bytes(b"x")
    assert run.has_checkpoint()
    removed = run.discard_partial_metrics()
    assert removed == [run.point(2).file(RunFolder.METRICS)]
    assert run.point(10).read_metrics() == [{"epoch": 1}]


def test_result_follows_the_kind(tmp_path: Path) -> None:
    """The kind's registry entry names its result file: a sweep's results.json, never a result.json."""
    from core.training.kinds import run_kind

    fine, sweep = RunFolder(tmp_path / "f"), RunFolder(tmp_path / "s")
    fine.write_spec(RunSpec("finetune", {}))
    sweep.write_spec(RunSpec("sweep", {}))
    assert fine.read_result(run_kind("finetune").result_file) is None
    fine.write_json(RunFolder.RESULT, {"best_accuracy": 0.5})
    sweep.write_json(RunFolder.SWEEP_RESULTS, {"rows": []})
    sweep.write_json(RunFolder.RESULT, {"not": "this"})
    assert fine.read_result(run_kind("finetune").result_file) == {"best_accuracy": 0.5}
    assert sweep.read_result(run_kind("sweep").result_file) == {"rows": []}
    assert json.loads(sweep.file(RunFolder.SWEEP_RESULTS).read_text()) == {"rows": []}


def test_a_state_is_written_only_as_a_run_state(tmp_path: Path) -> None:
    """One transition helper: a bare string state, or a state slipped into a field merge, is refused;
    the file keeps the same text as ever."""
    from core.io.run_folder import RunState

    run = RunFolder(tmp_path / "r")
    run.path.mkdir()
    with pytest.raises(TypeError):
        run.set_state("done")
    with pytest.raises(TypeError):
        run.update_status(state="done")
    run.set_state(RunState.DONE, error=None)
    assert json.loads(run.file(RunFolder.STATUS).read_text())["state"] == "done"
    assert (
        run.read_status()["state"] == RunState.DONE and RunState.of("nonsense") is RunState.UNKNOWN
    )
    queued = run.enqueue(kind="finetune")
    assert queued["state"] == "queued" and queued["pid"] is None and queued["queued_at"] > 0


def test_a_sweeps_plan_point_shows_its_plan_in_the_progress(private_cache: Path) -> None:
    """A plan point's folder (``pL4-k1.4``) is listed with its depth and plan beside the prune points;
    a folder named like no point a sweep writes is left out, not an error."""
    from core.runs import lifecycle, records

    run = RunFolder(lifecycle.create_run("sweep", {"model": "m", "epochs": 2}))
    for name, config in ((2, {"prune_point": 2}), ("L4-k1.4", {"plan": "drop 2-3"})):
        run.point(name).path.mkdir()
        run.point(name).write_spec(RunSpec("finetune", config))
        run.point(name).append_metric({"kind": "eval", "epoch": 1, "accuracy": 0.5})
    run.point("L4-k7").path.mkdir()  # layer 7 of 4: no plan
    points = records.sweep_points(run.name)
    assert [(p.prune_point, p.plan, p.point_label) for p in points] == [
        (2, None, "p = 2"),
        (2, "drop 2-3", "drop 2-3"),
    ]
