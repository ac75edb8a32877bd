"""Command-line interface: ``python -m core {models,datasets,extract,convexity,prune}``.

Shares the feature cache with the dashboard (``core.data.features``). Expected failures (unknown model, hub
offline, missing dataset folder, unreadable clips, bad arguments) print one ``error: ...`` line to
stderr and exit with status 2, never a traceback (set ``CONVEXITY_LAB_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.cli import results_commands
from core.errors import CliError

EXIT_ERROR = 2
# Long-running work (core.cli.jobs): `python -m core finetune --help` shows each one's options.
JOB_COMMANDS = {
    "finetune": "fine-tune a full or pruned model as a run (add --background to queue it)",
    "sweep": "fine-tune and benchmark several prune points; suggests one from convexity",
    "benchmark": "full vs pruned: parameters, training step, latency, throughput, memory",
    "jobs": "list, watch, cancel or resume runs (also after a restart)",
}

EXAMPLES = """\
examples:
  python -m core models
  python -m core datasets
  python -m core datasets sample                    # class counts for words and speakers
  python -m core download                          # Speech Commands v0.02 (2.3 GB, resumable)
  python -m core datasets speech-commands --root ~/data/speech_commands_v0.02
  python -m core extract whisper-tiny.en-offline sample --max-clips 350
  python -m core extract wav2vec2-base speech-commands --root DIR --split test --device cuda
  python -m core convexity whisper-base-offline sample --out curves.json
  python -m core convexity --key 3fa2c1d9e0 --labels word --exhaustive --out curves.csv
  python -m core criteria whisper-tiny.en-offline sample --out criteria.json
  python -m core prune whisper-base-offline 2 --out pruned-whisper-base-p2
  python -m core sweep --model whisper-tiny.en-offline --task words --points full,suggested,3,2
  python -m core jobs list
"""


# --------------------------------------------------------------------------------------------------
# Output helpers


def _err(message: str) -> None:
    """Print one line to stderr."""
    print(" ".join(str(message).split()), file=sys.stderr)


def _fmt_params(n: int | None) -> str:
    """12.3M style parameter count."""
    return "?" if n is None else f"{n / 1e6:.1f}M"


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Left-aligned plain-text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _progress_bar(
    desc: str, enabled: bool, unit: str = "clip"
) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A ``progress(done, total)`` callback that drives a lazily created tqdm bar, and a closer."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if not enabled:
            return
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(
                total=total, desc=desc, unit=unit, unit_scale=unit == "B", disable=None
            )
        bar.n = done
        bar.refresh()

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return update, close


# --------------------------------------------------------------------------------------------------
# Commands


def cmd_models(args: argparse.Namespace) -> int:
    """List the model registry with offline availability, parameters and layers."""
    from core.models.registry import MODELS, models_available_offline

    offline = set(models_available_offline())
    rows = []
    for spec in MODELS.values():
        if spec.key in offline:
            where = "yes (installed)" if spec.source == "offline" else "yes (cached)"
        else:
            where = "no (pip package missing)" if spec.source == "offline" else "no (needs hub)"
        rows.append(
            [spec.key, spec.family, spec.n_layers, spec.hidden_size, _fmt_params(spec.params),
             where, spec.hf_id]
        )  # fmt: skip
    print(_table(rows, ["model", "family", "layers", "dim", "params", "offline", "id"]))
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
    """List the dataset registry, or with a name/--root the class counts of one dataset."""
    from core.data.datasets import (
        DATASETS,
        class_counts,
        default_min_clips,
        load_table,
        split_counts,
    )

    if args.name is None and args.root is None:
        rows = []
        for spec in DATASETS.values():
            root = spec.default_root() if spec.default_root else None
            present = "-" if root is None else ("yes" if root.exists() else "no")
            rows.append([spec.key, spec.layout, present, str(root or "(--root required)"),
                         spec.download_size or "-"])  # fmt: skip
        print(_table(rows, ["dataset", "layout", "present", "default root", "download"]))
        print("\nShow class counts with: python -m core datasets NAME [--root DIR]")
        return 0
    name = args.name
    if name is None:
        has_lists = (Path(args.root).expanduser() / "validation_list.txt").is_file()
        name = "speech-commands" if has_lists else "folder"
    table = load_table(name, args.root)
    print(f"{name}: {len(table)} clips at {table.root}")
    for task, title in (("words", "words"), ("speakers", "speakers")):
        counts = class_counts(table, task)
        print(_counts_block(title, counts, args.all))
        splits = split_counts(table, task)
        print("  splits: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    floor = default_min_clips(table)
    n_keep = sum(1 for v in class_counts(table, "speakers").values() if v >= floor)
    print(f"speakers task keeps speakers with >= {floor} clips: {n_keep}")
    for note in table.notes:
        print(f"note: {note}")
    return 0


def _selection(args: argparse.Namespace) -> Any:
    """The Selection described by the command-line options."""
    from core.data.features import Selection

    return Selection(
        dataset=args.dataset,
        root=args.root,
        task=args.task,
        split=args.split,
        max_clips=args.max_clips,
        seed=args.seed,
        min_clips=args.min_clips,
    )


def _extract(args: argparse.Namespace, *, cache: bool = True) -> Any:
    """Run (or fetch from the cache) the features the selection options describe, with a progress bar."""
    from core.data.features import extract_features

    update, close = _progress_bar("extract", not args.no_progress)
    try:
        return extract_features(
            args.model,
            _selection(args),
            whisper_input=args.whisper_input,
            batch_size=args.batch_size,
            device=args.device,
            progress=update,
            cache=cache,
            trust_remote_code=args.trust_remote_code,
        )
    finally:
        close()


def _describe_features(fs: Any) -> list[str]:
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
    lines.append(f"features: {shape} {fs.features.dtype} (clips x hidden states x dim), "
                 f"pooling {m['pooling']}")  # fmt: skip
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
    fs = _extract(args, cache=not args.no_cache)
    print("\n".join(_describe_features(fs)))
    return 0


def _label_sets(fs: Any, names: Sequence[str]) -> dict[str, list[str]]:
    """The requested label sets; speaker labels must exist for every clip."""
    out: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        labels = fs.labels(name)
        if name == "speaker" and any(not s for s in labels):
            missing = sum(1 for s in labels if not s)
            raise CliError(
                f"{missing} clip(s) have no speaker label; use --labels word or a speaker regex dataset"
            )
        out[name] = list(labels)
    return out


def _write_out(path: Path, curves: dict[str, Any], fs: Any, settings: dict[str, Any]) -> None:
    """Save curves as JSON (everything) or CSV (one row per layer and class), atomically."""
    from core.io.atomic import atomic_write_bytes

    suffix = path.suffix.lower()
    if suffix == ".json":
        doc = {
            "features": fs.meta,
            "settings": settings,
            "curves": {
                name: {
                    "layers": list(c.layers),
                    "scores": [float(s) for s in c.scores],
                    "sems": [float(s) for s in c.sems],
                    "results": [r.to_dict() for r in c.results],
                }
                for name, c in curves.items()
            },
        }
        atomic_write_bytes(path, json.dumps(doc, indent=2, default=str).encode())
    else:
        buf = io.StringIO()
        fields = ["labels", "layer", "class", "score", "sem", "n_points", "n_pairs"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for c in curves.values():
            for row in c.to_records():
                writer.writerow({k: ("" if row[k] is None else row[k]) for k in fields})
        atomic_write_bytes(path, buf.getvalue().encode())


def _out_path(args: argparse.Namespace) -> Path | None:
    """``--out`` as a path, which must end in .json or .csv."""
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".json", ".csv"):
        raise CliError(f"--out must end in .json or .csv, got {out.name!r}")
    return out


def _features_for(args: argparse.Namespace) -> Any:
    """Cached features by ``--key``, or extracted (and cached) for MODEL DATASET."""
    from core.data.features import load_cached_features

    if args.key:
        if args.model or args.dataset:
            raise CliError("give either --key or MODEL DATASET, not both")
        return load_cached_features(args.key)
    if not (args.model and args.dataset):
        raise CliError("give MODEL DATASET (e.g. whisper-tiny.en-offline sample) or --key KEY")
    return _extract(args)


def cmd_convexity(args: argparse.Namespace) -> int:
    """Graph convexity per layer for word and/or speaker labels, sharing one kNN graph per layer."""
    from core.results.kinds import stored_convexity  # the engine through the results store

    out = _out_path(args)
    fs = _features_for(args)
    print("\n".join(_describe_features(fs)))
    labels = _label_sets(fs, args.labels)
    pairs = None if args.exhaustive else args.pairs
    update, close = _progress_bar("convexity", not args.no_progress)
    try:
        curves = stored_convexity(
            fs, labels, k=args.k, max_pairs_per_class=pairs, seed=args.pair_seed,
            device=args.device, progress=update,
        )  # fmt: skip
    finally:
        close()
    first = next(iter(curves.values())).results[0]
    estimator = first.settings["estimator"]
    print(f"graph convexity: k={args.k}, {'exhaustive' if pairs is None else f'{pairs} pairs/class'}"
          f" ({estimator}); sem = standard error of the estimate")  # fmt: skip
    for name, c in curves.items():
        ex = c.results[0].n_excluded_classes
        n_cls = len(c.results[0].per_class)
        note = f", {ex} class(es) with < 2 clips excluded" if ex else ""
        print(f"  {name}: {n_cls} classes{note}")
    header = ["layer"] + [h for name in curves for h in (name, "±sem")]
    rows = []
    for i, layer in enumerate(next(iter(curves.values())).layers):
        row: list[Any] = [layer]
        for c in curves.values():
            row += [f"{c.scores[i]:.4f}", f"{c.sems[i]:.4f}"]
        rows.append(row)
    print(_table(rows, header))
    if fs.meta.get("final_layer_norm"):
        print(
            f"note: layer {fs.n_layers} includes the encoder's final LayerNorm (layers below do not)"
        )
    if out is not None:
        settings = dict(first.settings, labels=list(curves))
        settings.pop("layer", None)
        _write_out(out, curves, fs, settings)
        print(f"wrote {out}")
    return 0


def _criteria_doc(results: dict[str, Any], table: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON-ready criteria: values, uncertainty, settings and proposed prune points."""
    return {
        "criteria": {
            name: {
                "kind": r.kind,
                "values": np.asarray(r.values).tolist(),
                "uncertainty": None
                if r.uncertainty is None
                else np.asarray(r.uncertainty).tolist(),
                "higher_is_better": r.higher_is_better,
                "settings": r.settings,
                "seconds": r.seconds,
            }
            for name, r in results.items()
        },
        "proposed_prune_points": table,
    }


def _criteria_csv(results: dict[str, Any]) -> str:
    """One row per (criterion, layer) for curves and per (criterion, layer, layer_b) for matrices."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["criterion", "layer", "layer_b", "value", "uncertainty"])
    for name, r in results.items():
        values = np.asarray(r.values)
        unc = None if r.uncertainty is None else np.asarray(r.uncertainty)
        for idx in np.ndindex(values.shape):
            layer_b = idx[1] if len(idx) > 1 else ""
            u = "" if unc is None else float(unc[idx])
            writer.writerow([name, idx[0], layer_b, float(values[idx]), u])
    return buf.getvalue()


def cmd_criteria(args: argparse.Namespace) -> int:
    """Convexity beside the other layer-selection criteria, with each one's proposed prune point."""
    from core.geometry.convexity import layerwise_convexity
    from core.geometry.criteria import GraphCollector, compare_prune_points, run_criteria
    from core.io.atomic import atomic_write_bytes
    from core.results.kinds import stored_criteria

    out = _out_path(args)
    fs = _features_for(args)
    print("\n".join(_describe_features(fs)))
    labels = _label_sets(fs, [args.labels])[args.labels]
    graphs = GraphCollector()
    update, close = _progress_bar("convexity", not args.no_progress)
    try:
        curve = layerwise_convexity(
            fs.features, labels, k=args.k, max_pairs_per_class=args.pairs, device=args.device,
            match_pair_precision=not args.fast, progress=update, on_graph=graphs,
        )  # fmt: skip
    finally:
        close()
    results, _ = stored_criteria(fs, args.labels, {"names": args.names, "k": args.k, "options": {}},
                                 lambda: run_criteria(fs.features, labels, names=args.names, graphs=graphs, k=args.k))  # fmt: skip
    table = compare_prune_points(results, curve, fraction=args.fraction)
    curves = {"convexity": curve.scores} | {
        n: r.values for n, r in results.items() if r.kind == "curve"
    }
    rows = [
        [layer] + [f"{v[i]:.4f}" for v in curves.values()] for i, layer in enumerate(curve.layers)
    ]
    print(_table(rows, ["layer", *curves]))
    print(_table([[r["criterion"], r["layer"], r["rule"]] for r in table],
                 ["criterion", "prune point", "rule"]))  # fmt: skip
    if out is not None:
        if out.suffix.lower() == ".json":
            doc = _criteria_doc(results, table) | {"features": fs.meta}
            atomic_write_bytes(out, json.dumps(doc, indent=2, default=str).encode())
        else:
            atomic_write_bytes(out, _criteria_csv(results).encode())
        print(f"wrote {out}")
    return 0


def cmd_euclidean(args: argparse.Namespace) -> int:
    """Euclidean convexity per hidden state of a fine-tuned run (its task's labels, its eval split)."""
    from functools import partial

    from core.io.atomic import atomic_write_json
    from core.training.euclidean import euclidean_convexity
    from core.training.finetune import FinetuneConfig, _model_inputs, load_classifier, load_split

    run = Path(args.run)
    checkpoint = run / "best" if (run / "best").is_dir() else run
    config_file = run / "config.json"
    if not config_file.is_file():
        raise CliError(
            f"{run} is not a run folder (no config.json); see 'python -m core jobs list'"
        )
    cfg = FinetuneConfig.from_dict(json.loads(config_file.read_text())["config"])
    split = args.split or cfg.eval_split
    data = load_split(cfg, split, max_clips=args.max_clips)
    clf, enc = load_classifier(checkpoint, device=args.device)
    update, close = _progress_bar("euclidean", not args.no_progress, unit="layer")
    try:
        results = euclidean_convexity(
            clf, partial(_model_inputs, enc), data.waves, data.labels,
            pairs_per_class=args.pairs, seed=args.pair_seed, progress=update,
        )  # fmt: skip
    finally:
        close()
    print(f"euclidean convexity of {checkpoint} ({cfg.task}, {split}: {len(data.labels)} clips, "
          f"{args.pairs} pairs/class, 10 points per segment)")  # fmt: skip
    print(_table([[r.layer, f"{r.score:.4f}", f"{r.sem:.4f}"] for r in results],
                 ["layer", "score", "±sem"]))  # fmt: skip
    if args.out:
        atomic_write_json(Path(args.out), {"checkpoint": str(checkpoint), "split": split,
                                           "results": [vars(r) for r in results]})  # fmt: skip
        print(f"wrote {args.out}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download and unpack Speech Commands v0.02 (resumable, sha256-checked) into its folder."""
    from core.data.datasets import download_speech_commands

    update, close = _progress_bar("speech commands", not args.no_progress, unit="B")
    try:
        root = download_speech_commands(
            args.root, url=args.url, sha256=args.sha256 or None, progress=update
        )
    finally:
        close()
    print(f"Speech Commands v0.02 ready at {root}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Load a model, keep layers 1..p, save it, and print parameter counts before and after."""
    from core.models.pruning import count_parameters, prune
    from core.models.registry import load_encoder

    enc = load_encoder(args.model, whisper_input=args.whisper_input, device="cpu")
    before = count_parameters(enc)
    n_layers = enc.n_layers
    prune(enc, args.p)
    after = count_parameters(enc)
    path = enc.save_pretrained(args.out)
    print(f"model: {enc.describe()}")
    rows = [[part, f"{before[part]:,}", f"{after[part]:,}", f"{before[part] - after[part]:,}"]
            for part in ("total", "front_end", "transformer", "head")]  # fmt: skip
    print(f"pruned at p={args.p}: kept transformer layers 1..{args.p} of {n_layers}")
    print(_table(rows, ["parameters", "before", "after", "removed"]))
    share = 100 * (1 - after["total"] / before["total"]) if before["total"] else 0.0
    print(f"removed {share:.1f}% of the parameters; saved to {path}")
    if enc.family == "whisper" and enc.input_mode == "trimmed":
        print("note: the saved Whisper encoder keeps the trimmed (1-s) position table")
    return 0


# --------------------------------------------------------------------------------------------------
# Parser


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _common() -> argparse.ArgumentParser:
    """Options every command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--threads", type=_positive, help="CPU threads for torch (default: torch's choice)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _selection_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    """Model, dataset and the selection / extraction options."""
    nargs = None if required else "?"
    p.add_argument(
        "model", nargs=nargs, help="preset key (see 'models'), Hugging Face id or model directory"
    )
    p.add_argument(
        "dataset", nargs=nargs, help="dataset key (see 'datasets'): sample, speech-commands, folder"
    )
    p.add_argument("--root", help="dataset folder (default: the dataset's own location)")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let a hub model run its own code (off by default; only for repositories you trust)",
    )
    p.add_argument(
        "--task",
        choices=("words", "speakers"),
        default="words",
        help="which task's clips: speakers keeps speakers with >= --min-clips clips (default: words)",
    )
    p.add_argument(
        "--split",
        choices=("all", "train", "validation", "test"),
        default="all",
        help="split of the task (default: all)",
    )
    p.add_argument(
        "--max-clips",
        type=_positive,
        help="seeded stratified subsample of at most this many clips (>= 1 per class)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the --max-clips subsample (default: 0)"
    )
    p.add_argument("--min-clips", type=_positive, help="speakers task: minimum clips per speaker")
    p.add_argument(
        "--whisper-input",
        choices=("trimmed", "padded"),
        default="trimmed",
        help="Whisper only: 'trimmed' runs the encoder on the 1-s clip (default, ~30x "
        "faster), 'padded' on the stock 30-s window; they give different features",
    )
    p.add_argument(
        "--batch-size",
        type=_positive,
        default=32,
        help="clips per forward pass (default: 32; halved on OOM)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for ``python -m core``."""
    from core.data.datasets import SPEECH_COMMANDS_SHA256, SPEECH_COMMANDS_URL

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Convexity Lab: layer-wise graph convexity of speech transformers, from the shell. "
        "Features are cached (shared with the dashboard) in $CONVEXITY_LAB_CACHE or <repo>/cache.",
        epilog=EXAMPLES,
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common()

    p = sub.add_parser("models", parents=[common], formatter_class=fmt,
                       help="list models, offline availability, parameters and layers",
                       epilog="example:\n  python -m core models")  # fmt: skip
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("datasets", parents=[common], formatter_class=fmt,
                       help="list datasets; with NAME or --root show word/speaker class counts",
                       epilog="examples:\n  python -m core datasets\n  python -m core datasets sample\n"
                              "  python -m core datasets --root ~/speech_commands_v0.02 --all")  # fmt: skip
    p.add_argument("name", nargs="?", help="dataset key: show its class counts")
    p.add_argument(
        "--root", help="dataset folder (a root with validation_list.txt is read as speech-commands)"
    )
    p.add_argument("--all", action="store_true", help="list every class, not only the 40 largest")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("extract", parents=[common], formatter_class=fmt,
                       help="extract mean-pooled per-layer features (cached)",
                       epilog="examples:\n  python -m core extract whisper-tiny.en-offline sample\n"
                              "  python -m core extract whisper-base-offline sample --whisper-input padded"
                              " --max-clips 100\n  python -m core extract ./my-model folder --root clips/"
                              " --task speakers --min-clips 5")  # fmt: skip
    _selection_args(p, required=True)
    p.add_argument(
        "--no-cache", action="store_true", help="compute without reading or writing the cache"
    )
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("convexity", parents=[common], formatter_class=fmt,
                       help="per-layer graph convexity of word and speaker labels",
                       epilog="examples:\n  python -m core convexity whisper-tiny.en-offline sample\n"
                              "  python -m core convexity whisper-base-offline sample --labels speaker --k 5"
                              " --out curves.csv\n  python -m core convexity --key 3fa2c1d9e0 --exhaustive"
                              " --out curves.json")  # fmt: skip
    _selection_args(p, required=False)
    p.add_argument(
        "--key", help="use cached features by key (or a unique prefix) instead of MODEL DATASET"
    )
    p.add_argument(
        "--labels",
        nargs="+",
        choices=("word", "speaker"),
        default=["word", "speaker"],
        help="label sets (default: both, sharing each layer's kNN graph)",
    )
    p.add_argument(
        "--k", type=_positive, default=10, help="neighbours in the kNN graph (default: 10)"
    )
    p.add_argument(
        "--pairs",
        type=_positive,
        default=5000,
        help="precision of this many sampled pairs per class (default: 5000)",
    )
    p.add_argument("--exhaustive", action="store_true", help="score every ordered pair (exact)")
    p.add_argument(
        "--pair-seed", type=int, default=0, help="seed of the pair sampling (default: 0)"
    )
    p.add_argument(
        "--out", help="write results to FILE.json (everything) or FILE.csv (layer x class rows)"
    )
    p.set_defaults(func=cmd_convexity)

    p = sub.add_parser("criteria", parents=[common], formatter_class=fmt,
                       help="convexity beside other layer-selection criteria, with prune points",
                       epilog="examples:\n  python -m core criteria whisper-tiny.en-offline sample\n"
                              "  python -m core criteria --key 3fa2c1d9e0 --labels speaker"
                              " --out criteria.json")  # fmt: skip
    _selection_args(p, required=False)
    p.add_argument("--key", help="use cached features by key (or a unique prefix)")
    p.add_argument("--labels", choices=("word", "speaker"), default="word",
                   help="the task's labels (default: word)")  # fmt: skip
    p.add_argument("--names", nargs="+", default=None,
                   help="criteria to compute (default: all; see core.geometry.criteria.CRITERIA)")  # fmt: skip
    p.add_argument("--k", type=_positive, default=10, help="neighbours (default: 10)")
    p.add_argument("--pairs", type=_positive, default=5000, help="convexity pair budget per class")
    p.add_argument("--fast", action="store_true",
                   help="convexity pilot sample only (faster, larger standard error)")  # fmt: skip
    p.add_argument("--fraction", type=float, default=0.95,
                   help="fraction of the maximum for curve rules (default: 0.95)")  # fmt: skip
    p.add_argument("--out", help="write FILE.json (everything) or FILE.csv (long format)")
    p.set_defaults(func=cmd_criteria)

    p = sub.add_parser("euclidean", parents=[common], formatter_class=fmt,
                       help="Euclidean convexity per layer of a fine-tuned run (Tetkova et al.)",
                       epilog="example:\n  python -m core euclidean cache/runs/<run-id> --pairs 20 --out e.json")  # fmt: skip
    p.add_argument(
        "run", help="a fine-tuning run folder (uses its best/ checkpoint and its config)"
    )
    p.add_argument("--split", help="split to sample pairs from (default: the run's eval split)")
    p.add_argument("--max-clips", type=_positive, default=None, help="cap on clips loaded")
    p.add_argument("--pairs", type=_positive, default=20, help="pairs per class (default: 20)")
    p.add_argument("--pair-seed", type=int, default=0, help="seed of the pair sampling")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--out", help="write the results to FILE.json")
    p.set_defaults(func=cmd_euclidean)

    p = sub.add_parser("download", parents=[common], formatter_class=fmt,
                       help="download Speech Commands v0.02 (2.3 GB; resumable, sha256-checked)",
                       epilog="example:\n  python -m core download --root ~/data/speech_commands_v0.02")  # fmt: skip
    p.add_argument("--root", help="target folder (default: the cache's datasets folder)")
    p.add_argument("--url", default=SPEECH_COMMANDS_URL, help="archive URL (a mirror or file://)")
    p.add_argument("--sha256", default=SPEECH_COMMANDS_SHA256,
                   help="expected archive sha256 (default: the official one; '' skips the check)")  # fmt: skip
    p.set_defaults(func=cmd_download)

    results_commands.register(sub)  # results list, export-results, import-results
    for name, text in JOB_COMMANDS.items():  # listed here, parsed by core.cli.jobs
        sub.add_parser(name, help=text, add_help=False)

    p = sub.add_parser("prune", parents=[common], formatter_class=fmt,
                       help="keep transformer layers 1..p, save the model, show parameter counts",
                       epilog="example:\n  python -m core prune whisper-tiny.en-offline 2 --out tiny-p2")  # fmt: skip
    p.add_argument("model", help="preset key, Hugging Face id or model directory")
    p.add_argument("p", type=int, help="prune point: keep layers 1..p (1 <= p <= L)")
    p.add_argument("--out", required=True, help="directory to save the pruned model into")
    p.add_argument(
        "--whisper-input",
        choices=("trimmed", "padded"),
        default="trimmed",
        help="Whisper only: save with the 1-s (default) or the 30-s position table",
    )
    p.set_defaults(func=cmd_prune)
    return parser


# --------------------------------------------------------------------------------------------------
# Entry point


def _quiet_libraries() -> None:
    """One-line warnings; no library chatter on stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    for name in ("transformers", "huggingface_hub", "numba", "urllib3", "filelock"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:  # fmt: skip
        _err(f"warning: {message}")

    warnings.showwarning = show
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:
        pass


def _known_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that are the user's situation, not a bug: one line and exit 2."""
    from core.data.audio import AudioError
    from core.data.datasets import DatasetError
    from core.data.features import FeatureError
    from core.geometry.convexity import ConvexityInputError
    from core.models.registry import ModelError
    from core.models.whisper_offline import OfflineWeightsError

    return (CliError, ModelError, DatasetError, FeatureError, ConvexityInputError,
            OfflineWeightsError, AudioError, ValueError, FileNotFoundError, PermissionError)  # fmt: skip


def _command(argv: list[str]) -> Callable[[], int]:
    """What to run: a job command handed to ``core.cli.jobs`` whole, or one of the commands here."""
    if argv and argv[0] in JOB_COMMANDS:
        from core.cli import jobs as jobs_cli

        return lambda: jobs_cli.main(argv)
    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        return int(args.func(args) or 0)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 1 unexpected error)."""
    run = _command(list(sys.argv[1:] if argv is None else argv))
    _quiet_libraries()
    debug = os.environ.get("CONVEXITY_LAB_DEBUG", "").strip() not in ("", "0")
    try:
        return run()
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if debug:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, _known_errors()):
            _err(f"error: {first}")
            return EXIT_ERROR
        if type(exc).__name__ == "OutOfMemoryError":
            _err(f"error: out of memory even at batch size 1 ({first})")
            return EXIT_ERROR
        _err(
            f"error: unexpected {type(exc).__name__}: {first} (CONVEXITY_LAB_DEBUG=1 shows the traceback)"
        )
        return 1
