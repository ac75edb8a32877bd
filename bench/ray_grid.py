"""Local vs Ray executor on one tiny grid, interleaved in one process, plus the kill-and-retry figures.

    python bench/ray_grid.py                  # 4 cells (1 tiny model x words x points 1,full x seeds 0,1)
    python bench/ray_grid.py --repeats 3 --epochs 3 --cpus 2

Each repeat runs the same grid on fresh caches, local (detached processes, $CONVEXITY_LAB_MAX_JOBS
slots, default 1) then Ray (a private 127.0.0.1 cluster with --cpus CPUs, started once and warmed up
by one untimed grid), and reports wall times, medians, the ratio and the load average before/after
(the machine is shared: read the figures with it). Kill-and-retry: one fine-tune on Ray, its worker
SIGKILLed after the first epoch checkpoint; prints the epoch checkpointed at the kill, the epoch the
retry resumed from, the train steps redone, and the seconds from the kill to the retry's first step.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.io.paths import REPO_ROOT  # noqa: E402
from core.runs import folders, local  # noqa: E402
from core.runs.grid_runs import run_grid  # noqa: E402
from core.runs.lifecycle import create_run_on  # noqa: E402
from core.runs.local import LocalExecutor  # noqa: E402
from core.runs.ray_executor import ray_temp_dir  # noqa: E402
from core.runs.spec import ExecutorSpec  # noqa: E402
from core.training.grid import GridSpec  # noqa: E402
from tests.helpers.tiny_assets import make_tone_noise_dataset, make_trainable_wav2vec2  # noqa: E402


def _load() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _grid(model: Path, data: Path, epochs: int) -> GridSpec:
    """The tiny 4-cell grid."""
    train = dict(
        dataset="folder",
        root=str(data),
        eval_split="test",
        epochs=epochs,
        batch_size=8,
        lr=3e-3,
        log_every=1,
        convexity=False,
        device="cpu",
        max_steps_per_epoch=4,
    )
    return GridSpec(
        models=(str(model),),
        tasks=("words",),
        points=(1, "full"),
        seeds=(0, 1),
        train=train,
        benchmark=False,
    )


def _timed(spec: GridSpec, executor, espec: ExecutorSpec, cache: Path) -> float:
    """Wall seconds of one whole grid on a fresh cache."""
    os.environ["CONVEXITY_LAB_CACHE"] = str(cache)
    t0 = time.perf_counter()
    table = run_grid(spec, executor, espec, say=lambda s: None)
    seconds = time.perf_counter() - t0
    assert table.n_done == table.n_cells, table
    return seconds


def _kill_and_retry(executor, model: Path, data: Path, cache: Path) -> dict:
    """One fine-tune on Ray, worker SIGKILLed after its first checkpoint; what the retry redid."""
    os.environ["CONVEXITY_LAB_CACHE"] = str(cache)
    cfg = dict(
        model=str(model),
        dataset="folder",
        root=str(data),
        eval_split="test",
        epochs=6,
        batch_size=8,
        lr=3e-3,
        log_every=1,
        convexity=False,
        device="cpu",
        max_steps_per_epoch=4,
    )
    run = create_run_on("finetune", cfg, executor.spec)
    executor.submit(run)
    while not (run / "state.pt").exists():
        time.sleep(0.02)
    import torch

    pid = folders.read_status(run)["worker_pid"]
    os.kill(pid, signal.SIGKILL)
    t_kill = time.time()
    checkpointed = torch.load(run / "state.pt", weights_only=True)["epoch"]
    rows_at_kill = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    final = executor.wait([run])[run.name]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    resumed = next(r for r in rows if r.get("event") == "resumed")
    first_after = min(r["time"] for r in rows if r.get("kind") == "train" and r["time"] > t_kill)
    redone = [r for r in rows_at_kill if r.get("kind") == "train" and r["epoch"] > checkpointed]
    return {
        "state": final.state,
        "attempts": final.attempt,
        "epoch_checkpointed": checkpointed,
        "resumed_from_epoch": resumed["epoch"],
        "train_steps_redone": len(redone),
        "steps_per_epoch": 4,
        "seconds_kill_to_first_step": round(first_after - t_kill, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    a = ap.parse_args()
    from core.runs.ray_executor import LOOPBACK_ONLY, RayExecutor

    os.environ.setdefault(LOOPBACK_ONLY, "0")  # before importing ray: servers on 127.0.0.1 only
    import ray

    os.environ["OMP_NUM_THREADS"] = "1"
    base = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    model = make_trainable_wav2vec2(base / "w2v")
    data = make_tone_noise_dataset(base / "data", speakers=3, per_speaker=8)
    spec = _grid(model, data, a.epochs)
    print(
        f"grid: 4 cells, {a.epochs} epochs x 4 steps, batch 8, tiny wav2vec2 (2 layers, d=32), "
        f"1 torch thread per cell; load before: {_load()}"
    )
    ray.init(
        num_cpus=a.cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=str(ray_temp_dir()),
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
    )
    espec = ExecutorSpec(name="ray")
    rex = RayExecutor(espec)
    try:
        t_warm = _timed(spec, rex, espec, base / "warm")
        print(f"ray warm-up grid (untimed in the medians): {t_warm:.1f} s")
        times: dict[str, list[float]] = {"local": [], "ray": []}
        for i in range(a.repeats):
            times["local"].append(_timed(spec, LocalExecutor(), ExecutorSpec(), base / f"l{i}"))
            times["ray"].append(_timed(spec, rex, espec, base / f"r{i}"))
            print(
                f"repeat {i}: local {times['local'][-1]:.1f} s, ray {times['ray'][-1]:.1f} s; "
                f"load {_load()}"
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"median wall: local {med['local']:.1f} s (max_jobs={local.max_jobs()}), ray "
            f"{med['ray']:.1f} s ({a.cpus} CPUs); ray/local = {med['ray'] / med['local']:.2f}; "
            f"per cell on ray: {med['ray'] / 4:.1f} s"
        )
        print("kill-and-retry:", json.dumps(_kill_and_retry(rex, model, data, base / "kill")))
        print(f"load after: {_load()}")
    finally:
        rex.close()
        ray.shutdown()


if __name__ == "__main__":
    main()
