"""Commands about single clips: ``diagnose`` (per-clip and per-class tables of one layer) and ``path``
(the shortest path between two clips, vertex by vertex)."""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.cli.geometry_commands import (
    check_k,
    feature_set_options,
    features_for,
    k_option,
    label_sets_for,
)
from core.cli.options import common_options, out_path, positive_int, seed_int
from core.cli.output import text_table
from core.errors import CliError, LabError

__all__ = ["cmd_diagnose", "cmd_path", "register"]

CSV_CHUNK = 5000  # rows per written chunk: tables of any size stream to disk


def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum`` (``what`` names it in the message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what} (>= {minimum}), got {text!r}")
        return value

    parse.__name__ = what
    return parse


layer_index = _int_at_least(0, "a hidden-state index")
sources_count = _int_at_least(2, "sources per class")


def _check_layer_early(args: argparse.Namespace) -> None:
    """Refuse a layer past the model's top before any extraction (when the model's depth is known)."""
    if args.layer is None or not args.model:
        return
    from core.models.loading import resolve_model

    try:
        depth = resolve_model(args.model).n_layers
    except LabError:  # an unknown model is reported by the extraction's own one-line check
        return
    if depth and args.layer > depth:
        raise CliError(f"--layer {args.layer}: {args.model} has hidden states 0..{depth}")


def _layer_of(args: argparse.Namespace, fs: Any) -> int:
    """The chosen hidden state (default: the last), checked against the features."""
    layer = fs.n_layers if args.layer is None else args.layer
    if layer > fs.n_layers:
        raise CliError(f"--layer {layer}: these features have hidden states 0..{fs.n_layers}")
    return layer


def _check_out_dir(text: str | None) -> Path | None:
    """``--out`` as a folder (created later); an existing file is refused."""
    if not text:
        return None
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {text!r} is a file; give a folder for clips.csv and classes.csv")
    return out


def _csv_chunks(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> Iterator[bytes]:
    """CSV bytes, header first, ``CSV_CHUNK`` rows at a time."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for i, row in enumerate(rows, start=1):
        writer.writerow(row)
        if i % CSV_CHUNK == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _clip_columns(fs: Any) -> dict[str, Sequence[str]]:
    """Per-clip identity columns of a feature set."""
    return {"file": fs.paths, "word": fs.words, "speaker": fs.speakers}


def write_tables(out: Path, tables: dict[str, Any], fs: Any) -> tuple[Path, Path]:
    """``clips.csv`` (one row per clip and label set) and ``classes.csv`` into ``out``, streamed."""
    from core.geometry.diagnostics import class_rows, clip_rows
    from core.io.atomic import atomic_write_chunks

    columns = _clip_columns(fs)

    def all_clips() -> Iterator[dict[str, Any]]:
        for t in tables.values():
            yield from clip_rows(t, columns)

    first = next(iter(tables.values()))
    clip_fields = list(next(clip_rows(first, columns, order=np.arange(1))))
    classes = [row for t in tables.values() for row in class_rows(t)]
    clips_path = atomic_write_chunks(out / "clips.csv", _csv_chunks(all_clips(), clip_fields))
    classes_path = atomic_write_chunks(out / "classes.csv", _csv_chunks(classes, list(classes[0])))
    return clips_path, classes_path


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Per-clip convexity, bridge counts and kNN purity, and per-class components, of one layer."""
    from core.cli.data_commands import describe_features
    from core.results.kinds import decode_diagnostics, diagnostics_entry

    out = _check_out_dir(args.out)
    _check_layer_early(args)
    fs = features_for(args)
    print("\n".join(describe_features(fs)))
    layer = _layer_of(args, fs)
    names = list(label_sets_for(fs, args.labels))
    check_k(args.k, fs)
    entry, hit = diagnostics_entry(
        fs,
        layer,
        names,
        k=args.k,
        max_sources_per_class=args.sources,
        seed=args.source_seed,
        device=args.device,
    )
    tables = decode_diagnostics(entry)
    origin = "loaded from" if hit else "stored in"
    how = (
        "exhaustive (every clip's tree)"
        if args.sources is None
        else f"{args.sources} sampled sources per class (seed {args.source_seed}; clips without a "
        "tree have no convexity, exact=False; class scores and bridges are estimates)"
    )
    print(
        f"diagnostics of hidden state {layer}, k={args.k}, {how}: "
        f"{origin} the results store (key {entry.key[:12]})"
    )
    for name, t in tables.items():
        split = [c for c in t.per_class if c.n_components > 1]
        print(
            f"\n{name}: convexity {t.score:.4f}; {len(split)} of {len(t.per_class)} classes in more "
            "than one piece of the kNN graph"
            + (
                f" ({', '.join(f'{c.label}: {c.n_components}' for c in split[:8])})"
                if split
                else ""
            )
        )
        rows = [
            [
                i,
                fs.words[i],
                fs.speakers[i],
                f"{t.convexity[i]:.3f}",
                f"{t.bridge[i]:.4f}",
                f"{t.purity[i]:.1f}",
                fs.paths[i],
            ]
            for i in t.ranked("convexity")[: args.top]
        ]
        print(f"lowest clip convexity ({name} labels):")
        header = ["clip", "word", "speaker", "convexity", "bridge", "purity", "file"]
        print(text_table(rows, header))
    if out is not None:
        clips, classes = write_tables(out, tables, fs)
        print(f"\nwrote {clips} and {classes}")
    return 0


def _clip_index(spec: str, fs: Any, option: str) -> int:
    """A clip by index or by its file path (as listed in the features), else one-line CliError."""
    n = len(fs.paths)
    if spec.isascii() and spec.isdigit():  # "²" is a digit to str.isdigit, not to int()
        index = int(spec)
        if index >= n:
            raise CliError(f"{option} {spec}: clip indices run 0..{n - 1}")
        return index
    matches = [i for i, p in enumerate(fs.paths) if p == spec or Path(p).name == spec]
    if len(matches) != 1:
        why = "no clip has" if not matches else f"{len(matches)} clips have"
        raise CliError(
            f"{option} {spec!r}: {why} that file; give its index or its path under the dataset"
        )
    return matches[0]


def _check_clip_spec(text: str) -> str:
    """argparse type: a clip index or a file name (no empty or blank text)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a clip index or file, got an empty string")
    if text.lstrip("-").isdigit() and text.startswith("-"):
        raise argparse.ArgumentTypeError(f"clip indices are >= 0, got {text!r}")
    if text.strip().isdigit() and not text.strip().isascii():
        raise argparse.ArgumentTypeError(f"clip indices are written 0-9, got {text!r}")
    return text.strip()


def cmd_path(args: argparse.Namespace) -> int:
    """The shortest path between two clips on a layer's kNN graph, every vertex on it."""
    from core.cli.data_commands import describe_features
    from core.geometry.clip_paths import clip_path, layer_graph, path_rows
    from core.io.atomic import atomic_write_chunks

    out_path(args.out, (".csv",))
    _check_layer_early(args)
    fs = features_for(args)
    print("\n".join(describe_features(fs)))
    layer = _layer_of(args, fs)
    labels = label_sets_for(fs, [args.labels])[args.labels]
    check_k(args.k, fs)
    source = _clip_index(args.source, fs, "--from")
    target = None if args.target is None else _clip_index(args.target, fs, "--to")
    if target is not None and labels[target] != labels[source]:
        print(f"note: clip {target} is not a class-mate of clip {source} ({args.labels} labels)")
    g = layer_graph(np.asarray(fs.features[:, layer, :]), args.k)
    path = clip_path(g, labels, source, target)
    chosen = (
        "" if target is not None else " (default: the class-mate whose path leaves the class most)"
    )
    if not path.reachable:
        print(
            f"clip {path.target} is unreachable from clip {source} at hidden state {layer}: the pair scores 0"
        )
        return 0
    print(
        f"shortest path at hidden state {layer}, k={args.k}, {args.labels} labels: clip {source} -> "
        f"clip {path.target}{chosen}; {len(path.vertices) - 1} edges, "
        f"{len(path.interior)} interior, pair score {path.score:.3f}"
    )
    rows = path_rows(path, _clip_columns(fs))
    print(
        text_table(
            [
                [
                    r["step"],
                    r["clip"],
                    r["role"],
                    "yes" if r["in_class"] else "NO",
                    r["word"],
                    r["speaker"],
                    f"{r['distance']:.3f}",
                    r["file"],
                ]
                for r in rows
            ],
            ["step", "clip", "role", "in class", "word", "speaker", "distance", "file"],
        )
    )
    if args.out:
        atomic_write_chunks(Path(args.out), _csv_chunks(rows, list(rows[0])))
        print(f"wrote {args.out}")
    return 0


def _source_options(p: argparse.ArgumentParser) -> None:
    """Features (MODEL DATASET or --key), layer and k."""
    feature_set_options(p)
    p.add_argument(
        "--layer",
        type=layer_index,
        default=None,
        help="hidden-state index (0 = input to layer 1; default: the last)",
    )
    k_option(p)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``diagnose`` and ``path``."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "diagnose",
        parents=[common_options()],
        formatter_class=fmt,
        help="per-clip convexity, bridge counts, kNN purity and per-class pieces of one layer",
        epilog="examples:\n  python -m core diagnose whisper-tiny.en-offline sample --layer 4 --out diag\n"
        "  python -m core diagnose --key b52ec8a7cb --labels speaker --layer 1 --top 20",
    )
    _source_options(p)
    p.add_argument(
        "--labels",
        nargs="+",
        choices=("word", "speaker"),
        default=["word", "speaker"],
        help="label sets (default: both, sharing the kNN graph and every tree)",
    )
    p.add_argument(
        "--top", type=positive_int, default=10, help="lowest-convexity clips to print (default: 10)"
    )
    p.add_argument(
        "--sources",
        type=sources_count,
        default=None,
        help="large N: trees for only this many seeded clips per class (default: every clip)",
    )
    p.add_argument("--source-seed", type=seed_int, default=0, help="seed of --sources (default: 0)")
    p.add_argument("--out", help="folder to write clips.csv and classes.csv into")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser(
        "path",
        parents=[common_options()],
        formatter_class=fmt,
        help="the shortest path between two clips on a layer's kNN graph, vertex by vertex",
        epilog="examples:\n  python -m core path whisper-tiny.en-offline sample --layer 4 --from 17\n"
        "  python -m core path --key b52ec8a7cb --labels speaker --from 3 --to 250 --out path.csv",
    )
    _source_options(p)
    p.add_argument(
        "--labels",
        choices=("word", "speaker"),
        default="word",
        help="whose class the path is judged by (default: word)",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        type=_check_clip_spec,
        help="the source clip: index or file (as listed in clips.csv)",
    )
    p.add_argument(
        "--to",
        dest="target",
        type=_check_clip_spec,
        default=None,
        help="the target clip (default: the class-mate whose path leaves the class most)",
    )
    p.add_argument("--out", help="also write the path's vertices to FILE.csv")
    p.set_defaults(func=cmd_path)
