"""Precision presets of the Convexity page and the engine settings each one asks for."""

from __future__ import annotations

from typing import Any

from core.geometry.sampling import DEFAULT_TARGET_SE

# A target standard error (the engine adds sources until it is met, or computes every pair when that is
# cheaper), the authors' pair budget, or every pair.
PRECISIONS: dict[str, dict[str, Any]] = {
    "± 0.01": {"target_se": 0.01},
    "± 0.005": {"target_se": DEFAULT_TARGET_SE},  # the CLI's default too: its curves open here
    "± 0.002": {"target_se": 0.002},
    "authors' 5,000 pairs": {"max_pairs_per_class": 5000},
    "exact": {"max_pairs_per_class": None},
}
