"""The Ray executor on a real local Ray cluster (127.0.0.1, 2 CPUs): grid cells, shards, faults, cancel.

Select with ``-m ray``; skipped when Ray is not installed. One cluster for the module, shut down after.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core import runs
from core.geometry.options import ConvexityOptions
from core.io.paths import REPO_ROOT
from core.runs import folders, lifecycle
from core.runs.lifecycle import create_run_on
from core.runs.local import LocalExecutor
from core.runs.ray_executor import ray_temp_dir
from core.runs.spec import ExecutorSpec
from core.training.grid import GridSpec, read_grid_tables
from core.training.trajectory import read_trajectory
from tests.helpers.tiny_assets import make_tone_noise_dataset, make_trainable_wav2vec2

ray_cluster_test = pytest.mark.ray
pytestmark = pytest.mark.slow  # each test starts a local Ray cluster


@pytest.fixture(scope="module")
def ray_cluster():
    """A private Ray cluster on loopback with 2 CPUs, no dashboard; always shut down."""
    from core.runs.ray_executor import LOOPBACK_ONLY

    if "ray" not in sys.modules:  # single-machine mode: Ray's servers listen on 127.0.0.1 only
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=str(ray_temp_dir()),
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny trainable wav2vec2 and the tone/noise folder dataset."""
    base = tmp_path_factory.mktemp("ray-assets")
    return {
        "model": make_trainable_wav2vec2(base / "w2v"),
        "data": make_tone_noise_dataset(base / "data", speakers=3, per_speaker=8),
    }


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Own cache per test; one torch thread everywhere (2 shared cores)."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("CONVEXITY_LAB_EXECUTOR", raising=False)
    torch.set_num_threads(1)


def _train(assets: dict[str, Path], **kw: object) -> dict:
    """A fast fine-tune recipe on the tone/noise set."""
    base = dict(
        dataset="folder",
        root=str(assets["data"]),
        eval_split="test",
        epochs=2,
        batch_size=8,
        lr=3e-3,
        log_every=1,
        convexity=False,
        device="cpu",
        max_steps_per_epoch=2,
    )
    base.update(kw)
    return base


def _ray(**kw: object):
    from core.runs.ray_executor import RayExecutor

    return RayExecutor(ExecutorSpec(name="ray", **kw))


def _losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r.get("kind") in ("train", "eval")]


@ray_cluster_test
def test_grid_on_ray_equals_local_and_resumes(
    ray_cluster, assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.runs.grid_runs import run_grid

    spec = GridSpec(
        models=(str(assets["model"]),),
        tasks=("words",),
        points=("full",),
        seeds=(0, 1),
        train=_train(assets),
        benchmark=False,
        convexity_max_clips=12,
    )
    said: list[str] = []
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "local"))
    monkeypatch.setenv("CONVEXITY_LAB_MAX_JOBS", "2")  # both local cells at once, as on Ray
    local = run_grid(spec, LocalExecutor(), ExecutorSpec(), say=said.append)
    local_runs = {r.run_id: folders.run_dir(r.run_id) for r in runs.list_runs()}

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "ray"))
    executor = _ray()
    try:
        table = run_grid(spec, executor, executor.spec, say=said.append)
        listed = {r.run_id: folders.read_status(r.run_id) for r in runs.list_runs()}
        assert set(listed) == set(local_runs) and len(listed) == 2
        for run_id, row in listed.items():  # the same run list, the same figures, bit for bit
            assert row["state"] == "done" and row["executor"] == "ray" and row["attempt"] == 1
            ray_result = json.loads((folders.run_dir(run_id) / "result.json").read_text())
            loc_result = json.loads((local_runs[run_id] / "result.json").read_text())
            assert ray_result["best_accuracy"] == loc_result["best_accuracy"]
            assert _losses(folders.run_dir(run_id)) == _losses(local_runs[run_id])
        assert table.n_done == local.n_done == 2
        assert table.rows[0].to_dict() == local.rows[0].to_dict()
        assert table.rows[0].accuracy_std is not None
        (saved,) = read_grid_tables()  # in the results store, with provenance
        assert saved.table.executor == "ray" and saved.table.n_done == 2
        assert saved.provenance.extra["grid_id"] == spec.grid_id

        said.clear()
        again = run_grid(
            spec, executor, executor.spec, say=said.append
        )  # resumable: nothing to run
        assert again.n_done == 2 and any("2 done, 0 to run" in s for s in said)

        # A deterministic failure fails once, with its error (unchecked, as if the model folder
        # vanished after the launch: a launch refuses it); the grid's cells above are the good runs.
        bad = create_run_on(
            "finetune",
            {**_train(assets), "model": str(tmp_path / "nope")},
            executor.spec,
            check=False,
        )
        executor.submit(bad)
        finals = executor.wait([bad])
    finally:
        executor.close()
    _benchmarks_page_shows(spec.grid_id)
    assert isinstance(finals[bad.name], runs.RunStatus)  # typed, like the local executor's
    assert finals[bad.name].state == "failed" and "nope" in finals[bad.name].error
    assert finals[bad.name].attempt == 1 and finals[bad.name].executor == "ray"


def _benchmarks_page_shows(grid_id: str) -> None:
    """The Benchmarks page lists the grid's table (real Streamlit script run)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../app.py", default_timeout=180).run()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    assert grid_id in at.selectbox(key="bm_grid").options[0]  # the shown label
    table = next(df.value for df in at.dataframe if "failed seeds" in df.value.columns)
    assert list(table["point"]) == ["full (p=2)"] and "(n=2)" in table["accuracy"][0]


@ray_cluster_test
def test_killed_worker_is_retried_and_resumes_from_its_epoch(ray_cluster, assets) -> None:
    epochs = 5
    executor = _ray(max_retries=2)
    try:
        cfg = {
            **_train(assets, epochs=epochs, max_steps_per_epoch=3),
            "model": str(assets["model"]),
        }
        run = create_run_on("finetune", cfg, executor.spec)
        executor.submit(run)
        deadline = time.monotonic() + 90
        while not (run / "state.pt").exists():
            assert time.monotonic() < deadline, folders.read_status(run)
            time.sleep(0.05)
        status = folders.read_status(run)
        os.kill(status["worker_pid"], signal.SIGKILL)
        killed_after = torch.load(run / "state.pt", weights_only=True)["epoch"]
        final = executor.wait([run])[run.name]
    finally:
        executor.close()
    assert final.state == "done", final
    assert final.attempt == 2 and final.worker_pid != status["worker_pid"]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r.get("kind") == "eval"] == list(range(1, epochs + 1))
    resumed = [r["epoch"] for r in rows if r.get("event") == "resumed"]
    assert len(resumed) == 1 and killed_after <= resumed[0] < epochs  # lost < 1 epoch of work
    assert 1 <= killed_after < epochs
    # convexity while training: the pretrained point and one per epoch, none repeated by the retry
    assert [p.epoch for p in read_trajectory(run).points] == list(range(epochs + 1))


@ray_cluster_test
def test_cancel_reaches_the_ray_task(ray_cluster, assets) -> None:
    executor = _ray()
    try:
        cfg = {**_train(assets, epochs=500), "model": str(assets["model"])}
        run = create_run_on("finetune", cfg, executor.spec)
        executor.submit(run)
        deadline = time.monotonic() + 90
        while not folders.read_status(run).get("step"):
            assert time.monotonic() < deadline, folders.read_status(run)
            time.sleep(0.1)
        assert lifecycle.cancel(run).cancel_requested  # what `jobs cancel` and the dashboard call
        final = executor.wait([run])[run.name]
    finally:
        executor.close()
    assert final.state == "cancelled", final
    assert [r.state for r in runs.list_runs()] == ["cancelled"]


@ray_cluster_test
def test_sharded_extraction_is_the_local_cache_entry(
    ray_cluster, tree: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.data.features import Selection, extract_features, load_cached_features
    from core.geometry.convexity import layerwise_convexity
    from core.runs.parallel import extract_features_sharded, parallel_convexity

    sel = Selection.of("folder", str(tree))
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "local"))
    local = extract_features(model_dir, sel, batch_size=4)
    for mode in ("shared", "object-store"):
        monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / mode))
        executor = _ray(results=mode)
        try:
            fs = extract_features_sharded(model_dir, sel, executor, n_shards=2, batch_size=4)
            again = load_cached_features(fs.key)  # validated like any cache entry
            if mode == "object-store":  # curves come back through the object store in either mode
                curves = parallel_convexity(
                    [
                        (
                            np.asarray(local.features),
                            {"word": local.words, "speaker": local.speakers},
                        )
                    ],
                    executor,
                    ConvexityOptions(k=3, max_pairs_per_class=None),
                )[0]
        finally:
            executor.close()
        assert fs.key == local.key and fs.meta["shards"] == 2 and fs.directory.name == local.key
        assert np.array_equal(np.asarray(again.features), np.asarray(local.features))
        assert (again.paths, again.words, again.speakers) == (
            local.paths,
            local.words,
            local.speakers,
        )
    one = layerwise_convexity(
        local.features,
        {"word": local.words, "speaker": local.speakers},
        ConvexityOptions(k=3, max_pairs_per_class=None),
    )
    for name in one:
        assert curves[name].layers == one[name].layers
        assert np.array_equal(curves[name].scores, one[name].scores)


def test_ray_executor_without_ray_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from core.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["grid", "--models", "x", "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install ray==2.60.0" in err


@ray_cluster_test
def test_cli_sweep_on_ray_records_its_executor(
    ray_cluster, assets: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    """``python -m core sweep --executor ray``: a real tiny sweep on the local cluster, driven here.

    Its pretrained convexity, both points' fine-tunes (run folders nested in the sweep's) and its
    table are Ray tasks; the sweep and each point record the executor and the Ray worker they ran in.
    """
    from core.cli.main import main

    args = [
        "sweep",
        "--model",
        str(assets["model"]),
        "--dataset",
        "folder",
        "--root",
        str(assets["data"]),
        "--eval-split",
        "test",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-steps-per-epoch",
        "2",
        "--no-convexity",
        "--no-benchmark",
        "--device",
        "cpu",
        "--points",
        "suggested,full",
        "--convexity-max-clips",
        "12",
        "--executor",
        "ray",
        "--cpus-per-run",
        "1",
    ]
    assert main(args) == 0, capsys.readouterr().err
    (run,) = runs.list_runs()
    folder = folders.run_dir(run.run_id)
    spec = json.loads((folder / "config.json").read_text())
    assert spec["executor"]["name"] == "ray" and spec["executor"]["num_cpus"] == 1.0
    assert (run.state, run.executor, run.kind) == ("done", "ray", "sweep"), run
    assert run.worker_pid and run.worker_pid != os.getpid()  # its table was built in a Ray worker
    points = sorted(folder.glob("p*/status.json"))
    assert len(points) == 2
    for path in points:
        point = runs.status_from(path.parent, json.loads(path.read_text()))
        assert (point.state, point.attempt) == ("done", 1) and point.worker_pid != os.getpid()
    result = json.loads((folder / "results.json").read_text())
    assert sorted(r["prune_point"] for r in result["rows"]) == sorted(result["points"])


# Fields of a status.json that say when, where and by which process: they differ between any two runs.
STATUS_KEPT = ("state", "kind", "error", "attempt", "summary")
VOLATILE = ("time", "host", "pid", "seconds", "throughput", "device")  # throughput: a rate


def _same_anywhere(value: object, run: Path) -> object:
    """A JSON value without its times, hosts and pids, the run folder's path written as ``<run>``."""
    if isinstance(value, dict):
        return {
            k: _same_anywhere(v, run)
            for k, v in value.items()
            if not (k.endswith("_at") or any(w in k for w in VOLATILE))
        }
    if isinstance(value, list):
        return [_same_anywhere(v, run) for v in value]
    if isinstance(value, str):
        return value.replace(str(run.resolve()), "<run>").replace(str(run), "<run>")
    if isinstance(value, float) and math.isnan(value):
        return "nan"  # NaN != NaN: equal here when both are NaN
    return value


def _differences(a: object, b: object, where: str) -> list[str]:
    """Where two JSON values differ, leaf by leaf (``where: local != ray``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"[:300]]


def _folder_contents(run: Path) -> dict[str, object]:
    """Every file of a run folder by relative path: JSON documents without times and hosts (status:
    its outcome fields; config: without its executor), other files by presence. Logs (times and
    hosts, line by line) and dot files (locks, staging) are left out."""
    out: dict[str, object] = {}
    for path in sorted(run.rglob("*")):
        rel = path.relative_to(run)
        if not path.is_file() or any(p.startswith(".") for p in rel.parts):
            continue
        if path.suffix == ".log" or path.name == "worker.out":
            continue
        if path.suffix == ".json" and not {"best", "last"} & set(rel.parts):
            doc = json.loads(path.read_text())
            if path.name == "status.json":
                doc = {k: doc.get(k) for k in STATUS_KEPT}
            if path.name == "config.json":
                doc.pop("executor", None)
            out[str(rel)] = _same_anywhere(doc, run)
        elif path.suffix == ".jsonl":
            rows = [json.loads(x) for x in path.read_text().splitlines() if x]
            out[str(rel)] = _same_anywhere(rows, run)
        else:
            out[str(rel)] = "present"
    return out


@ray_cluster_test
def test_local_and_ray_sweeps_leave_the_same_run_folder(
    ray_cluster, assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same tiny sweep through each executor's worker body: the same files, settings, metrics
    and results in its folder and its points' folders, apart from times, hosts and pids; a plan
    point (``drop 1``) is a Ray task of its own like a prune point."""
    from core.runs import lifecycle
    from core.runs.records import list_runs

    cfg = {
        **_train(assets, epochs=1),
        "model": str(assets["model"]),
        "points": ["suggested", "full", "drop 1"],
        "benchmark": False,
        "convexity_max_clips": 12,
    }
    folders = {}
    for name in ("local", "ray"):
        monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / name))
        run = lifecycle.create_run_on("sweep", cfg, ExecutorSpec(name=name, num_cpus=1.0))
        assert lifecycle.run_job(run) == 0, (run / "train.log").read_text()
        (listed,) = list_runs()
        assert (listed.state, listed.executor) == ("done", name)
        folders[name] = run
    local, ray = (_folder_contents(folders[n]) for n in ("local", "ray"))
    assert sorted(local) == sorted(ray)  # the same files, points' status files included
    assert {"config.json", "results.json", "p2/config.json", "p2/result.json"} <= set(local)
    assert {"pL2-k2/config.json", "pL2-k2/result.json"} <= set(local)
    assert json.loads((folders["ray"] / "pL2-k2" / "result.json").read_text())["plan"] == "keep 2"
    differ = [d for rel in local for d in _differences(local[rel], ray[rel], rel)]
    assert not differ, "\n".join(differ)
