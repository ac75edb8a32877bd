"""``series``: word and speaker convexity of one clip selection under an ordered list of checkpoints
(models, folders, a run's kept epochs), and an aligned UMAP of one hidden state across them."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

from core.cli.data_commands import selection_from_args, speaker_regex_option
from core.cli.options import clip_options, common_options, out_path, precision_options
from core.cli.output import progress_bar, text_table
from core.errors import CliError
from core.geometry.sampling import DEFAULT_TARGET_SE

__all__ = ["register"]


def _checkpoints(args: argparse.Namespace) -> list[Any]:
    """The run's checkpoints (``--run``) then the named ones, checked before anything is loaded."""
    from core.results.series import parse_checkpoint, run_checkpoints

    refs = []
    if args.run:
        from core.runs import run_dir

        refs += run_checkpoints(run_dir(args.run))
    refs += [parse_checkpoint(text) for text in args.checkpoints]
    return refs


def _csv(series: Any) -> str:
    """One row per label set, checkpoint and hidden state."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["label_set", "checkpoint", "order", "hidden_state", "score", "sem"])
    for name, curves in series.curves.items():
        for i, (cp, curve) in enumerate(zip(series.checkpoints, curves, strict=True)):
            sems = curve.sems or (0.0,) * len(curve.scores)
            for layer, score, sem in zip(curve.layers, curve.scores, sems, strict=True):
                w.writerow([name, cp.name, i, layer, f"{score:.6f}", f"{sem:.6f}"])
    return buf.getvalue()


def cmd_series(args: argparse.Namespace) -> int:
    """Measure every checkpoint (features and curves from the caches when there), print the tables."""
    from core.cli.geometry_commands import precision_from_args
    from core.io.atomic import atomic_write_bytes
    from core.results.export import csv_with_provenance, json_with_provenance
    from core.results.series import aligned_umap, load_series, make_series

    out = out_path(args.out)
    precision = precision_from_args(args)
    if args.aligned_layer is not None and args.aligned_layer < 0:
        raise CliError(
            f"--aligned-layer must be a hidden-state index >= 0, got {args.aligned_layer}"
        )
    refs = _checkpoints(args)
    selection = selection_from_args(args)
    update, close = progress_bar("checkpoints", not args.no_progress, unit="checkpoint")
    try:
        key, series = make_series(
            refs,
            selection,
            precision,
            batch_size=args.batch_size,
            device=args.device,
            whisper_input=args.whisper_input,
            trust_remote_code=args.trust_remote_code,
            progress=update,
            refresh=args.refresh,
        )
    finally:
        close()
    print(f"series {key[:12]}: {len(series.checkpoints)} checkpoints, {precision.describe()}")
    for name in series.label_sets:
        matrix = series.matrix(name)
        rows = [
            [cp.name] + ["" if v != v else f"{v:.3f}" for v in matrix[i]]
            for i, cp in enumerate(series.checkpoints)
        ]
        print(f"\n{name} convexity (rows: checkpoints in order; columns: hidden states)")
        print(text_table(rows, ["checkpoint", *map(str, series.layers)]))
    if args.aligned_layer is not None:
        layouts = aligned_umap(key, args.aligned_layer, refresh=args.refresh)
        print(f"\naligned UMAP of hidden state {args.aligned_layer}: {layouts.shape} (stored)")
    if out is not None:
        _, entry = load_series(key) or (None, None)
        provenance = [] if entry is None else [entry.provenance]
        if out.suffix.lower() == ".json":
            doc = json_with_provenance({"key": key, **series.to_dict()}, provenance)
            atomic_write_bytes(out, json.dumps(doc, indent=2).encode())
        else:
            atomic_write_bytes(out, csv_with_provenance(_csv(series), provenance).encode())
        print(f"wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``series``."""
    p = sub.add_parser(
        "series",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="convexity of the same clips under an ordered list of checkpoints",
        epilog="examples:\n"
        "  python -m core series --run RUN-ID --dataset sample --split test\n"
        "  python -m core series base=whisper-base-offline tiny=whisper-tiny.en-offline"
        " --max-clips 300 --out series.csv\n"
        "  python -m core series --run RUN-ID --aligned-layer 2",
    )
    p.add_argument(
        "checkpoints",
        nargs="*",
        help="models in order: preset key, hub id or folder, optionally NAME=MODEL",
    )
    p.add_argument(
        "--run",
        help="start with a fine-tuning run's checkpoints: its pretrained model, then every epoch it "
        "kept (--keep-epochs), else its best and last checkpoints",
    )
    p.add_argument("--dataset", default="sample", help="dataset key (default: sample)")
    clip_options(p)
    speaker_regex_option(p)
    precision_options(p, default_se=DEFAULT_TARGET_SE)
    p.add_argument(
        "--aligned-layer",
        type=int,
        default=None,
        help="also fit an aligned UMAP of this hidden state across the checkpoints (stored)",
    )
    p.add_argument("--refresh", action="store_true", help="recompute stored curves and layouts")
    p.add_argument("--out", help="write the series to FILE.json or FILE.csv, with provenance")
    p.set_defaults(func=cmd_series)
