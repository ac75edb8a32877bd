"""Command-line options: the shared ones, and those generated from the config dataclasses.

:func:`config_options` turns every field of a config dataclass (``FinetuneConfig``, ``SweepConfig``)
into an option: ``--field-name`` typed from the annotation (``X | None`` also takes ``none``;
booleans get ``--x/--no-x``; lists are comma-separated), help text and choices from the field's
``metadata``, the default shown from the dataclass. Options the user does not give are left out of
the namespace, so the dataclass defaults stay the only defaults (:func:`config_from_args`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from core.io.records import Record
from core.training.configs import setting_fields

R = TypeVar("R", bound=Record)

__all__ = [
    "clip_options",
    "common_options",
    "config_from_args",
    "config_options",
    "executor_from_args",
    "executor_options",
    "option_name",
    "out_path",
    "positive_int",
    "precision_options",
    "selection_options",
]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """argparse type: a random seed (an integer 0 .. 2**32 - 1, what numpy and torch accept)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a seed (an integer >= 0), got {text!r}"
        ) from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed between 0 and 2**32 - 1, got {text!r}")
    return value


def common_options() -> argparse.ArgumentParser:
    """Options every command takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def executor_options(p: argparse.ArgumentParser, *, unit: str = "run") -> None:
    """Where the command's runs execute: ``--executor local|ray``, ``--address`` and Ray task resources.

    One definition for every command that launches runs (``finetune``, ``sweep``, ``grid``); defaults
    come from ``$CONVEXITY_LAB_EXECUTOR`` / ``$RAY_ADDRESS`` (see :func:`executor_from_args`).
    """
    g = p.add_argument_group("where it runs")
    g.add_argument(
        "--executor",
        choices=("local", "ray"),
        default=None,
        help="local processes or a Ray cluster (default: $CONVEXITY_LAB_EXECUTOR, else local)",
    )
    g.add_argument(
        "--address",
        default=None,
        help="Ray cluster: auto, host:6379 or ray://host:10001 (default: $RAY_ADDRESS, "
        "else a private local cluster)",
    )
    g.add_argument(
        f"--gpus-per-{unit}",
        dest="gpus_per_task",
        type=float,
        default=None,
        metavar="N",
        help="GPUs per Ray task (default: 1 if the cluster has GPUs, else 0)",
    )
    g.add_argument(
        f"--cpus-per-{unit}",
        dest="cpus_per_task",
        type=float,
        default=None,
        metavar="N",
        help="CPUs per Ray task (default: 1)",
    )
    g.add_argument(
        "--results",
        choices=("auto", "shared", "object-store"),
        default=None,
        help="how Ray workers return results (default: auto)",
    )


def executor_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~core.runs.spec.ExecutorSpec` the options of :func:`executor_options` name."""
    from core.runs.spec import executor_spec

    return executor_spec(
        args.executor,
        args.address,
        num_gpus=args.gpus_per_task,
        num_cpus=args.cpus_per_task,
        results=args.results,
    )


def selection_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    """Model, dataset and the selection / extraction options."""
    nargs = None if required else "?"
    p.add_argument(
        "model", nargs=nargs, help="preset key (see 'models'), Hugging Face id or model directory"
    )
    p.add_argument(
        "dataset", nargs=nargs, help="dataset key (see 'datasets'): sample, speech-commands, folder"
    )
    clip_options(p)


def clip_options(p: argparse.ArgumentParser) -> None:
    """Which clips of the dataset and how they are run through a model (all but model and dataset)."""
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
        type=positive_int,
        help="seeded stratified subsample of at most this many clips (>= 1 per class)",
    )
    p.add_argument(
        "--seed", type=seed_int, default=0, help="seed of the --max-clips subsample (default: 0)"
    )
    p.add_argument(
        "--min-clips", type=positive_int, help="speakers task: minimum clips per speaker"
    )
    p.add_argument(
        "--whisper-input",
        choices=("trimmed", "padded"),
        default="trimmed",
        help="Whisper only: 'trimmed' runs the encoder on the 1-s clip (default, ~30x "
        "faster), 'padded' on the stock 30-s window; they give different features",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=32,
        help="clips per forward pass (default: 32; halved on OOM)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")


def option_name(field_name: str) -> str:
    """``--field-name`` for a dataclass field."""
    return "--" + field_name.replace("_", "-")


def _optional(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """A converter that also reads ``none`` as None (to clear a field whose default is a value)."""

    def parse(text: str) -> Any:
        return None if text.strip().lower() == "none" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _comma_list(text: str) -> list[Any]:
    """``a,3,b`` -> ``["a", 3, "b"]`` (integers where an item is one)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.lstrip("-").isdigit() else item for item in items]


def _field_type(hint: Any) -> tuple[Any, bool]:
    """The base type of an annotation and whether it admits None."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else str), len(rest) < len(args)
    return (typing.get_origin(hint) or hint), False


def _default_text(f: dataclasses.Field) -> str:
    """`` (default: X)`` for a field, or `` (required)``."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return " (required)"
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    return f" (default: {'none' if value is None else value})"


def config_options(
    parser: argparse.ArgumentParser,
    config_cls: type,
    *,
    aliases: Mapping[str, Sequence[str]] | None = None,
    exclude: Sequence[str] = (),
) -> None:
    """Add one option per field of dataclass ``config_cls`` (see the module docstring)."""
    aliases = aliases or {}
    group = parser.add_argument_group(f"{config_cls.__name__} settings")
    for f, hint in setting_fields(config_cls):
        if f.name in exclude or f.metadata.get("cli") is False:
            continue
        flags = [option_name(f.name), *aliases.get(f.name, ())]
        base, optional = _field_type(hint)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        text = f.metadata.get("help", "") + _default_text(f)
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": text}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            convert = _comma_list if base is list else base
            kwargs["type"] = _optional(convert) if optional else convert
            kwargs["required"] = required
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
            kwargs["metavar"] = f.name.upper()
        group.add_argument(*flags, **kwargs)


def config_from_args(
    config_cls: type[R], args: argparse.Namespace, preset: Mapping[str, Any] | None = None
) -> R:
    """An instance of ``config_cls`` from the options given (over ``preset``, over the field defaults)."""
    values = dict(preset or {})
    values.update(
        {
            f.name: getattr(args, f.name)
            for f, _ in setting_fields(config_cls)
            if hasattr(args, f.name)
        }
    )
    return config_cls.from_dict(values)


def precision_options(p: argparse.ArgumentParser, *, default_se: float) -> None:
    """``--target-se`` / ``--pairs`` / ``--exhaustive``: how precisely each convexity curve is asked for."""
    p.add_argument(
        "--pairs",
        type=positive_int,
        default=None,
        help="the authors' scheme: the precision of this many sampled pairs per class (they use 5000)",
    )
    p.add_argument("--exhaustive", action="store_true", help="score every ordered pair (exact)")
    p.add_argument(
        "--target-se",
        type=float,
        default=None,
        help="sample sources until the layer score's standard error is at most this (default: "
        f"{default_se:g}, as on the dashboard); exhaustive where that would cost more than "
        "~70%% of all trees; overrides --pairs",
    )


def out_path(text: str | None, suffixes: tuple[str, ...] = (".json", ".csv")) -> Path | None:
    """``--out`` as a path, refused in one line unless it ends in one of ``suffixes``."""
    from core.errors import CliError

    out = Path(text) if text else None
    if out is None:
        return None
    if out.suffix.lower() not in suffixes:
        raise CliError(f"--out must end in {' or '.join(suffixes)}, got {out.name!r}")
    if out.is_dir():
        raise CliError(f"--out {out} is a folder; give a file name")
    folder = _existing_parent(out.parent)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise CliError(f"--out {out}: cannot write in {folder}")
    return out


def _existing_parent(path: Path) -> Path:
    """The nearest existing folder at or above ``path`` (where a missing folder would be created)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
