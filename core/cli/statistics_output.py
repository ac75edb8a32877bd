"""Curve statistics on the command line: the options, their checks before any work, tables and exports.

Shared by ``convexity`` and ``criteria``: ``--chance K`` (permutations), ``--resamples R`` (half-samples
of the units), ``--seeds S`` (other estimator seeds), ``--level``, ``--resample-seed`` and, on
``convexity``, ``--compare KEY`` (paired differences against another feature set of the same clips).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.cli.options import seed_int
from core.cli.output import text_table
from core.errors import CliError, LabError
from core.geometry.limits import MAX_PERMUTATIONS, MAX_RESAMPLES, MAX_SEEDS

if TYPE_CHECKING:
    from core.geometry.options import StatisticsOptions

__all__ = [
    "statistics_options",
    "check_statistics_args",
    "wants_statistics",
    "statistics_of",
    "statistics_lines",
    "paired_lines",
    "statistics_csv_columns",
]


def _count(low: int, high: int, what: str, allow_zero: bool = True):
    """argparse type: an integer in low..high (or 0 = off)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {what}, got {text!r}") from None
        if allow_zero and value == 0:
            return 0
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{what}: expected {low} to {high}"
                + (" (or 0: none)" if allow_zero else "")
                + f", got {value}"
            )
        return value

    return parse


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an interval level, got {text!r}") from None
    if not 0.5 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"interval level must lie in [0.5, 1), got {text!r}")
    return value


def statistics_options(p: argparse.ArgumentParser, *, compare: bool) -> None:
    """Add the curve-statistics options to a command."""
    g = p.add_argument_group("how far to trust the curve (docs/reading-plots.md)")
    g.add_argument(
        "--chance",
        type=_count(2, MAX_PERMUTATIONS, "permutations", allow_zero=False),
        default=None,
        metavar="K",
        help="chance level: its exact mean over label permutations (class sizes kept) and the sd of "
        "K permuted curves, sharing the curve's trees",
    )
    g.add_argument(
        "--resamples",
        type=_count(2, MAX_RESAMPLES, "resamples", allow_zero=False),
        default=None,
        metavar="R",
        help="population interval and prune-point stability from R half-samples (words: half of "
        "the speakers; speakers: half of each speaker's clips)",
    )
    g.add_argument(
        "--seeds",
        type=_count(1, MAX_SEEDS, "seeds", allow_zero=True),
        default=3,
        metavar="S",
        help="with --resamples: prune points over S other estimator seeds (sampled curves only; "
        "default: 3)",
    )
    g.add_argument(
        "--level", type=_level, default=0.9, help="population interval level (default: 0.9)"
    )
    g.add_argument(
        "--resample-seed", type=seed_int, default=0, help="seed of the half-samples (default: 0)"
    )
    if compare:
        g.add_argument(
            "--compare",
            metavar="KEY",
            help="paired differences against cached features KEY of the same clips (another model, "
            "a fine-tuned checkpoint); needs --resamples",
        )


def wants_statistics(args: argparse.Namespace) -> bool:
    """Whether any curve statistic was asked for."""
    return bool(args.chance or args.resamples)


def check_statistics_args(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, refused before anything is loaded."""
    if getattr(args, "compare", None) and not args.resamples:
        raise CliError(
            "--compare needs --resamples R (the paired interval comes from half-samples)"
        )


def check_resampling(fs: Any, names: Sequence[str], n_resamples: int) -> None:
    """A class too small to resample (or more resamples than distinct halves): one line, no work."""
    from core.geometry.resampling import check_half_sampling
    from core.results.kinds import resample_units

    if not n_resamples:
        return
    units = resample_units(fs, names)
    for name in names:
        try:
            check_half_sampling(list(fs.labels(name)), units[name], n_resamples, name)
        except LabError as exc:
            raise CliError(f"--resamples {n_resamples}: {exc}") from None


def statistics_of(args: argparse.Namespace) -> StatisticsOptions:
    """What these options ask the curve statistics for (the curve's own come as its options)."""
    from core.geometry.options import StatisticsOptions

    return StatisticsOptions(
        n_permutations=args.chance or 0,
        n_resamples=args.resamples or 0,
        n_seeds=args.seeds if args.resamples else 0,
        level=args.level,
        resample_seed=args.resample_seed,
    )


def statistics_lines(stats: Any) -> list[str]:
    """Chance levels, intervals and prune-point stability as printed lines."""
    lines: list[str] = []
    for s in stats.ordered():
        name = s.label_set
        header = ["layer", name]
        if s.chance is not None:
            header += ["chance ± sd", "normalised"]
        if s.interval is not None:
            header += [f"{s.interval.level:.0%} population interval"]
        rows = []
        norm = s.normalised()
        for i, layer in enumerate(s.layers):
            row: list[Any] = [layer, f"{s.scores[i]:.4f}"]
            if s.chance is not None:
                row += [f"{s.chance.mean[i]:.4f} ± {s.chance.std[i]:.4f}", f"{norm[i]:.4f}"]
            if s.interval is not None:
                row += [f"{s.interval.low[i]:.4f} .. {s.interval.high[i]:.4f}"]
            rows.append(row)
        notes = [f"{name}: {s.n_classes} classes, {s.n_points} clips"]
        if s.chance is not None:
            notes.append(
                "chance: exact mean over label permutations within the kept clips, ± sd of "
                f"{s.chance.n_permutations} permuted estimates (seed {s.chance.seed}; an upper bound)"
            )
        if s.interval is not None:
            notes.append(
                f"population interval: {s.interval.scheme}, {s.interval.n_resamples} resamples "
                f"(seed {s.interval.seed}), centred on the full-data score"
            )
            if s.interval.guard_note():
                notes.append(s.interval.guard_note())
        lines.append("; ".join(notes))
        lines.append(text_table(rows, header))
        if s.stability is not None and s.interval is not None:
            for rule in (s.stability.threshold, s.stability.local_peak):
                margin = f"margin {rule.margin:+.4f}"
                if rule.margin_before is not None:
                    margin += f", layer {rule.point - 1} misses the bar by {rule.margin_before:.4f}"
                flag = (
                    "stable"
                    if rule.stable
                    else "UNSTABLE: the point moves, do not read it as a fact"
                )
                lines.append(
                    f"  prune point ({rule.rule}) p = {rule.point} ({margin}); {rule.summary()}; {flag}"
                )
    return lines


def paired_lines(diffs: Sequence[Any]) -> list[str]:
    """Paired differences as tables with their verdicts."""
    lines = []
    for d in diffs:
        rows = [
            [layer, f"{v:+.4f}", f"{lo:+.4f} .. {hi:+.4f}", "*" if ex else ""]
            for layer, v, lo, hi, ex in zip(
                d.layers, d.difference, d.low, d.high, d.excludes_zero, strict=True
            )
        ]
        lines.append(
            f"paired difference {d.name_a} - {d.name_b} ({d.n_resamples} shared half-samples):"
        )
        lines.append(
            text_table(rows, ["layer", "A - B", f"{d.level:.0%} paired interval", "excludes 0"])
        )
        lines.append(f"  verdict: {d.verdict}")
    return lines


def statistics_csv_columns(stats: Any | None, name: str, layer_index: int) -> dict[str, Any]:
    """Extra CSV cells of one layer row of label set ``name`` (empty without statistics): the
    dashboard's export columns (``core.results.export.statistics_columns``)."""
    from core.results.export import statistics_columns

    return statistics_columns(stats, name, layer_index)
