"""``python -m core grid``: the paper's model x task x point x seed study as one resumable command.

Example: ``python -m core grid --paper --models wav2vec2-base,hubert-base --tasks words,speakers
--points suggested,full --seeds 0,1,2 --executor ray --address auto``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from core.cli.options import executor_from_args, executor_options

__all__ = ["register"]

EPILOG = """examples:
  python -m core grid --paper --models wav2vec2-base,hubert-base,wavlm-base,ccc-wav2vec2-base \\
      --tasks words,speakers --points suggested,full --seeds 0,1,2 --executor ray --address auto
  python -m core grid --models ./tiny-model --dataset folder --root clips/ --epochs 2 --seeds 0,1
Cells already done are skipped; the table goes to <cache>/results/grid/<grid-id>.json."""


def _csv(text: str) -> list[str]:
    """``a,b`` -> ``["a", "b"]``."""
    return [t.strip() for t in text.split(",") if t.strip()]


def register(subparsers: Any) -> None:
    """Add the ``grid`` subcommand to ``python -m core``."""
    p = subparsers.add_parser(
        "grid",
        help="the paper grid (models x tasks x points x seeds), resumable, local or on Ray",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", required=True, help="comma list: preset keys, hub ids or folders")
    p.add_argument("--tasks", default="words,speakers", help="comma list (default: words,speakers)")
    p.add_argument("--points", default="suggested,full", help="comma list: suggested, full, ints")
    p.add_argument(
        "--plan",
        dest="plans",
        action="append",
        default=[],
        metavar="PLAN",
        help="also a point that keeps these layers: 'drop 3-4' or 'keep 1-2, 5-12' (repeatable)",
    )
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds (default: 0,1,2)")
    p.add_argument(
        "--paper",
        action="store_true",
        help="the paper's recipe (Speech Commands, "
        "20 epochs, batch 32, lr 3e-5, best on validation, scored on test)",
    )
    p.add_argument("--dataset", default="sample")
    p.add_argument("--root", default=None, help="dataset folder (if not the registry default)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--max-train-clips", type=int, default=None)
    p.add_argument("--max-steps-per-epoch", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--no-convexity", action="store_true", help="skip fine-tuned convexity per cell")
    p.add_argument("--no-benchmark", action="store_true", help="no cost benchmarks (no ratios)")
    p.add_argument("--fraction", type=float, default=0.95, help="suggestion rule fraction")
    executor_options(p, unit="cell")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_grid, threads=None)


def _spec(a: argparse.Namespace) -> Any:
    """The GridSpec the options describe."""
    from core.training.grid import PAPER_RECIPE, GridSpec, parse_points

    train: dict[str, Any] = {"dataset": a.dataset, "root": a.root}
    if a.paper:
        train.update(PAPER_RECIPE)
    given = {
        "epochs": a.epochs,
        "batch_size": a.batch_size,
        "lr": a.lr,
        "device": a.device,
        "max_train_clips": a.max_train_clips,
        "max_steps_per_epoch": a.max_steps_per_epoch,
    }
    train.update({k: v for k, v in given.items() if v is not None})
    if a.no_convexity:
        train["convexity"] = False
    try:
        seeds = tuple(int(s) for s in _csv(a.seeds))
    except ValueError as exc:
        from core.errors import CliError

        raise CliError(f"--seeds {a.seeds!r}: give a comma list of integers") from exc
    return GridSpec(
        models=tuple(_csv(a.models)),
        tasks=tuple(_csv(a.tasks)),
        points=parse_points(a.points) + parse_points(a.plans),
        seeds=seeds,
        train=train,
        fraction=a.fraction,
        benchmark=not a.no_benchmark,
    )


def cmd_grid(a: argparse.Namespace) -> int:
    """Run or resume the grid; print the table. LabErrors are one line and exit status 2."""
    from core.errors import LabError

    try:
        return _run(a)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(a: argparse.Namespace) -> int:
    """The body of ``grid``."""
    from core.runs.executors import get_executor
    from core.runs.grid_runs import run_grid

    spec = _spec(a)
    espec = executor_from_args(a)
    stopping = {"now": False}

    def on_term(signum: int, frame: Any) -> None:
        stopping["now"] = True

    old = signal.signal(signal.SIGTERM, on_term)
    executor = get_executor(espec)
    try:
        table = run_grid(spec, executor, espec, stop=lambda: stopping["now"])
    finally:
        executor.close()
        signal.signal(signal.SIGTERM, old)
    if a.json:
        print(json.dumps(table.to_dict(), indent=2))
        return 0
    for row in table.records():
        print("  ".join(f"{k}={v}" for k, v in row.items() if v not in (None, "")))
    print(f"{table.n_done}/{table.n_cells} cells done; table: {table.grid_id}.json")
    return 0 if table.n_done == table.n_cells else 1
