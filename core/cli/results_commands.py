"""CLI commands of the results store: ``results list|rm|clean``, ``export-results``, ``import-results``."""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.output import text_table
from core.errors import CliError
from core.results.store import KINDS

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
        settings = p.sampling_text() if e.sampled else ""
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
                e.origin.tag(),
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
        results_path,
        results_root,
    )

    if args.action == "verify":
        return _verify(args)
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
        print(f"no stored results in {results_path()}")
        return 0
    header = [
        "key",
        "kind",
        "model",
        "data",
        "clips",
        "labels",
        "settings",
        "created",
        "origin",
        "size",
    ]
    print(text_table(_rows(entries), header))
    print(f"\n{len(entries)} result(s) in {results_path()}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Recompute stored convexity results and report agreement (exit 1 where one disagrees)."""
    from core.results.verify import verify_result

    if len(args.keys) != 1:
        raise CliError("give the key (or a unique prefix) of one result to verify")
    if args.classes is not None and args.classes < 1:
        raise CliError(f"--classes must be >= 1, got {args.classes}")
    outcome = verify_result(args.keys[0], max_classes=args.classes)
    print(f"result {outcome.key[:12]}: {outcome.origin}")
    print(f"recomputed: {outcome.scope}; {len(outcome.checks)} number(s) compared")
    bad = outcome.disagreements()
    if not bad:
        print("agrees: every recomputed number matches the stored one")
        return 0
    rows = [
        [
            c.label_set,
            str(c.layer),
            c.what,
            f"{c.stored:.4f}",
            f"{c.recomputed:.4f}",
            f"{c.bound:.4f}",
        ]
        for c in bad[:20]
    ]
    print(text_table(rows, ["labels", "layer", "what", "stored", "recomputed", "allowed"]))
    print(
        f"DISAGREES: {len(bad)} of {len(outcome.checks)} number(s) differ from a fresh computation"
    )
    return 1


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
        choices=("list", "rm", "clean", "verify"),
        help="list; rm KEY... (removes them: the next request recomputes); clean (staging folders "
        "and lock files that interrupted writers left, here and in the feature cache); verify KEY "
        "(recompute a stored convexity curve on its cached features and report agreement)",
    )
    p.add_argument("keys", nargs="*", metavar="KEY", help="rm: result keys or unique prefixes")
    p.add_argument(
        "--kind",
        choices=KINDS,
        help="only results of this kind",
    )
    p.add_argument(
        "--classes",
        type=int,
        metavar="N",
        help="verify: recompute N seeded classes per label set exactly instead of the whole curve",
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
