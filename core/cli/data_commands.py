"""Commands about inputs: ``models``, ``datasets``, ``download``, ``extract``, ``prune``.

The helpers that turn selection options into cached features (:func:`extract_from_args`,
:func:`describe_features`) are shared with the geometry commands.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.options import common_options, positive_int, selection_options
from core.cli.output import format_params, progress_bar, text_table
from core.errors import CliError

__all__ = [
    "cmd_datasets",
    "cmd_download",
    "cmd_extract",
    "cmd_models",
    "cmd_prune",
    "describe_features",
    "extract_from_args",
    "register",
    "selection_from_args",
    "speaker_regex_option",
]


def cmd_models(args: argparse.Namespace) -> int:
    """List the model registry with offline availability, parameters and layers."""
    from core.models.hub import models_available_offline
    from core.models.registry import MODELS

    offline = set(models_available_offline())
    rows = []
    for spec in MODELS.values():
        if spec.key in offline:
            where = "yes (installed)" if spec.source == "offline" else "yes (cached)"
        else:
            where = "no (pip package missing)" if spec.source == "offline" else "no (needs hub)"
        rows.append(
            [
                spec.key,
                spec.family,
                spec.n_layers,
                spec.hidden_size,
                format_params(spec.params),
                where,
                spec.hf_id,
            ]
        )
    print(text_table(rows, ["model", "family", "layers", "dim", "params", "offline", "id"]))
    print(
        "\nAny Hugging Face id of a supported family or a local model directory also works. "
        "Layers L give L+1 hidden states (0 = input of layer 1)."
    )
    return 0


def _counts_block(title: str, counts: dict[str, int], show_all: bool, limit: int = 40) -> str:
    """Class counts as a compact multi-column block."""
    if not counts:
        return f"{title}: none"
    values = sorted(counts.values())
    head = (
        f"{title}: {len(counts)} classes, {sum(values)} clips "
        f"(per class min {values[0]}, median {values[len(values) // 2]}, max {values[-1]})"
    )
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    hidden = 0
    if not show_all and len(items) > limit:
        hidden, items = len(items) - limit, items[:limit]
    width = max(len(f"{k} {v}") for k, v in items) + 2
    per_line = max(1, 100 // width)
    lines = [head]
    for i in range(0, len(items), per_line):
        lines.append("  " + "".join(f"{k} {v}".ljust(width) for k, v in items[i : i + per_line]))
    if hidden:
        lines.append(f"  ... {hidden} more (largest first; --all lists every class)")
    return "\n".join(line.rstrip() for line in lines)


def cmd_datasets(args: argparse.Namespace) -> int:
    """List the dataset registry, or with a name/--root the class counts of one dataset.

    ``--root`` without a name reads the folder as the ``folder`` dataset, as ``extract MODEL folder
    --root DIR`` does, so both keep the same speakers (the rule belongs to the dataset, not the layout).
    """
    from core.data.datasets import DATASETS, class_counts, load_table, speaker_rule, split_counts

    if args.name is None and args.root is None:
        rows = []
        for spec in DATASETS.values():
            root = spec.default_root() if spec.default_root else None
            present = "-" if root is None else ("yes" if root.exists() else "no")
            rows.append(
                [
                    spec.key,
                    spec.layout,
                    present,
                    str(root or "(--root required)"),
                    spec.speaker_rule,
                    spec.download_size or "-",
                ]
            )
        headers = ["dataset", "layout", "present", "default root", "speakers task", "download"]
        print(text_table(rows, headers))
        print("\nShow class counts with: python -m core datasets NAME [--root DIR]")
        return 0
    name = args.name or "folder"
    table = load_table(name, args.root, speaker_regex=args.speaker_regex)
    print(f"{name}: {len(table)} clips at {table.root}")
    for task, title in (("words", "words"), ("speakers", "speakers")):
        counts = class_counts(table, task)
        print(_counts_block(title, counts, args.all))
        splits = split_counts(table, task)
        print("  splits: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    rule = speaker_rule(table, args.min_clips)
    print(rule.describe())
    if rule.dropped:
        shown = rule.dropped if args.all or len(rule.dropped) <= 20 else rule.dropped[:20]
        more = len(rule.dropped) - len(shown)
        print("  dropped: " + ", ".join(shown) + (f" ... {more} more (--all)" if more else ""))
    if args.name is None and (table.root / "validation_list.txt").is_file():
        print(
            "note: read as dataset 'folder' (what 'extract MODEL folder --root DIR' uses); for "
            "Speech Commands' rule name it: datasets speech-commands --root DIR"
        )
    for note in table.notes:
        print(f"note: {note}")
    return 0


def selection_from_args(args: argparse.Namespace) -> Any:
    """The Selection described by the command-line options."""
    from core.data.source import ClipSource, Selection

    source = ClipSource(
        args.dataset,
        args.root,
        speaker_regex=getattr(args, "speaker_regex", None),
        min_clips=args.min_clips,
    )
    return Selection(
        source, task=args.task, split=args.split, max_clips=args.max_clips, seed=args.seed
    )


def extract_from_args(args: argparse.Namespace, *, cache: bool = True) -> Any:
    """Run (or fetch from the cache) the features the selection options describe, with a progress bar."""
    from core.data.features import extract_features
    from core.models.request import ModelRequest

    request = ModelRequest(args.model, args.whisper_input, args.trust_remote_code)
    update, close = progress_bar("extract", not args.no_progress)
    try:
        return extract_features(
            request,
            selection_from_args(args),
            batch_size=args.batch_size,
            device=args.device,
            progress=update,
            cache=cache,
        )
    finally:
        close()


def describe_features(fs: Any) -> list[str]:
    """Lines describing a FeatureSet: model, input mode, data, shape, cache and speed."""
    m = fs.meta
    lines = [f"model: {m['describe']}"]
    if m.get("family") == "whisper":
        mode = m["input_mode"]
        extra = (
            " (default; --whisper-input padded runs the full 30-s window)"
            if mode == "trimmed"
            else " (30-s window; pooled over the clip's frames)"
        )
        lines.append(f"whisper input: {mode}{extra}")
    sel = m.get("selection", {})
    sel_text = ", ".join(f"{k}={v}" for k, v in sel.items() if v is not None)
    lines.append(f"data: {m['dataset']} at {m['root']} ({sel_text})")
    shape = " x ".join(str(s) for s in fs.features.shape)
    lines.append(
        f"features: {shape} {fs.features.dtype} (clips x hidden states x dim), "
        f"pooling {m['pooling']}"
    )
    origin = "from cache" if fs.from_cache else f"computed in {m['seconds']:.1f} s"
    rate = f", {m['clips_per_s']:.1f} clips/s" if m.get("clips_per_s") else ""
    lines.append(f"key: {fs.key} ({origin}{rate} on {m['device']})")
    if fs.directory is not None:
        lines.append(f"cache: {fs.directory}")
    if fs.skipped:
        first = fs.skipped[0]
        lines.append(
            f"skipped {len(fs.skipped)} unreadable clip(s), e.g. {first['path']}: {first['reason']}"
        )
    return lines


def cmd_extract(args: argparse.Namespace) -> int:
    """Extract (or reuse) pooled per-layer features and print where they are."""
    fs = extract_from_args(args, cache=not args.no_cache)
    print("\n".join(describe_features(fs)))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download and unpack Speech Commands v0.02 (resumable, sha256-checked) into its folder."""
    from core.data.datasets import download_speech_commands

    update, close = progress_bar("speech commands", not args.no_progress, unit="B")
    try:
        root = download_speech_commands(
            args.root, url=args.url, sha256=args.sha256 or None, progress=update
        )
    finally:
        close()
    print(f"Speech Commands v0.02 ready at {root}")
    return 0


def plan_options(p: argparse.ArgumentParser) -> None:
    """``--drop LAYERS`` / ``--keep LAYERS`` (1-based transformer layers, e.g. 3-4 or 1-2,5-12)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--drop", metavar="LAYERS", help="drop these layers, e.g. 3-4 or 3,5,7")
    group.add_argument("--keep", metavar="LAYERS", help="keep only these layers, e.g. 1-2,5-12")


def plan_from_args(args: argparse.Namespace, n_layers: int) -> Any:
    """The PruningPlan of a positional prune point, ``--drop`` or ``--keep`` (exactly one of them)."""
    from core.models.plans import PruningPlan, parse_layers

    given = [x is not None for x in (args.p, args.drop, args.keep)]
    if sum(given) != 1:
        raise CliError("give a prune point P, or --drop LAYERS, or --keep LAYERS (exactly one)")
    if args.p is not None:
        return PruningPlan.top(args.p, n_layers)
    if args.drop is not None:
        return PruningPlan.drop(parse_layers(args.drop), n_layers)
    return PruningPlan.keep(parse_layers(args.keep), n_layers)


def cmd_prune(args: argparse.Namespace) -> int:
    """Load a model, keep layers 1..p (or the layers --drop/--keep leave), save it, and print parameter
    counts before and after."""
    from core.models.loading import load_encoder, resolve_model
    from core.models.pruning import apply_plan, count_parameters

    # checked before any work: the plan's syntax, then (depth known without loading) its layers
    depth = resolve_model(args.model).n_layers
    plan = plan_from_args(args, depth) if depth else None
    enc = load_encoder(args.model, whisper_input=args.whisper_input, device="cpu")
    before = count_parameters(enc)
    n_layers = enc.n_layers
    plan = plan if plan is not None else plan_from_args(args, n_layers)
    apply_plan(enc, plan)
    after = count_parameters(enc)
    path = enc.save_pretrained(args.out)
    print(f"model: {enc.describe()}")
    rows = [
        [part, f"{before[part]:,}", f"{after[part]:,}", f"{before[part] - after[part]:,}"]
        for part in ("total", "front_end", "transformer", "head")
    ]
    if plan.is_top:
        print(f"pruned at p={plan.size}: kept transformer layers 1..{plan.size} of {n_layers}")
    else:
        print(f"pruned: {plan.describe()} of {n_layers} transformer layers ({plan.size} kept)")
    print(text_table(rows, ["parameters", "before", "after", "removed"]))
    share = 100 * (1 - after["total"] / before["total"]) if before["total"] else 0.0
    print(f"removed {share:.1f}% of the parameters; saved to {path}")
    if enc.family == "whisper" and enc.input_mode == "trimmed":
        print("note: the saved Whisper encoder keeps the trimmed (1-s) position table")
    return 0


def speaker_regex_option(p: argparse.ArgumentParser) -> None:
    """``--speaker-regex`` for commands that read a folder dataset (checked when the command runs)."""
    p.add_argument(
        "--speaker-regex",
        metavar="REGEX",
        help="speaker id from each file name: the regex's group named 'speaker', else its first "
        "group (default: the dataset's own, '^(.+?)_nohash_')",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``models``, ``datasets``, ``download``, ``extract``, ``prune`` and ``import-features``."""
    _add_models(sub)
    _add_datasets(sub)
    _add_download(sub)
    _add_extract(sub)
    _add_prune(sub)
    _add_import_features(sub)


def _add_models(sub: argparse._SubParsersAction) -> None:
    """The ``models`` command: the model registry and what of it runs offline."""
    p = sub.add_parser(
        "models",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list models, offline availability, parameters and layers",
        epilog="example:\n  python -m core models",
    )
    p.set_defaults(func=cmd_models)


def _add_datasets(sub: argparse._SubParsersAction) -> None:
    """The ``datasets`` command: the dataset registry, or one dataset's class counts."""
    p = sub.add_parser(
        "datasets",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list datasets; with NAME or --root show word/speaker class counts",
        epilog="examples:\n  python -m core datasets\n  python -m core datasets sample\n"
        "  python -m core datasets speech-commands --root ~/speech_commands_v0.02 --all\n"
        "  python -m core datasets --root clips/ --speaker-regex '^([a-z]+)-'",
    )
    p.add_argument("name", nargs="?", help="dataset key: show its class counts")
    p.add_argument(
        "--root", help="dataset folder (without NAME: read as the 'folder' dataset, like extract)"
    )
    p.add_argument("--all", action="store_true", help="list every class, not only the 40 largest")
    p.add_argument(
        "--min-clips",
        type=positive_int,
        help="speakers task: minimum clips per speaker (default: the dataset's rule)",
    )
    speaker_regex_option(p)
    p.set_defaults(func=cmd_datasets)


def _add_download(sub: argparse._SubParsersAction) -> None:
    """The ``download`` command: fetch Speech Commands into its folder."""
    from core.data.datasets import SPEECH_COMMANDS_SHA256, SPEECH_COMMANDS_URL

    p = sub.add_parser(
        "download",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="download Speech Commands v0.02 (2.3 GB; resumable, sha256-checked)",
        epilog="example:\n  python -m core download --root ~/data/speech_commands_v0.02",
    )
    p.add_argument("--root", help="target folder (default: the cache's datasets folder)")
    p.add_argument("--url", default=SPEECH_COMMANDS_URL, help="archive URL (a mirror or file://)")
    p.add_argument(
        "--sha256",
        default=SPEECH_COMMANDS_SHA256,
        help="expected archive sha256 (default: the official one; '' skips the check)",
    )
    p.set_defaults(func=cmd_download)


def _add_extract(sub: argparse._SubParsersAction) -> None:
    """The ``extract`` command: per-layer features of a model on a selection, cached."""
    p = sub.add_parser(
        "extract",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="extract mean-pooled per-layer features (cached)",
        epilog="examples:\n  python -m core extract whisper-tiny.en-offline sample\n"
        "  python -m core extract whisper-base-offline sample --whisper-input padded"
        " --max-clips 100\n  python -m core extract ./my-model folder --root clips/"
        " --task speakers --min-clips 5",
    )
    selection_options(p, required=True)
    speaker_regex_option(p)
    p.add_argument(
        "--no-cache", action="store_true", help="compute without reading or writing the cache"
    )
    p.set_defaults(func=cmd_extract)


def _add_prune(sub: argparse._SubParsersAction) -> None:
    """The ``prune`` command: keep some transformer layers of a model and save it."""
    p = sub.add_parser(
        "prune",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="keep transformer layers 1..p (or any set), save the model, show parameter counts",
        epilog="examples:\n  python -m core prune whisper-tiny.en-offline 2 --out tiny-p2\n"
        "  python -m core prune wavlm-base --drop 3-4 --out wavlm-drop3-4",
    )
    p.add_argument("model", help="preset key, Hugging Face id or model directory")
    p.add_argument(
        "p", type=positive_int, nargs="?", help="prune point: keep layers 1..p (1 <= p <= L)"
    )
    plan_options(p)
    p.add_argument("--out", required=True, help="directory to save the pruned model into")
    p.add_argument(
        "--whisper-input",
        choices=("trimmed", "padded"),
        default="trimmed",
        help="Whisper only: save with the 1-s (default) or the 30-s position table",
    )
    p.set_defaults(func=cmd_prune)


def _add_import_features(sub: argparse._SubParsersAction) -> None:
    """The ``import-features`` command: cache embeddings extracted elsewhere."""
    p = sub.add_parser(
        "import-features",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="bring per-layer embeddings extracted elsewhere (.npy/.npz + labels table) into the cache",
        epilog="examples:\n  python -m core import-features hidden.npy labels.csv --name my-model\n"
        "  python -m core import-features layers.npz labels.tsv   # layer_0 ... layer_L, (N, D) each\n"
        "labels: a CSV/TSV with a header: word (or class, label), optional speaker and path",
    )
    p.add_argument(
        "arrays", help=".npy of (N, L+1, D), or .npz: one such array or one (N, D) per state"
    )
    p.add_argument("labels", help="CSV/TSV labels table, one row per point, in the arrays' order")
    p.add_argument("--name", help="name of the representation (default: the arrays file's name)")
    p.set_defaults(func=cmd_import_features)


def cmd_import_features(args: argparse.Namespace) -> int:
    """Check and cache externally extracted features; print what they became."""
    from core.data.imported import import_features

    fs = import_features(args.arrays, args.labels, name=args.name)
    if fs.key is None:  # import_features returns the cached entry, which always has its key
        raise RuntimeError("the imported features have no cache key")
    print("\n".join(describe_features(fs)))
    print(f"use it: python -m core convexity --key {fs.key[:12]}")
    return 0
