"""How the pages word an expected error: one short line."""

from __future__ import annotations

from core.errors import UnknownModelError


def one_line(exc: BaseException) -> str:
    """A short, single-line message for an expected error (no traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def model_error_line(exc: BaseException) -> str:
    """One line for the page, with a model that is not found worded for the dashboard."""
    if isinstance(exc, UnknownModelError):
        return (
            "model not found: choose a preset on Setup, or give a Hugging Face id or a local model "
            "folder (with config.json)"
        )
    return one_line(exc)
