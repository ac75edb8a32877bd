"""``python -m core``: one argparse tree assembled from the command modules, and the error contract.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its commands and
sets ``func`` on each; adding a command group is one line here. Results go to stdout; progress and log
lines go through ``logging`` to stderr (INFO lines plain, warnings as ``warning: ...``). A
:class:`~core.errors.LabError` (the user's situation: unknown model, missing dataset, bad run id, bad
options) prints one ``error: ...`` line and exits 2; anything else is a bug and propagates with its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from core.errors import LabError
from core.results.origin import COMPUTED_ONLY_ENV

__all__ = ["COMMAND_MODULES", "EXIT_ERROR", "build_parser", "main"]

EXIT_ERROR = 2
COMMAND_MODULES = (
    "core.cli.data_commands",
    "core.cli.geometry_commands",
    "core.cli.diagnostics_commands",
    "core.cli.run_commands",
    "core.cli.grid_commands",
    "core.cli.results_commands",
    "core.cli.series_commands",
    "core.cli.plans_commands",
)

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
  python -m core finetune --model whisper-tiny.en-offline --prune 2 --epochs 3 --background
  python -m core jobs list
  python -m core jobs watch RUN-ID
"""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (what was wrong, where to look), exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: <command>: <message> (see <command> --help)`` and exit with status 2."""
        self.exit(
            EXIT_ERROR,
            f"error: {self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n",
        )


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of ``python -m core``: every module in COMMAND_MODULES registers its commands."""
    parser = OneLineParser(
        prog="python -m core",
        description="Convexity Lab: layer-wise graph convexity of speech transformers, from the shell. "
        "Features are cached (shared with the dashboard) in $CONVEXITY_LAB_CACHE or <repo>/cache.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--computed-only",
        action="store_true",
        help="use no stored result this installation did not compute (imported ones are recomputed)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is at the time (tests capture it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _PlainFormatter(logging.Formatter):
    """INFO lines as they are; warnings and errors prefixed ``warning:``/``error:``; one line each."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {' '.join(text.split())}"
        return text


def _configure_output() -> None:
    """Progress at INFO to stderr for core's loggers; libraries quiet; Python warnings in one line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_PlainFormatter())
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("core").setLevel(logging.INFO)
    for name in ("transformers", "huggingface_hub", "numba", "urllib3", "filelock"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def show(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        _err(f"warning: {message}")

    warnings.showwarning = show
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _check_device(args: argparse.Namespace) -> None:
    """Every command's ``--device``, checked once before any work (DeviceError: one line, exit 2)."""
    if getattr(args, "device", None) is not None:
        from core.geometry.validation import resolve_device

        resolve_device(args.device)


def _err(message: str) -> None:
    """Print one line to stderr."""
    print(" ".join(str(message).split()), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 interrupted); bugs raise."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    _configure_output()
    if args.computed_only:
        os.environ[COMPUTED_ONLY_ENV] = "1"  # run workers started from here inherit it
    try:
        _check_device(args)
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        return int(args.func(args) or 0)
    except LabError as exc:
        _err(f"error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
