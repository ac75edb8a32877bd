"""Plain-text output of the command line: tables, parameter counts and progress bars (tqdm, on stderr)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["format_params", "progress_bar", "text_table"]


def format_params(n: int | None) -> str:
    """12.3M style parameter count."""
    return "?" if n is None else f"{n / 1e6:.1f}M"


def text_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Left-aligned plain-text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def progress_bar(
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
