"""Commands about layer geometry: ``convexity``, ``criteria``, ``umap`` and ``euclidean`` (of a fine-tuned run)."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.cli.data_commands import describe_features, extract_from_args, speaker_regex_option
from core.cli.options import (
    common_options,
    out_path,
    positive_int,
    precision_options,
    seed_int,
    selection_options,
)
from core.cli.output import progress_bar, text_table
from core.cli.size_output import size_options
from core.cli.statistics_output import statistics_options, wants_statistics
from core.errors import CliError
from core.geometry.options import DEFAULT_K, ConvexityOptions, UmapOptions
from core.geometry.sampling import DEFAULT_TARGET_SE
from core.results.precision import DEFAULT_PRECISION, Precision

__all__ = [
    "KEY_HELP",
    "check_k",
    "cmd_convexity",
    "cmd_criteria",
    "cmd_euclidean",
    "cmd_umap",
    "feature_set_options",
    "features_for",
    "k_option",
    "label_sets_for",
    "pair_seed_option",
    "register",
]


def label_sets_for(fs: Any, names: Sequence[str]) -> dict[str, list[str]]:
    """The requested label sets; speaker labels must exist for every clip."""
    out: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        labels = fs.labels(name)
        if name == "speaker" and any(not s for s in labels):
            missing = sum(1 for s in labels if not s)
            raise CliError(
                f"{missing} clip(s) have no speaker id in their file name; use --labels word or "
                "--speaker-regex REGEX (its group named 'speaker', else its first group)"
            )
        out[name] = list(labels)
    return out


def _write_out(
    path: Path,
    curves: dict[str, Any],
    fs: Any,
    settings: dict[str, Any],
    stats: Any = None,
    paired: Sequence[Any] = (),
) -> None:
    """Save curves as JSON (everything) or CSV (one row per layer and class), atomically; with curve
    statistics the JSON carries them whole and the CSV's layer rows gain chance and interval columns."""
    from core.cli.statistics_output import statistics_csv_columns
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
        if stats is not None:
            doc["statistics"] = stats.to_dict()
            doc["prune_point_stability"] = {
                n: s.stability.to_dict() for n, s in stats.sets.items() if s.stability is not None
            }
        if paired:
            doc["paired"] = [d.to_dict() for d in paired]
        atomic_write_bytes(path, json.dumps(doc, indent=2, default=str).encode())
    else:
        buf = io.StringIO()
        fields = ["labels", "layer", "class", "score", "sem", "n_points", "n_pairs"]
        extra = [
            "chance",
            "chance_sd",
            "normalised",
            "interval_low",
            "interval_high",
            "population_se",
        ]
        if stats is not None:
            fields += extra
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
        writer.writeheader()
        for name, c in curves.items():
            for row in c.to_records():
                if row["class"] is None:
                    row |= statistics_csv_columns(stats, name, list(c.layers).index(row["layer"]))
                writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
        atomic_write_bytes(path, buf.getvalue().encode())


def features_for(args: argparse.Namespace) -> Any:
    """Cached features by ``--key``, or extracted (and cached) for MODEL DATASET."""
    from core.data.features import load_cached_features

    if args.key:
        if args.model or args.dataset:
            raise CliError("give either --key or MODEL DATASET, not both")
        return load_cached_features(args.key)
    if not (args.model and args.dataset):
        raise CliError("give MODEL DATASET (e.g. whisper-tiny.en-offline sample) or --key KEY")
    return extract_from_args(args)


def check_k(k: int, fs: Any) -> None:
    """A kNN graph needs k < N points: said in terms of the option, before any layer is computed."""
    n = int(fs.features.shape[0])
    if not 1 <= k < n:
        raise CliError(f"--k {k} needs more clips: k must be between 1 and N-1 = {n - 1}")


def _fraction(text: str) -> float:
    """argparse type: a float in (0, 1]."""
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def precision_from_args(args: argparse.Namespace) -> Precision:
    """Every pair, the authors' P pairs, or a target SE (the default: the dashboard's, so a curve
    computed here opens there as is)."""
    if args.exhaustive:
        return Precision.exact()
    if args.pairs is not None and args.target_se is None:
        return Precision.pairs(args.pairs)
    return DEFAULT_PRECISION if args.target_se is None else Precision.target(args.target_se)


def cmd_convexity(args: argparse.Namespace) -> int:
    """Graph convexity per layer for word and/or speaker labels, sharing one kNN graph per layer."""
    from core.cli.size_output import check_size_args, check_size_reached, size_comparison
    from core.cli.statistics_output import check_resampling, check_statistics_args
    from core.results.kinds import convexity_entry, decode_curves  # the engine through the store

    out = out_path(args.out)
    precision = precision_from_args(args)  # a bad precision is refused before any extraction
    check_statistics_args(args)
    check_size_args(args)
    fs = features_for(args)
    print("\n".join(describe_features(fs)))
    labels = label_sets_for(fs, args.labels)
    check_k(args.k, fs)
    check_resampling(fs, list(labels), args.resamples)
    check_size_reached(args, labels)
    other = _compare_features(args, fs) if args.compare else None
    update, close = progress_bar("convexity", not args.no_progress)
    try:
        options = precision.options(k=args.k, seed=args.pair_seed, device=args.device)
        entry, from_store = convexity_entry(fs, labels, options, progress=update)
    finally:
        close()
    curves = decode_curves(entry.data)
    if from_store and not entry.origin.is_computed:
        print(
            f"stored result {entry.key[:12]}: {entry.origin.describe()} "
            f"(check it: python -m core results verify {entry.key[:12]})"
        )
    first = next(iter(curves.values())).results[0]
    _print_curves(curves, fs, f"k={args.k}, {precision.describe()}")
    stats, paired = _statistics(args, fs, list(labels), precision, other)
    options = precision.options(k=args.k, seed=args.pair_seed, device=args.device)
    sized = size_comparison(args, fs, list(labels), options)
    if sized:
        print("\n".join(sized))
    if out is not None:
        settings = dict(first.settings, labels=list(curves))
        settings.pop("layer", None)
        _write_out(out, curves, fs, settings, stats, paired)
        print(f"wrote {out}")
    return 0


def _print_curves(curves: dict[str, Any], fs: Any, settings: str) -> None:
    """The settings and estimator, each label set's classes, then score and sem per layer and set."""
    estimator = next(iter(curves.values())).results[0].settings["estimator"]
    print(
        f"graph convexity: {settings} ({estimator}); "
        "sem = standard error of the estimate (0 where exact)"
    )
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
    print(text_table(rows, header))
    if fs.meta.get("final_layer_norm"):
        print(
            f"note: layer {fs.n_layers} includes the encoder's final LayerNorm (layers below do not)"
        )


def _compare_features(args: argparse.Namespace, fs: Any) -> Any:
    """The ``--compare`` feature set: cached, of the very same clips in the same order."""
    from core.data.features import load_cached_features

    other = load_cached_features(args.compare)
    if list(other.paths) != list(fs.paths):
        raise CliError(
            f"--compare {args.compare}: its clips differ from these ({len(other.paths)} vs "
            f"{len(fs.paths)} clips, or another order); paired differences need the same clips"
        )
    if other.key == fs.key:
        raise CliError("--compare names the same feature set")
    return other


def _statistics(
    args: argparse.Namespace, fs: Any, names: list[str], precision: Precision, other: Any
) -> tuple[Any, list[Any]]:
    """Chance, intervals and prune-point stability (stored), and paired differences vs ``other``."""
    from core.cli.statistics_output import paired_lines, statistics_lines, statistics_of
    from core.geometry.paired import paired_difference
    from core.results.kinds import stored_statistics

    if not wants_statistics(args):
        return None, []
    options = precision.options(k=args.k, seed=args.pair_seed, device=args.device)
    results = []
    for which in [fs] + ([other] if other is not None else []):
        update, close = progress_bar("curve statistics", not args.no_progress, unit="layer")
        try:
            results.append(
                stored_statistics(which, names, options, statistics_of(args), progress=update)
            )
        finally:
            close()
    print("\n".join(statistics_lines(results[0])))
    paired = []
    if other is not None:
        a_name = fs.meta.get("model_key") or fs.key[:10]
        b_name = other.meta.get("model_key") or other.key[:10]
        if a_name == b_name:
            a_name, b_name = fs.key[:10], other.key[:10]
        for name in names:
            a, b = results[0].sets[name].interval, results[1].sets[name].interval
            if a is None or b is None:
                raise CliError(
                    f"{name}: no population interval to compare; --compare needs --resamples"
                )
            paired.append(paired_difference(a, b, f"{a_name} ({name})", f"{b_name} ({name})"))
        print("\n".join(paired_lines(paired)))
    return results[0], paired


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
    from core.cli.statistics_output import check_resampling
    from core.geometry.criteria import CRITERIA

    out = out_path(args.out)
    fs = features_for(args)
    print("\n".join(describe_features(fs)))
    labels = label_sets_for(fs, [args.labels])[args.labels]
    check_k(args.k, fs)
    unknown = sorted(set(args.names or ()) - set(CRITERIA))
    if unknown:
        raise CliError(f"unknown criteria {unknown}; known: {', '.join(CRITERIA)}")
    check_resampling(fs, [args.labels], args.resamples)
    options = ConvexityOptions(
        k=args.k,
        max_pairs_per_class=args.pairs,
        device=args.device,
        match_pair_precision=not args.fast,
    )
    found = _criteria(args, fs, labels, options)
    _print_criteria(found)
    stats = _criteria_statistics(args, fs, options) if wants_statistics(args) else None
    if out is not None:
        _write_criteria(out, fs, found, stats)
    return 0


@dataclass(frozen=True)
class _Criteria:
    """What ``criteria`` found: the convexity curve, every criterion's result and the prune points."""

    curve: Any  # ConvexityCurve
    results: dict[str, Any]  # criterion -> CriterionResult
    table: list[dict[str, Any]]  # one proposed prune point per criterion


def _criteria(
    args: argparse.Namespace, fs: Any, labels: Sequence[str], options: ConvexityOptions
) -> _Criteria:
    """The convexity curve (its kNN graphs kept), then the criteria on those graphs (through the
    store) and each one's prune point."""
    from core.geometry.convexity import convexity_curve
    from core.geometry.criteria import GraphCollector, compare_prune_points
    from core.results.kinds import criteria_entry, decode_criteria

    graphs = GraphCollector()
    update, close = progress_bar("convexity", not args.no_progress)
    try:
        curve = convexity_curve(fs.features, labels, options, progress=update, on_graph=graphs)
    finally:
        close()
    # the dashboard's request for these inputs: a set computed here opens there as is
    entry, _ = criteria_entry(fs, args.labels, k=args.k, names=args.names, graphs=graphs)
    results = decode_criteria(entry)
    table = compare_prune_points(results, curve, fraction=args.fraction)
    return _Criteria(curve, results, table)


def _print_criteria(found: _Criteria) -> None:
    """Convexity and every curve criterion per layer, then each criterion's prune point and rule."""
    curve = found.curve
    curves = {"convexity": curve.scores} | {
        n: r.values for n, r in found.results.items() if r.kind == "curve"
    }
    rows = [
        [layer] + [f"{v[i]:.4f}" for v in curves.values()] for i, layer in enumerate(curve.layers)
    ]
    print(text_table(rows, ["layer", *curves]))
    print(
        text_table(
            [[r["criterion"], r["layer"], r["rule"]] for r in found.table],
            ["criterion", "prune point", "rule"],
        )
    )


def _criteria_statistics(args: argparse.Namespace, fs: Any, options: ConvexityOptions) -> Any:
    """The convexity curve's statistics (stored), with the curve rules at ``--fraction``; printed."""
    from core.cli.statistics_output import statistics_lines, statistics_of
    from core.results.kinds import stored_statistics

    update, close = progress_bar("curve statistics", not args.no_progress, unit="layer")
    try:
        stats = stored_statistics(
            fs,
            [args.labels],
            options,
            statistics_of(args).with_(fraction=args.fraction),
            progress=update,
        )
    finally:
        close()
    print("\n".join(statistics_lines(stats)))
    return stats


def _write_criteria(out: Path, fs: Any, found: _Criteria, stats: Any) -> None:
    """Save the criteria as JSON (everything, with the statistics) or CSV (long format)."""
    from core.io.atomic import atomic_write_bytes

    if out.suffix.lower() == ".json":
        doc = _criteria_doc(found.results, found.table) | {"features": fs.meta}
        if stats is not None:
            doc["convexity_statistics"] = stats.to_dict()
        atomic_write_bytes(out, json.dumps(doc, indent=2, default=str).encode())
    else:
        atomic_write_bytes(out, _criteria_csv(found.results).encode())
    print(f"wrote {out}")


def cmd_umap(args: argparse.Namespace) -> int:
    """Aligned 2-D UMAP layouts of every hidden state, into the results store (the Projections page's)."""
    from core.results.kinds import umap_entry

    fs = features_for(args)
    print("\n".join(describe_features(fs)))
    update, close = progress_bar("umap", not args.no_progress, unit="layer")
    try:
        given = {"n_neighbors": args.neighbors, "seed": args.umap_seed}
        options = UmapOptions(**{name: value for name, value in given.items() if value is not None})
        entry, hit = umap_entry(fs, options, progress=update)
    finally:
        close()
    layout = entry.arrays["layout"]
    if hit or entry.origin.kept:
        where = "loaded from" if hit else "stored in"
        print(
            f"UMAP layouts {tuple(layout.shape)} {where} the results store (key {entry.key[:12]})"
        )
    else:
        print(f"UMAP layouts {tuple(layout.shape)} computed (not kept: see the warning)")
    if args.out:
        from core.io.atomic import atomic_write_bytes

        buf = io.BytesIO()
        np.save(buf, layout)
        atomic_write_bytes(Path(args.out), buf.getvalue())
        print(f"wrote {args.out}")
    return 0


def cmd_euclidean(args: argparse.Namespace) -> int:
    """Euclidean convexity per hidden state of a fine-tuned run (its task's labels, its test split)."""
    from functools import partial

    from core.io.atomic import atomic_write_json
    from core.io.run_folder import RunFolder
    from core.models.classifier import load_classifier, model_inputs
    from core.runs.folders import RUN_ID_PATTERN, run_dir
    from core.training.configs import FinetuneConfig
    from core.training.euclidean import euclidean_convexity
    from core.training.task_data import load_split

    run = Path(args.run)
    if not run.exists() and RUN_ID_PATTERN.fullmatch(args.run):
        run = run_dir(args.run)  # a run id (RunError if there is no such run)
    folder = RunFolder(run)
    best = folder.file(RunFolder.BEST_MODEL)
    checkpoint = best if best.is_dir() else run
    spec = folder.read_spec()
    if spec is None:
        raise CliError(
            f"{run} is not a run folder (no {RunFolder.CONFIG}); see 'python -m core jobs list'"
        )
    cfg = FinetuneConfig.from_dict(dict(spec.config))
    split = args.split or cfg.data.test_split or cfg.data.eval_split
    data = load_split(cfg, split, max_clips=args.max_clips)
    clf, enc = load_classifier(checkpoint, device=args.device)
    update, close = progress_bar("euclidean", not args.no_progress, unit="layer")
    try:
        results = euclidean_convexity(
            clf,
            partial(model_inputs, enc),
            data.waves,
            data.labels,
            pairs_per_class=args.pairs,
            seed=args.pair_seed,
            progress=update,
        )
    finally:
        close()
    print(
        f"euclidean convexity of {checkpoint} ({cfg.data.task}, {split}: {len(data.labels)} clips, "
        f"{args.pairs} pairs/class, 10 points per segment)"
    )
    print(
        text_table(
            [[r.layer, f"{r.score:.4f}", f"{r.sem:.4f}"] for r in results],
            ["layer", "score", "±sem"],
        )
    )
    if args.out:
        atomic_write_json(
            Path(args.out),
            {"checkpoint": str(checkpoint), "split": split, "results": [vars(r) for r in results]},
        )
        print(f"wrote {args.out}")
    return 0


KEY_HELP = "use cached features by key (or a unique prefix)"


def feature_set_options(p: argparse.ArgumentParser, *, key_help: str = KEY_HELP) -> None:
    """MODEL DATASET with the selection options and ``--speaker-regex``, or ``--key``: the features a
    command reads (see :func:`features_for`)."""
    selection_options(p, required=False)
    speaker_regex_option(p)
    p.add_argument("--key", help=key_help)


def k_option(p: argparse.ArgumentParser, *, help_text: str = "neighbours") -> None:
    """``--k``: neighbours in the kNN graph (default: the engine's)."""
    p.add_argument(
        "--k",
        type=positive_int,
        default=DEFAULT_K,
        help=f"{help_text} (default: {DEFAULT_K})",
    )


def pair_seed_option(p: argparse.ArgumentParser, *, help_text: str) -> None:
    """``--pair-seed``: the seed of the sampled pairs."""
    p.add_argument("--pair-seed", type=seed_int, default=0, help=help_text)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``convexity``, ``criteria``, ``umap`` and ``euclidean``."""
    _add_convexity(sub)
    _add_criteria(sub)
    _add_umap(sub)
    _add_euclidean(sub)


def _add_convexity(sub: argparse._SubParsersAction) -> None:
    """The ``convexity`` command: curves of one or both label sets, with statistics and sizes."""
    p = sub.add_parser(
        "convexity",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="per-layer graph convexity of word and speaker labels",
        epilog="examples:\n  python -m core convexity whisper-tiny.en-offline sample\n"
        "  python -m core convexity whisper-base-offline sample --labels speaker --k 5"
        " --out curves.csv\n  python -m core convexity --key 3fa2c1d9e0 --exhaustive"
        " --out curves.json",
    )
    feature_set_options(p, key_help=f"{KEY_HELP} instead of MODEL DATASET")
    p.add_argument(
        "--labels",
        nargs="+",
        choices=("word", "speaker"),
        default=["word", "speaker"],
        help="label sets (default: both, sharing each layer's kNN graph)",
    )
    k_option(p, help_text="neighbours in the kNN graph")
    precision_options(p, default_se=DEFAULT_TARGET_SE)
    pair_seed_option(p, help_text="seed of the pair sampling (default: 0)")
    p.add_argument(
        "--out", help="write results to FILE.json (everything) or FILE.csv (layer x class rows)"
    )
    statistics_options(p, compare=True)
    size_options(p)
    p.set_defaults(func=cmd_convexity)


def _add_criteria(sub: argparse._SubParsersAction) -> None:
    """The ``criteria`` command: convexity beside the other layer-selection criteria."""
    p = sub.add_parser(
        "criteria",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="convexity beside other layer-selection criteria, with prune points",
        epilog="examples:\n  python -m core criteria whisper-tiny.en-offline sample\n"
        "  python -m core criteria --key 3fa2c1d9e0 --labels speaker"
        " --out criteria.json",
    )
    feature_set_options(p)
    p.add_argument(
        "--labels",
        choices=("word", "speaker"),
        default="word",
        help="the task's labels (default: word)",
    )
    p.add_argument(
        "--names",
        nargs="+",
        default=None,
        help="criteria to compute (default: all; see core.geometry.criteria.CRITERIA)",
    )
    k_option(p)
    p.add_argument(
        "--pairs", type=positive_int, default=5000, help="convexity pair budget per class"
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="convexity pilot sample only (faster, larger standard error)",
    )
    p.add_argument(
        "--fraction",
        type=_fraction,
        default=0.95,
        help="fraction of the maximum for curve rules (default: 0.95)",
    )
    p.add_argument("--out", help="write FILE.json (everything) or FILE.csv (long format)")
    statistics_options(p, compare=False)
    p.set_defaults(func=cmd_criteria)


def _add_umap(sub: argparse._SubParsersAction) -> None:
    """The ``umap`` command: aligned 2-D layouts of every hidden state."""
    p = sub.add_parser(
        "umap",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="aligned 2-D UMAP of every hidden state (the dashboard's Projections)",
        epilog="example:\n  python -m core umap whisper-tiny.en-offline sample --out umap.npy",
    )
    feature_set_options(p)
    p.add_argument(
        "--neighbors",
        type=positive_int,
        default=None,
        help="UMAP neighbours on the exact kNN graph (default: the engine's, 15)",
    )
    p.add_argument(
        "--umap-seed", type=int, default=None, help="UMAP seed (default: the engine's, 0)"
    )
    p.add_argument("--out", help="also write the layouts (L+1, N, 2) to FILE.npy")
    p.set_defaults(func=cmd_umap)


def _add_euclidean(sub: argparse._SubParsersAction) -> None:
    """The ``euclidean`` command: Euclidean convexity of a fine-tuned run."""
    p = sub.add_parser(
        "euclidean",
        parents=[common_options()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="Euclidean convexity per layer of a fine-tuned run (Tetkova et al.)",
        epilog="example:\n  python -m core euclidean cache/runs/<run-id> --pairs 20 --out e.json",
    )
    p.add_argument(
        "run", help="a fine-tuning run id or folder (uses its best/ checkpoint and its config)"
    )
    p.add_argument("--split", help="split to sample pairs from (default: the run's eval split)")
    p.add_argument("--max-clips", type=positive_int, default=None, help="cap on clips loaded")
    p.add_argument("--pairs", type=positive_int, default=20, help="pairs per class (default: 20)")
    pair_seed_option(p, help_text="seed of the pair sampling")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--out", help="write the results to FILE.json")
    p.set_defaults(func=cmd_euclidean)
