"""Measure word and speaker convexity of the offline Whisper encoders on a clip folder, or compare two runs.

Writes ``data/sample/convexity_curves.json`` (the Home page's figure) from real measurements: features
through the feature cache (``core.data.features.extract_features``), curves through the results store
(``core.results.kinds.stored_convexity``), every clip, k = 10, exhaustive by default (exact: SE 0 and
flagged), or ``--target-se`` for a sampled estimate with its standard error. ``--compare A B`` prints a
Markdown table of two stored files state by state (used for Opus vs its lossless twin).

Examples::

    python scripts/sample_curves.py --out data/sample/convexity_curves.json
    python scripts/make_sample.py --out /tmp/opus --lossless-copy /tmp/flac --no-learnability
    python scripts/sample_curves.py --root /tmp/flac --out /tmp/flac_curves.json
    python scripts/sample_curves.py --compare data/sample/convexity_curves.json /tmp/flac_curves.json
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.sample_curves import (  # noqa: E402
    LABEL_SETS,
    ModelCurves,
    SampleCurves,
    read_sample_curves,
)
from core.geometry.curves import LayerCurve  # noqa: E402
from core.geometry.options import ConvexityOptions

MODELS = ("whisper-tiny.en-offline", "whisper-base-offline")


def machine() -> str:
    """CPU count and the 1/5/15-minute load average now (figures on a shared machine need it)."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()}-core CPU, load average {one:.1f} / {five:.1f} / {fifteen:.1f}"


def measure_model(
    model: str, dataset: str, root: Path, k: int, target_se: float | None
) -> ModelCurves:
    """Features (cached) and both label sets' curves (stored) of one model on every clip of ``root``."""
    from core.data.features import Selection, extract_features
    from core.results.kinds import stored_convexity

    t0 = time.perf_counter()
    fs = extract_features(model, Selection.of(dataset, root=str(root)), batch_size=32)
    t1 = time.perf_counter()
    labels = {"word": fs.words, "speaker": fs.speakers}
    if target_se is None:
        curves = stored_convexity(
            fs, labels, ConvexityOptions(k=k, max_pairs_per_class=None, seed=0)
        )
    else:
        curves = stored_convexity(fs, labels, ConvexityOptions(k=k, target_se=target_se, seed=0))
    t2 = time.perf_counter()

    def typed(name: str) -> LayerCurve:
        c = curves[name]
        return LayerCurve(
            scores=tuple(round(float(v), 4) for v in c.scores),
            sems=tuple(
                0.0 if e else round(float(v), 4) for v, e in zip(c.sems, c.exact, strict=True)
            ),
            exact=tuple(bool(e) for e in c.exact),
        )

    return ModelCurves(
        model=model,
        describe=str(fs.meta.get("describe", model)),
        n_clips=int(fs.features.shape[0]),
        word=typed("word"),
        speaker=typed("speaker"),
        feature_key=str(fs.key),
        extract_seconds=round(0.0 if fs.from_cache else t1 - t0, 1),
        convexity_seconds=round(t2 - t1, 1),
    )


def write_curves(path: Path, curves: SampleCurves) -> None:
    """Indented JSON, atomically, keys in the typed order (models as measured: tiny.en first)."""
    import json

    from core.io.atomic import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(curves.to_dict(), indent=2) + "\n").encode())


def measure(args: argparse.Namespace) -> SampleCurves:
    """Every model in turn; the file is rewritten after each, so a slow second model keeps the first."""
    settings = (
        f"k = {args.k}, every pair scored (exact)"
        if args.target_se is None
        else f"k = {args.k}, sampled to a layer SE <= {args.target_se:g}"
    ) + ", 1-s trimmed Whisper input, mean-pooled hidden states"
    command = "python scripts/sample_curves.py " + shlex.join(args.argv)
    done: list[ModelCurves] = []
    result = None
    for model in args.models:
        m = measure_model(model, args.dataset, args.root, args.k, args.target_se)
        done.append(m)
        print(
            f"{model}: {m.n_clips} clips, extract {m.extract_seconds} s, convexity "
            f"{m.convexity_seconds} s ({machine()})",
            flush=True,
        )
        for name in LABEL_SETS:
            c = m.curve(name)
            print(
                f"  {name:8s}"
                + " ".join(f"{s:.3f}" for s in c.scores)
                + ("  (exact)" if c.all_exact else "  sem " + " ".join(f"{v:.3f}" for v in c.sems))
            )
        result = SampleCurves(
            dataset=args.dataset,
            root=args.root.as_posix(),
            settings=settings,
            command=command,
            machine=machine(),
            models=tuple(done),
        )
        if args.out is not None:
            write_curves(args.out, result)
    assert result is not None
    return result


def compare_table(a: SampleCurves, b: SampleCurves, names: tuple[str, str]) -> str:
    """Markdown: one row per hidden state, one column per (model, label set), cells ``a / b``."""
    models = [m for m in a.names if m in b.names]
    cols = [(m, lab) for m in models for lab in LABEL_SETS]
    depth = max(a.model(m).n_layers for m in models) + 1
    short = {m: m.removeprefix("whisper-").removesuffix("-offline") for m in models}
    head = ["state"] + [f"{short[m]} {lab}: {names[0]} / {names[1]}" for m, lab in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for i in range(depth):
        row = [str(i)]
        for m, lab in cols:
            ca, cb = a.model(m).curve(lab), b.model(m).curve(lab)
            row.append(f"{ca.scores[i]:.3f} / {cb.scores[i]:.3f}" if i < len(ca.scores) else "")
        lines.append("| " + " | ".join(row) + " |")
    worst = ["max abs. difference"]
    for m, lab in cols:
        ca, cb = a.model(m).curve(lab), b.model(m).curve(lab)
        worst.append(f"{max(abs(x - y) for x, y in zip(ca.scores, cb.scores, strict=True)):.3f}")
    lines.append("| " + " | ".join(worst) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=Path("data/sample"), help="clip folder")
    p.add_argument("--dataset", default="sample", help="registry key whose rules read the folder")
    p.add_argument("--models", nargs="+", default=list(MODELS), help="models to measure")
    p.add_argument("--k", type=int, default=10, help="neighbours in the kNN graph (default: 10)")
    p.add_argument(
        "--target-se", type=float, default=None, help="sample to this layer SE (default: exact)"
    )
    p.add_argument("--out", type=Path, default=None, help="write the curves to this JSON file")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two files")
    p.add_argument("--names", nargs=2, default=("Opus", "lossless"), help="column names of A, B")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    from core.errors import LabError

    args = parse_args(argv)
    try:
        if args.compare:
            a, b = (read_sample_curves(p) for p in args.compare)
            print(compare_table(a, b, tuple(args.names)))
            return 0
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        measure(args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
