"""``plans``: redundancy blocks of a model's layer-similarity map and the plans they imply, beside the top-p
plans of equal size, with parameters and retraining-free probe scores; and the plan options of ``prune``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from core.cli.options import common_options, out_path, positive_int, seed_int, selection_options
from core.cli.output import format_params, progress_bar, text_table

__all__ = ["cmd_plans", "register"]

SIMILARITY = ("linear_cka", "mutual_knn")
DEFAULT_THRESHOLD = {"linear_cka": 0.9, "mutual_knn": 0.5}


def _threshold(text: str) -> float:
    """argparse type: a finite number."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _plans(redundancy: Any, n_layers: int) -> list[Any]:
    """The full model, each block's plan, all blocks together (if several), and the top plan of each size."""
    from core.models.plans import PruningPlan

    plans = [PruningPlan.top(n_layers, n_layers)]
    drops = [block.dropped for block in redundancy.blocks]
    if len(drops) > 1:
        drops.append(redundancy.dropped)
    for dropped in drops:
        plan = PruningPlan.drop(dropped, n_layers)
        plans += [plan, PruningPlan.top(plan.size, n_layers)]
    unique = list(dict.fromkeys(plans))
    return sorted(unique, key=lambda q: (-q.size, not q.is_top, q.kept))


def _row(score: Any, full: Any) -> dict[str, Any]:
    """One output row: the plan, its size and parameters, each probe's score, interval and change."""
    row: dict[str, Any] = {
        "plan": score.plan.describe(),
        "kind": "top" if score.plan.is_top else "block drop",
        "layers": score.plan.size,
        "kept": " ".join(str(i) for i in score.plan.kept),
        "parameters": score.parameters,
    }
    for s in score.scores:
        base = full.score(s.probe).accuracy
        row |= {
            f"{s.probe}_accuracy": round(s.accuracy, 4),
            f"{s.probe}_low": round(s.low, 4),
            f"{s.probe}_high": round(s.high, 4),
            f"{s.probe}_vs_full": round(s.accuracy - base, 4),
        }
    return row | {"features": score.features, "seconds": round(score.seconds, 2)}


def cmd_plans(args: argparse.Namespace) -> int:
    """Find the redundancy blocks, build the plans, score each without retraining, print and save."""
    import json

    from core.cli.data_commands import describe_features, selection_from_args
    from core.data.features import extract_features
    from core.geometry.criteria import CRITERIA
    from core.geometry.redundancy import redundancy_blocks
    from core.io.atomic import atomic_write_bytes
    from core.models.loading import resolve
    from core.models.request import ModelRequest
    from core.training.probe_score import INTERVAL, ProbeOptions, score_plan, selection_entry

    out = out_path(args.out)
    options = ProbeOptions(labels=args.labels, seed=args.probe_seed, resamples=args.bootstrap)
    threshold = DEFAULT_THRESHOLD[args.similarity] if args.threshold is None else args.threshold
    selection = selection_from_args(args)
    selection.table()  # an unknown dataset or a missing folder is one line before the model loads
    request = ModelRequest(args.model, args.whisper_input, args.trust_remote_code)
    full = resolve(request).load(device=args.device)
    features = extract_features(full, selection, batch_size=args.batch_size)
    print("\n".join(describe_features(features)))

    similarity = CRITERIA[args.similarity].compute(features.features)
    redundancy = redundancy_blocks(similarity.values, threshold, criterion=args.similarity)
    print(f"similarity: {args.similarity}, blocks where every pair >= {threshold:g}:")
    for block in redundancy.blocks:
        print(
            f"  layers {block.first}-{block.last} (min {block.min_similarity:.3f}): "
            f"keep {block.kept}, drop {', '.join(map(str, block.dropped))}"
        )
    if not redundancy.blocks:
        print("  none")

    base = selection_entry(full, selection)
    scores = []
    for plan in _plans(redundancy, features.n_layers):
        update, close = progress_bar(plan.describe(), not args.no_progress)
        try:
            scores.append(score_plan(full, features, base, plan, options, progress=update))
        finally:
            close()
    rows = [_row(score, scores[0]) for score in scores]
    table = [
        [
            r["plan"],
            r["kind"],
            r["layers"],
            format_params(r["parameters"]),
            *(
                f"{r[f'{s.probe}_accuracy']:.3f} [{r[f'{s.probe}_low']:.3f}, {r[f'{s.probe}_high']:.3f}]"
                for s in scores[0].scores
            ),
            f"{r['seconds']:.1f}",
        ]
        for r in rows
    ]
    probes = [s.probe for s in scores[0].scores]
    print(text_table(table, ["plan", "kind", "layers", "params", *probes, "s"]))
    print(
        f"{options.labels} labels, {scores[0].n_train} train / {scores[0].n_test} test clips; "
        f"intervals: {options.confidence:.0%} {INTERVAL}"
    )
    if out is not None:
        if out.suffix.lower() == ".json":
            doc = {
                "redundancy": redundancy.to_dict(),
                "options": options.to_dict(),
                "interval": INTERVAL,
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
        choices=SIMILARITY,
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
    p.add_argument("--out", help="write the plans to .csv or .json")
    p.set_defaults(func=cmd_plans)
