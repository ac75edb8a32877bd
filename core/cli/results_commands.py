"""CLI commands of the results store: ``results list|rm|clean``, ``export-results``, ``import-results``."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.output import text_table
from core.errors import CliError

EXAMPLES = {
    "results": "examples:\n  python -m core results list\n  python -m core results list --kind convexity\n"
    "  python -m core results rm 3fa2c1d9e0   # the next request computes it again\n"
    "  python -m core results clean          # leftovers of interrupted writers",
    "export-results": "example:\n  python -m core export-results 3fa2c1d9e0 71be02aa4c --out bundle.zip",
    "import-results": "example:\n  python -m core import-results bundle.zip",
}


def _rows(entries: list[Any]) -> list[list[str]]:
    """Table rows of listed entries."""
    rows = []
    for e in entries:
        p = e.provenance
        settings = p.sampling_text() if e.kind == "convexity" else ""
        k = f"k={p.k}" if p.k is not None else ""
        rows.append(
            [
                e.key[:12],
                e.kind,
                p.model_key or p.model_id,
                p.dataset,
                str(p.n_clips),
                "+".join(p.label_sets) or "-",
                " ".join(x for x in (k, settings) if x) or "-",
                p.created[:19],
                f"{e.n_bytes / 1024:.0f} KiB",
            ]
        )
    return rows


def cmd_results(args: argparse.Namespace) -> int:
    """List stored results (newest first), remove some, or clean up after interrupted writers."""
    from core.results.store import (
        clean_stale,
        list_results,
        remove_result,
        resolve_result_key,
        results_root,
    )

    if args.action == "rm":
        if not args.keys:
            raise CliError("give the key (or a unique prefix) of each result to remove")
        keys = list(dict.fromkeys(resolve_result_key(k) for k in args.keys))  # all checked first
        for key in keys:
            remove_result(key)
        print(f"removed {len(keys)} result(s): {', '.join(k[:12] for k in keys)}")
        return 0
    if args.keys:
        raise CliError(f"'results {args.action}' takes no keys")
    if args.action == "clean":
        from core.data.features import clean_feature_leftovers, feature_cache_root

        removed = clean_stale()
        print(f"removed {len(removed)} leftover(s) of interrupted writers from {results_root()}")
        removed = clean_feature_leftovers()
        print(
            f"removed {len(removed)} leftover(s) of interrupted writers from {feature_cache_root()}"
        )
        return 0
    entries = list_results(args.kind)
    if not entries:
        print(f"no stored results in {results_root()}")
        return 0
    header = ["key", "kind", "model", "data", "clips", "labels", "settings", "created", "size"]
    print(text_table(_rows(entries), header))
    print(f"\n{len(entries)} result(s) in {results_root()}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write stored results to a portable zip bundle."""
    from core.results.bundle import export_bundle

    if not str(args.out).lower().endswith(".zip"):
        raise CliError(f"--out must end in .zip, got {args.out!r}")
    path = export_bundle(args.keys, args.out)
    print(f"wrote {len(args.keys)} result(s) to {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Validate a bundle and add its results to the store."""
    from core.results.bundle import import_bundle

    keys = import_bundle(args.bundle)
    print(f"imported {len(keys)} result(s): {', '.join(k[:12] for k in keys)}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``results``, ``export-results`` and ``import-results`` to the CLI's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "results",
        formatter_class=fmt,
        epilog=EXAMPLES["results"],
        help="list stored results (convexity curves, criteria, UMAP layouts)",
    )
    p.add_argument(
        "action",
        choices=("list", "rm", "clean"),
        help="list; rm KEY... (removes them: the next request recomputes); clean (staging folders "
        "and lock files that interrupted writers left, here and in the feature cache)",
    )
    p.add_argument("keys", nargs="*", metavar="KEY", help="rm: result keys or unique prefixes")
    p.add_argument(
        "--kind",
        choices=("convexity", "criteria", "umap", "finetune-convexity", "grid", "curve-statistics"),
        help="only results of this kind",
    )
    p.set_defaults(func=cmd_results, threads=None, no_progress=True)

    p = subparsers.add_parser(
        "export-results",
        formatter_class=fmt,
        epilog=EXAMPLES["export-results"],
        help="write stored results to a portable zip bundle",
    )
    p.add_argument("keys", nargs="+", metavar="KEY", help="result keys or unique prefixes")
    p.add_argument("--out", required=True, help="bundle file to write (.zip)")
    p.set_defaults(func=cmd_export, threads=None, no_progress=True)

    p = subparsers.add_parser(
        "import-results",
        formatter_class=fmt,
        epilog=EXAMPLES["import-results"],
        help="validate a results bundle and add it to the store",
    )
    p.add_argument("bundle", help="a bundle written by export-results")
    p.set_defaults(func=cmd_import, threads=None, no_progress=True)
