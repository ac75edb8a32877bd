"""Command line for fine-tuning, jobs, benchmarks and prune sweeps (``python -m core finetune|sweep|benchmark|jobs ...``).

Subcommands: ``finetune`` and ``sweep`` (foreground by default; ``--background`` queues a job and
prints its id), ``jobs list|status|cancel|resume``, ``benchmark``, and the internal ``run-job RUN_DIR``
that background workers execute.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]


def _train_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``finetune`` and ``sweep``."""
    p.add_argument("--model", required=True, help="preset key, hub id or model directory")
    p.add_argument("--dataset", default="sample")
    p.add_argument("--root", default=None, help="dataset folder (if not the registry default)")
    p.add_argument("--task", default="words", choices=["words", "speakers"])
    p.add_argument("--eval-split", default="validation", help="evaluated every epoch; picks best/")
    p.add_argument("--test-split", default="test", help="best/ finally scored here")
    p.add_argument("--max-train-clips", type=int, default=None)
    p.add_argument("--min-clips", type=int, default=None)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--no-freeze-front-end", action="store_true")
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--max-steps-per-epoch", type=int, default=None)
    p.add_argument("--no-convexity", action="store_true")
    p.add_argument("--background", action="store_true", help="queue as a background job")
    p.add_argument(
        "--paper",
        action="store_true",
        help="the paper's recipe: Speech Commands, 20 epochs, batch 32, lr 3e-5, best on validation, "
        "scored on test (a GPU is advised)",
    )


def _train_config(a: argparse.Namespace) -> dict[str, Any]:
    """Config dict from parsed options (``--paper`` overrides dataset/epochs/batch/lr)."""
    cfg = {
        "model": a.model, "dataset": a.dataset, "root": a.root, "task": a.task,
        "eval_split": a.eval_split, "test_split": a.test_split, "max_train_clips": a.max_train_clips, "min_clips": a.min_clips,
        "epochs": a.epochs, "batch_size": a.batch_size, "lr": a.lr, "warmup_ratio": a.warmup_ratio,
        "weight_decay": a.weight_decay, "grad_accum": a.grad_accum,
        "freeze_front_end": not a.no_freeze_front_end, "bf16": not a.no_bf16, "seed": a.seed,
        "device": a.device, "max_steps_per_epoch": a.max_steps_per_epoch,
        "convexity": not a.no_convexity,
    }  # fmt: skip
    if a.paper:
        cfg.update(
            dataset="speech-commands", epochs=20, batch_size=32, lr=3e-5, eval_split="validation",
            test_split="test",
        )  # fmt: skip
    return cfg


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so ``python -m core`` can mount these subcommands)."""
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("finetune", help="fine-tune a full or pruned model (a run folder)")
    _train_args(p)
    p.add_argument("--prune", type=int, default=None, help="prune point p (default: full model)")

    p = sub.add_parser("sweep", help="fine-tune at several prune points; suggest one")
    _train_args(p)
    p.add_argument(
        "--points", default="full,suggested", help="comma list of ints, 'full', 'suggested'"
    )
    p.add_argument("--fraction", type=float, default=0.95, help="suggestion rule fraction")
    p.add_argument("--convexity-split", default="train")
    p.add_argument("--no-benchmark", action="store_true")

    p = sub.add_parser("jobs", help="list / status / cancel / resume runs")
    p.add_argument("action", choices=["list", "status", "cancel", "resume"])
    p.add_argument("run", nargs="?", help="run id (status/cancel/resume)")
    p.add_argument("--force", action="store_true", help="cancel with SIGKILL")
    p.add_argument("--foreground", action="store_true", help="resume in this process")

    p = sub.add_parser("benchmark", help="full vs pruned cost table")
    p.add_argument("--model", required=True)
    p.add_argument("--prune", type=int, required=True)
    p.add_argument("--labels", type=int, default=35)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--infer-batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--n-train-clips", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="folder for benchmark.json/.csv")

    p = sub.add_parser("run-job", help=argparse.SUPPRESS)
    p.add_argument("run_dir")
    return parser


def _print_json(obj: Any) -> None:
    """Indented JSON on stdout."""
    print(json.dumps(obj, indent=2, default=str))


def _launch(kind: str, cfg: dict[str, Any], background: bool) -> int:
    """Create a run; start it in the background or run it here; print where it is."""
    from core.runs import jobs

    run = jobs.create_run(kind, cfg)
    print(f"run {run.name}: {run}")
    if background:
        pid = jobs.start(run)
        print(
            f"started in the background (pid {pid}); watch: python -m core jobs status {run.name}"
        )
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    code = jobs.run_job(run)
    status = jobs.read_status(run)
    print(f"{status.get('state')}: {status.get('error') or ''}".strip())
    result = run / ("results.json" if kind == "sweep" else "result.json")
    if result.exists():
        print(result.read_text())
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    a = build_parser().parse_args(argv)
    from core.runs import jobs

    if a.command == "run-job":
        return jobs.run_job(a.run_dir)
    if a.command == "finetune":
        cfg = _train_config(a)
        cfg["prune_point"] = a.prune
        return _launch("finetune", cfg, a.background)
    if a.command == "sweep":
        cfg = _train_config(a)
        points: list[Any] = []
        for item in a.points.split(","):
            item = item.strip()
            points.append(int(item) if item.isdigit() else item)
        cfg.update(
            points=points, fraction=a.fraction, convexity_split=a.convexity_split,
            benchmark=not a.no_benchmark,
        )  # fmt: skip
        return _launch("sweep", cfg, a.background)
    if a.command == "jobs":
        if a.action == "list":
            for r in jobs.list_runs():
                cfg = r.get("config", {})
                err = f"  {r['error']}" if r.get("error") else ""
                print(
                    f"{r['run_id']}  {r.get('state', '?'):9}  epoch {r.get('epoch') or '-'}  "
                    f"{cfg.get('task', '')}  p={cfg.get('prune_point')}  "
                    f"resumable={r.get('resumable')}{err}"
                )
            return 0
        if not a.run:
            print("a run id is needed", file=sys.stderr)
            return 2
        if a.action == "status":
            runs = {r["run_id"]: r for r in jobs.list_runs()}
            if a.run not in runs:
                print(f"no run {a.run!r}", file=sys.stderr)
                return 2
            status = dict(runs[a.run])
            status["metrics_tail"] = jobs.read_metrics(a.run)[-3:]
            _print_json(status)
            return 0
        if a.action == "cancel":
            _print_json(jobs.cancel(a.run, force=a.force, timeout=10.0))
            return 0
        if a.action == "resume":
            if a.foreground:
                logging.basicConfig(level=logging.INFO)
            _print_json(jobs.resume(a.run, background=not a.foreground))
            return 0
    if a.command == "benchmark":
        from core.training.benchmark import benchmark, benchmark_rows, save_benchmark

        res = benchmark(
            a.model, a.prune, n_labels=a.labels, train_batch=a.train_batch,
            infer_batch=a.infer_batch, repeats=a.repeats, warmup=a.warmup,
            n_train_clips=a.n_train_clips, device=a.device,
        )  # fmt: skip
        print(benchmark_rows(res))
        if a.out:
            for path in save_benchmark(res, a.out):
                print(f"wrote {path}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
