"""Convexity at a chosen size on the command line: ``--at-size CLASSESxCLIPS``, ``--subsets B`` and
``--equal-size KEY`` (compare against another feature set, of any data set, at a size both reach)."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.options import positive_int
from core.cli.output import progress_bar, text_table
from core.errors import CliError, LabError

__all__ = ["size_options", "check_size_args", "check_size_reached", "size_comparison"]


def _size(text: str) -> Any:
    from core.geometry.rarefaction import RarefySize

    try:
        return RarefySize.parse(text)
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def size_options(p: argparse.ArgumentParser) -> None:
    """Add the size-matched comparison options to ``convexity``."""
    g = p.add_argument_group("convexity at a chosen size (docs/reading-plots.md)")
    g.add_argument(
        "--at-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="the curve at CLASSES classes x CLIPS clips per class (8x20, 8 or x20): the mean over "
        "seeded subsets of that size, with its 90%% interval",
    )
    g.add_argument(
        "--equal-size",
        metavar="KEY",
        help="compare against cached features KEY (any data set) at a size both reach (--at-size, "
        "else the fewest classes and clips per class of the two)",
    )
    g.add_argument(
        "--subsets",
        type=positive_int,
        default=20,
        metavar="B",
        help="seeded subsets behind a curve at a chosen size (default: 20)",
    )


def check_size_args(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, refused before anything is loaded."""
    if not 2 <= args.subsets <= 200:
        raise CliError(f"--subsets: expected 2 to 200, got {args.subsets}")


def check_size_reached(args: argparse.Namespace, labels: dict[str, Any]) -> None:
    """``--at-size`` asking for more classes or clips than a label set holds: one line, no work."""
    from core.geometry.rarefaction import rarefy_subsets

    if args.at_size is None:
        return
    for name, lab in labels.items():
        try:
            rarefy_subsets(lab, args.at_size, 0)
        except LabError as exc:
            raise CliError(f"--at-size {name}: {exc}") from None


def _class_counts(fs: Any, name: str) -> list[int]:
    from collections import Counter

    return sorted(Counter(fs.labels(name)).values())


def size_comparison(args: argparse.Namespace, fs: Any, names: list[str], options: Any) -> list[str]:
    """The lines of ``--at-size`` / ``--equal-size``: each curve at the size, and A - B."""
    from core.data.features import load_cached_features
    from core.geometry.rarefaction import common_size, rarefied_curve, size_matched_difference

    if args.at_size is None and not args.equal_size:
        return []
    other = load_cached_features(args.equal_size) if args.equal_size else None
    lines = []
    for name in names:
        size = args.at_size
        if size is None:
            size = common_size([_class_counts(fs, name), _class_counts(other, name)])
        curves = []
        for which in [fs] + ([other] if other is not None else []):
            update, close = progress_bar(f"{name} at {size.describe()}", not args.no_progress)
            try:
                curves.append(
                    rarefied_curve(
                        which.features,
                        list(which.labels(name)),
                        size,
                        args.subsets,
                        options,
                        name=name,
                        level=args.level,
                        progress=update,
                    )
                )
            except LabError as exc:
                raise CliError(f"{which.key[:10]}: {exc}") from None
            finally:
                close()
        header = ["layer"] + [f"{c.level:.0%} at {size.describe()}" for c in curves]
        rows = [
            [layer] + [f"{c.score[i]:.4f} ({c.low[i]:.4f} .. {c.high[i]:.4f})" for c in curves]
            for i, layer in enumerate(curves[0].layers)
        ]
        lines.append(
            f"{name} at {size.describe()}: mean over {args.subsets} seeded subsets; interval of "
            + curves[0].question
        )
        lines.append(text_table(rows, header))
        if other is not None and curves[0].layers == curves[1].layers:
            paired = list(fs.paths) == list(other.paths)
            d = size_matched_difference(
                curves[0],
                curves[1],
                f"{(fs.key or '?')[:10]} ({name})",
                f"{(other.key or '?')[:10]} ({name})",
                paired=paired,
                share=_share(fs, name, size) if paired else None,
            )
            lines.append(
                f"difference at equal size ({'same clips, paired' if paired else 'independent'}):"
            )
            lines.append(
                text_table(
                    [
                        [layer, f"{v:+.4f}", f"{lo:+.4f} .. {hi:+.4f}"]
                        for layer, v, lo, hi in zip(
                            d.layers, d.difference, d.low, d.high, strict=True
                        )
                    ],
                    ["layer", "A - B", f"{d.level:.0%} interval"],
                )
            )
            lines.append(f"  verdict: {d.verdict}")
    return lines


def _share(fs: Any, name: str, size: Any) -> float:
    import numpy as np

    from core.geometry.rarefaction import kept_share

    return kept_share(np.array(_class_counts(fs, name)), size)
