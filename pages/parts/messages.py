"""How the pages word an expected error: one short line."""

from __future__ import annotations


def one_line(exc: BaseException) -> str:
    """A short, single-line message for an expected error (no traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."
