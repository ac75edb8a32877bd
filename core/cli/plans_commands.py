"""``plans``: redundancy blocks of a model's layer-similarity map and the plans they imply, beside the top-p
plans of equal size, with parameters and retraining-free probe scores; and the plan options of ``prune``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from core.cli.options import common_options, out_path, positive_int, seed_int, selection_options
from core.cli.output import format_params, progress_bar, text_table

__all__ = ["cmd_plans", "register"]


def _threshold(text: str) -> float:
    """argparse type: a finite number."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return value


def _row(score: Any, table: Any) -> dict[str, Any]:
    """One output row: the plan, its size and parameters, each probe's score, interval and change."""
    row: dict[str, Any] = {
        "plan": score.plan.describe(),
        "kind": "top" if score.plan.is_top else "block drop",
        "layers": score.plan.size,
        "kept": " ".join(str(i) for i in score.plan.kept),
        "parameters": score.parameters,
    }
    for s in score.scores:
        row |= {
            f"{s.probe}_accuracy": round(s.accuracy, 4),
            f"{s.probe}_low": round(s.low, 4),
            f"{s.probe}_high": round(s.high, 4),
            f"{s.probe}_vs_full": round(table.change(score, s.probe), 4),
        }
    return row | {"features": score.features, "seconds": round(score.seconds, 2)}


def _block_line(block: Any, stability: Any) -> str:
    """'layers 2-4 (min 0.93): keep 2, drop 3, 4; reappears in 85% of 20 half-samples (start 95%, end 90%)'."""
    line = (
        f"  layers {block.first}-{block.last} (min {block.min_similarity:.3f}): "
        f"keep {block.kept}, drop {', '.join(map(str, block.dropped))}"
    )
    row = None if stability is None else stability.of(block)
    if row is not None:
        line += (
            f"; reappears in {row.exact:.0%} of {stability.n_resamples} half-samples "
            f"(start {row.start:.0%}, end {row.end:.0%})"
        )
    return line


def cmd_plans(args: argparse.Namespace) -> int:
    """Find the redundancy blocks, build the plans, score each without retraining, print and save."""
    import json

    from core.cli.data_commands import describe_features, selection_from_args
    from core.data.features import extract_features
    from core.io.atomic import atomic_write_bytes
    from core.models.request import ModelRequest
    from core.training.plans_table import PlansRequest, stored_plans_table
    from core.training.probe_score import ProbeOptions, selection_entry

    out = out_path(args.out)
    options = ProbeOptions(labels=args.labels, seed=args.probe_seed, resamples=args.bootstrap)
    request = PlansRequest(
        similarity=args.similarity,
        threshold=args.threshold,
        options=options,
        stability_resamples=args.stability,
    )
    selection = selection_from_args(args)
    selection.table()  # an unknown dataset or a missing folder is one line before the model loads
    model = ModelRequest(args.model, args.whisper_input, args.trust_remote_code)
    full = model.resolve().load(device=args.device)
    features = extract_features(full, selection, batch_size=args.batch_size)
    print("\n".join(describe_features(features)))

    base = selection_entry(full, selection)
    update, close = progress_bar("plans", not args.no_progress)
    try:
        stored = stored_plans_table(
            full, features, base, request, progress=update, refresh=args.refresh
        )
    finally:
        close()
    table = stored.table
    redundancy = table.redundancy
    print(f"similarity: {args.similarity}, blocks where every pair >= {request.cut:g}:")
    for block in redundancy.blocks:
        print(_block_line(block, table.stability))
    if not redundancy.blocks:
        print("  none")
    elif table.stability is not None:
        print(
            f"  stability: the rule rerun on {table.stability.scheme} (seed {table.stability.seed})"
        )
    scores = list(table.plans)
    rows = [_row(score, table) for score in scores]
    rows_text = [
        [
            r["plan"],
            r["kind"],
            r["layers"],
            format_params(r["parameters"]),
            *(
                f"{r[f'{p}_accuracy']:.3f} [{r[f'{p}_low']:.3f}, {r[f'{p}_high']:.3f}]"
                for p in table.probes
            ),
            f"{r['seconds']:.1f}",
        ]
        for r in rows
    ]
    print(text_table(rows_text, ["plan", "kind", "layers", "params", *table.probes, "s"]))
    print(
        f"{options.labels} labels, {scores[0].n_train} train / {scores[0].n_test} test clips; "
        f"intervals: {options.confidence:.0%} {table.interval}"
    )
    print(
        f"results store: {stored.key[:12]} "
        + ("(read back)" if stored.from_store else f"(computed in {table.seconds:.1f} s)")
    )
    if out is not None:
        if out.suffix.lower() == ".json":
            doc = {
                "redundancy": redundancy.to_dict(),
                "stability": None if table.stability is None else table.stability.to_dict(),
                "options": options.to_dict(),
                "interval": table.interval,
                "plans": [s.to_dict() for s in scores],
            }
            data = json.dumps(doc, indent=2).encode()
        else:
            header = list(rows[0])
            lines = [",".join(header)] + [",".join(_csv(r[h]) for h in header) for r in rows]
            data = ("\n".join(lines) + "\n").encode()
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, data)
        print(f"wrote {out}")
    return 0


def _csv(value: Any) -> str:
    """One CSV cell (quoted when it holds a comma or a quote)."""
    text = str(value)
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``plans``."""
    p = sub.add_parser(
        "plans",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="redundancy blocks and pruning plans scored without retraining",
        epilog="examples:\n  python -m core plans whisper-tiny.en-offline sample\n"
        "  python -m core plans wavlm-base sample --labels speaker --threshold 0.95 --out plans.csv",
    )
    selection_options(p, required=True)
    p.add_argument(
        "--labels", choices=("word", "speaker"), default="word", help="labels the probes predict"
    )
    p.add_argument(
        "--similarity",
        choices=("linear_cka", "mutual_knn"),
        default="linear_cka",
        help="layer-similarity map the blocks are found in (default: linear_cka)",
    )
    p.add_argument(
        "--threshold",
        type=_threshold,
        help="a block's layers are pairwise at least this similar "
        "(default: 0.9 for linear_cka, 0.5 for mutual_knn)",
    )
    p.add_argument(
        "--bootstrap", type=positive_int, default=1000, help="bootstrap resamples of the test clips"
    )
    p.add_argument(
        "--probe-seed", type=seed_int, default=0, help="seed of the probes and the bootstrap"
    )
    p.add_argument(
        "--stability",
        type=_non_negative,
        default=20,
        help="half-samples of the clips the blocks are found again in (default 20; 0: none)",
    )
    p.add_argument(
        "--refresh", action="store_true", help="recompute the table even when it is stored"
    )
    p.add_argument("--out", help="write the plans to .csv or .json")
    p.set_defaults(func=cmd_plans)
