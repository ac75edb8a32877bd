"""``plans``: redundancy blocks of a model's layer-similarity map and the plans they imply, beside the top-p
plans of equal size, with parameters and retraining-free probe scores; and the plan options of ``prune``."""

from __future__ import annotations

import argparse
import math
from typing import Any

from core.cli.options import common_options, out_path, positive_int, seed_int, selection_options
from core.cli.output import format_params, progress_bar, text_table

__all__ = ["cmd_mimic", "cmd_plans", "register"]


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
        "kind": table.kind(score),
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
    from core.models.loading import resolve
    from core.models.plans import parse_plan
    from core.models.request import ModelRequest
    from core.training.plans_table import PlansRequest, stored_plans_table
    from core.training.probe_score import ProbeOptions, selection_entry

    out = out_path(args.out)
    options = ProbeOptions(labels=args.labels, seed=args.probe_seed, resamples=args.bootstrap)
    config = _mimic_config(args) if args.mimic else None
    selection = selection_from_args(args)
    selection.table()  # an unknown dataset or a missing folder is one line before the model loads
    model = ModelRequest(args.model, args.whisper_input, args.trust_remote_code)
    resolved = resolve(model)
    extra = tuple(parse_plan(text, resolved.n_layers).kept for text in args.plan or ())
    request = PlansRequest(
        similarity=args.similarity,
        threshold=args.threshold,
        options=options,
        stability_resamples=args.stability,
        extra=extra,
    )
    full = resolved.load(device=args.device)
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
    if config is not None:
        if not redundancy.blocks:
            print("mimic: no block detected, nothing to replace (lower --threshold)")
            return 0
        from core.models.mimic import MimicPlan

        blocks = [(b.first, b.last) for b in sorted(redundancy.blocks, key=lambda b: b.first)]
        mimic = MimicPlan.of(blocks, full.n_layers)
        _mimic_report(full, features, base, mimic, options, config, not args.no_progress)
    return 0


def _block(text: str) -> tuple[int, int]:
    """argparse type: a block 'first-last' (at least two layers)."""
    parts = text.replace(" ", "").split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) >= int(parts[1]):
        raise argparse.ArgumentTypeError(f"a block reads like '2-4' (first-last), got {text!r}")
    return int(parts[0]), int(parts[1])


def _score_text(score: Any) -> str:
    """'logistic 0.912 [0.88, 0.94], knn 0.85 [...]'."""
    return ", ".join(
        f"{s.probe} {s.accuracy:.3f} [{s.low:.3f}, {s.high:.3f}]" for s in score.scores
    )


def _mimic_config(args: argparse.Namespace) -> Any:
    """The mimic training options of ``mimic`` or ``plans --mimic``."""
    from core.training.mimic_training import MimicConfig

    return MimicConfig(
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.mimic_batch,
        max_clips=args.max_train_clips,
        seed=args.probe_seed,
    )


def _mimic_report(
    full: Any, features: Any, base: Any, mimic: Any, options: Any, config: Any, progress: bool
) -> Any:
    """Train the mimicking layers of ``mimic``, print the block-output error and the retraining-free
    scores of the full model, the block plan alone and the plan with mimicking layers; the trained model."""
    from core.models.plans import PruningPlan
    from core.models.pruning import params_by_plan
    from core.training.mimic_training import mimic_clips, score_mimic, train_mimic
    from core.training.probe_score import score_plan

    clips = mimic_clips(features, base, options.task, config.max_clips, config.seed)
    print(
        f"{mimic.describe()}: training on {len(clips.train)} unlabelled train clips, "
        f"measured on {len(clips.test)} test clips"
    )
    update, close = progress_bar("mimic", progress)
    try:
        trained = train_mimic(full, mimic, clips.train, clips.test, config, progress=update)
    finally:
        close()
    result = trained.result
    for block, before, after in zip(mimic.blocks, result.mse_before, result.mse_after, strict=True):
        print(
            f"  block {block.first}-{block.last}: output MSE {before:.4g} (layer {block.first} alone) "
            f"-> {after:.4g} (mimicking layer)"
        )
    total = params_by_plan(full.model, mimic.plan)["total"]
    print(
        f"mimicking layers: {format_params(result.mimic_parameters)} parameters of "
        f"{format_params(total)} in the model; trained in {result.seconds:.1f} s "
        f"({config.epochs} epochs, lr {config.lr:g}, batch {config.batch_size})"
    )
    full_score = score_plan(
        full, features, base, PruningPlan.top(full.n_layers, full.n_layers), options
    )
    alone = score_plan(full, features, base, mimic.plan, options)
    mimicked = score_mimic(full, features, base, trained, options)
    print(f"full model:        {_score_text(full_score)}")
    print(f"{mimic.plan.describe()} alone: {_score_text(alone)}  ({alone.seconds:.1f} s)")
    print(f"with mimic layers: {_score_text(mimicked)}  ({mimicked.seconds:.1f} s)")
    return trained


def cmd_mimic(args: argparse.Namespace) -> int:
    """Train mimicking layers for the given blocks, compare with the block plan alone, optionally save."""
    from core.cli.data_commands import describe_features, selection_from_args
    from core.data.features import extract_features
    from core.models.loading import resolve
    from core.models.mimic import MimicPlan
    from core.models.request import ModelRequest
    from core.training.probe_score import ProbeOptions, selection_entry

    options = ProbeOptions(labels=args.labels, seed=args.probe_seed, resamples=args.bootstrap)
    config = _mimic_config(args)
    selection = selection_from_args(args)
    selection.table()
    model = ModelRequest(args.model, args.whisper_input, args.trust_remote_code)
    resolved = resolve(model)
    mimic = MimicPlan.of(args.block, resolved.n_layers)  # a bad block is one line before loading
    full = resolved.load(device=args.device)
    features = extract_features(full, selection, batch_size=args.batch_size)
    print("\n".join(describe_features(features)))
    base = selection_entry(full, selection)
    trained = _mimic_report(full, features, base, mimic, options, config, not args.no_progress)
    if args.out:
        out = trained.encoder.save_pretrained(args.out)
        print(
            f"saved {out} (a {mimic.plan.size}-layer model of the same family; fine-tune it as any model)"
        )
    return 0


def _mimic_options(parser: argparse.ArgumentParser, epochs: str) -> None:
    """The training options of mimicking layers."""
    parser.add_argument("--epochs", type=positive_int, default=3, help=epochs)
    parser.add_argument(
        "--lr", type=_threshold, default=1e-4, help="Adam learning rate (default 1e-4)"
    )
    parser.add_argument(
        "--mimic-batch", type=positive_int, default=16, help="clips per training step"
    )
    parser.add_argument(
        "--max-train-clips", type=_non_negative, default=0, help="train clips used (0: all)"
    )


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
        "  python -m core plans wavlm-base sample --labels speaker --threshold 0.95 --out plans.csv\n"
        "  python -m core plans whisper-base-offline sample --plan 'drop 2' --mimic --epochs 2",
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
    p.add_argument(
        "--plan",
        action="append",
        metavar="PLAN",
        help="also score this plan and the top-p plan of its size, e.g. 'drop 2' or 'keep 1-2, 5-12' "
        "(repeat for several)",
    )
    p.add_argument(
        "--mimic",
        action="store_true",
        help="second step: replace the detected blocks by trained mimicking layers and score that",
    )
    _mimic_options(p, "mimic training passes over the train clips (with --mimic)")
    p.add_argument("--out", help="write the plans to .csv or .json")
    p.set_defaults(func=cmd_plans)

    m = sub.add_parser(
        "mimic",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="replace blocks of layers by trained mimicking layers and score the result",
        epilog="examples:\n  python -m core mimic whisper-tiny.en-offline sample --block 2-4\n"
        "  python -m core mimic wavlm-base sample --block 4-8 --epochs 5 --out mimic-model",
    )
    selection_options(m, required=True)
    m.add_argument(
        "--block",
        type=_block,
        action="append",
        required=True,
        help="a block first-last replaced by one layer (repeat for several)",
    )
    _mimic_options(m, "passes over the train clips")
    m.add_argument(
        "--labels", choices=("word", "speaker"), default="word", help="labels the probes predict"
    )
    m.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples")
    m.add_argument("--probe-seed", type=seed_int, default=0, help="seed of training and probes")
    m.add_argument("--out", help="save the trained model to this folder")
    m.set_defaults(func=cmd_mimic)
