"""How many repetitions the curve statistics accept: light to import, so the CLI's ``--help`` can state
them without loading the engine."""

from __future__ import annotations

__all__ = ["MAX_PERMUTATIONS", "MAX_RESAMPLES", "MAX_SEEDS"]

MAX_PERMUTATIONS = 100  # beyond this the chance mean moves by less than its own spread / 10
MAX_RESAMPLES = 200  # beyond this the interval's width changes by < 5 %; the cost keeps growing
MAX_SEEDS = 20
