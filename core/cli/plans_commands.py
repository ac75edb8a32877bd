"""``plans``: redundancy blocks of a model's layer-similarity map and the plans they imply, beside the top-p
plans of equal size, with parameters and retraining-free probe scores; and the plan options of ``prune``."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
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
    from core.models.plans import parse_plan
    from core.training.plans_table import PlansRequest
    from core.training.probe_score import ProbeOptions

    out = out_path(args.out)
    options = ProbeOptions(labels=args.labels, seed=args.probe_seed, resamples=args.bootstrap)
    config = _mimic_config(args) if args.mimic else None
    source = _source(args)
    extra = tuple(parse_plan(text, source.resolved.n_layers).kept for text in args.plan or ())
    request = PlansRequest(
        similarity=args.similarity,
        threshold=args.threshold,
        options=options,
        stability_resamples=args.stability,
        extra=extra,
    )
    loaded = _load(args, source)
    stored = _stored_table(args, loaded, request)
    print(f"similarity: {args.similarity}, blocks where every pair >= {request.cut:g}:")
    _print_blocks(stored.table)
    rows = [_row(score, stored.table) for score in stored.table.plans]
    _print_plans(rows, stored, options)
    if out is not None:
        _write_plans(out, stored.table, options, rows)
    if config is not None:
        _mimic_blocks(loaded, stored.table.redundancy, options, config, not args.no_progress)
    return 0


@dataclass(frozen=True)
class _Source:
    """The clips and the model a command scores, both checked before the model loads."""

    selection: Any
    resolved: Any  # ResolvedModel


@dataclass(frozen=True)
class _Loaded:
    """The full model loaded, its features of the clips and the clips' entry the probes score."""

    full: Any
    features: Any
    base: Any


def _source(args: argparse.Namespace) -> _Source:
    """The selection and the resolved model: an unknown dataset or a missing folder is one line
    before the model loads."""
    from core.cli.data_commands import selection_from_args
    from core.models.loading import resolve
    from core.models.request import ModelRequest

    selection = selection_from_args(args)
    selection.table()
    model = ModelRequest(args.model, args.whisper_input, args.trust_remote_code)
    return _Source(selection, resolve(model))


def _load(args: argparse.Namespace, source: _Source) -> _Loaded:
    """Load the model, extract (and describe) the clips' features, and the probes' clip entry."""
    from core.cli.data_commands import describe_features
    from core.data.features import extract_features
    from core.training.probe_score import selection_entry

    full = source.resolved.load(device=args.device)
    features = extract_features(full, source.selection, batch_size=args.batch_size)
    print("\n".join(describe_features(features)))
    return _Loaded(full, features, selection_entry(full, source.selection))


def _stored_table(args: argparse.Namespace, loaded: _Loaded, request: Any) -> Any:
    """The plans table of ``request``, from the results store or computed (with a progress bar)."""
    from core.training.plans_table import stored_plans_table

    update, close = progress_bar("plans", not args.no_progress)
    try:
        return stored_plans_table(
            loaded.full,
            loaded.features,
            loaded.base,
            request,
            progress=update,
            refresh=args.refresh,
        )
    finally:
        close()


def _print_blocks(table: Any) -> None:
    """One line per redundancy block (with its stability), or 'none'; then how stability was found."""
    for block in table.redundancy.blocks:
        print(_block_line(block, table.stability))
    if not table.redundancy.blocks:
        print("  none")
    elif table.stability is not None:
        print(
            f"  stability: the rule rerun on {table.stability.scheme} (seed {table.stability.seed})"
        )


def _print_plans(rows: list[dict[str, Any]], stored: Any, options: Any) -> None:
    """The plans as a text table, then the clips and intervals they were scored on and where the
    table came from."""
    table = stored.table
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
    first = table.plans[0]
    print(
        f"{options.labels} labels, {first.n_train} train / {first.n_test} test clips; "
        f"intervals: {options.confidence:.0%} {table.interval}"
    )
    print(
        f"results store: {stored.key[:12]} "
        + ("(read back)" if stored.from_store else f"(computed in {table.seconds:.1f} s)")
    )


def _write_plans(out: Path, table: Any, options: Any, rows: list[dict[str, Any]]) -> None:
    """Save the plans to ``out``: JSON (blocks, stability, options and every plan) or CSV (the rows)."""
    import json

    from core.io.atomic import atomic_write_bytes

    if out.suffix.lower() == ".json":
        doc = {
            "redundancy": table.redundancy.to_dict(),
            "stability": None if table.stability is None else table.stability.to_dict(),
            "options": options.to_dict(),
            "interval": table.interval,
            "plans": [s.to_dict() for s in table.plans],
        }
        data = json.dumps(doc, indent=2).encode()
    else:
        header = list(rows[0])
        lines = [",".join(header)] + [",".join(_csv(r[h]) for h in header) for r in rows]
        data = ("\n".join(lines) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    print(f"wrote {out}")


def _mimic_blocks(
    loaded: _Loaded, redundancy: Any, options: Any, config: Any, progress: bool
) -> None:
    """``plans --mimic``: replace the detected blocks by trained mimicking layers and score that."""
    from core.models.mimic import MimicPlan

    if not redundancy.blocks:
        print("mimic: no block detected, nothing to replace (lower --threshold)")
        return
    blocks = [(b.first, b.last) for b in sorted(redundancy.blocks, key=lambda b: b.first)]
    mimic = MimicPlan.of(blocks, loaded.full.n_layers)
    _mimic_report(loaded, mimic, options, config, progress)


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


def _mimic_report(loaded: _Loaded, mimic: Any, options: Any, config: Any, progress: bool) -> Any:
    """Train the mimicking layers of ``mimic``, print the block-output error and the retraining-free
    scores of the full model, the block plan alone and the plan with mimicking layers; the trained model."""
    from core.models.plans import PruningPlan
    from core.models.pruning import params_by_plan
    from core.training.mimic_training import mimic_clips, score_mimic, train_mimic
    from core.training.probe_score import score_plan

    full, features, base = loaded.full, loaded.features, loaded.base
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
    from core.models.mimic import MimicPlan
    from core.training.probe_score import ProbeOptions

    options = ProbeOptions(labels=args.labels, seed=args.probe_seed, resamples=args.bootstrap)
    config = _mimic_config(args)
    source = _source(args)
    mimic = MimicPlan.of(
        args.block, source.resolved.n_layers
    )  # a bad block is one line before loading
    loaded = _load(args, source)
    trained = _mimic_report(loaded, mimic, options, config, not args.no_progress)
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


def _probe_labels_option(parser: argparse.ArgumentParser) -> None:
    """``--labels``: the label set the probes predict."""
    parser.add_argument(
        "--labels", choices=("word", "speaker"), default="word", help="labels the probes predict"
    )


def _probe_seed_options(parser: argparse.ArgumentParser, *, bootstrap: str, seed: str) -> None:
    """``--bootstrap`` and ``--probe-seed``: the probe scores' interval and seed."""
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help=bootstrap)
    parser.add_argument("--probe-seed", type=seed_int, default=0, help=seed)


def _block_options(parser: argparse.ArgumentParser) -> None:
    """``--similarity`` and ``--threshold``: where redundancy blocks are found."""
    parser.add_argument(
        "--similarity",
        choices=("linear_cka", "mutual_knn"),
        default="linear_cka",
        help="layer-similarity map the blocks are found in (default: linear_cka)",
    )
    parser.add_argument(
        "--threshold",
        type=_threshold,
        help="a block's layers are pairwise at least this similar "
        "(default: 0.9 for linear_cka, 0.5 for mutual_knn)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``plans`` and ``mimic``."""
    _add_plans(sub)
    _add_mimic(sub)


def _add_plans(sub: argparse._SubParsersAction) -> None:
    """The ``plans`` command: redundancy blocks and the plans they imply, scored without retraining."""
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
    _probe_labels_option(p)
    _block_options(p)
    _probe_seed_options(
        p,
        bootstrap="bootstrap resamples of the test clips",
        seed="seed of the probes and the bootstrap",
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


def _add_mimic(sub: argparse._SubParsersAction) -> None:
    """The ``mimic`` command: blocks replaced by trained mimicking layers, then scored."""
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
    _probe_labels_option(m)
    _probe_seed_options(m, bootstrap="bootstrap resamples", seed="seed of training and probes")
    m.add_argument("--out", help="save the trained model to this folder")
    m.set_defaults(func=cmd_mimic)
