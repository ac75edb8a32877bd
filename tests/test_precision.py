"""One precision definition for the CLI and the dashboard."""

from __future__ import annotations

import argparse

import pytest

from core.cli.geometry_commands import precision_from_args
from core.errors import LabError
from core.geometry.options import ConvexityOptions
from core.results.precision import DEFAULT_PRECISION, PRESETS, Precision, preset


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"exhaustive": False, "pairs": None, "target_se": None, **kw})


def test_cli_options_map_to_the_dashboards_presets() -> None:
    assert precision_from_args(_args()) == DEFAULT_PRECISION == preset("± 0.005")
    assert precision_from_args(_args(exhaustive=True)) == preset("exact")
    assert precision_from_args(_args(pairs=5000)) == preset("authors' 5,000 pairs")
    assert precision_from_args(_args(target_se=0.002)) == preset("± 0.002")
    assert precision_from_args(_args(pairs=100, target_se=0.01)) == preset(
        "± 0.01"
    )  # the target wins


def test_a_precision_gives_the_options_of_the_store_request() -> None:
    assert DEFAULT_PRECISION.options() == ConvexityOptions(target_se=0.005)
    assert Precision.exact().options(k=5) == ConvexityOptions(k=5, max_pairs_per_class=None)
    assert Precision.pairs(300).options(ConvexityOptions(target_se=0.01)) == ConvexityOptions(
        max_pairs_per_class=300
    )
    assert set(PRESETS) == {"± 0.01", "± 0.005", "± 0.002", "authors' 5,000 pairs", "exact"}


@pytest.mark.parametrize(
    "bad", [{"target_se": 0.0}, {"target_se": 1.5}, {"max_pairs_per_class": 0}]
)
def test_bad_precision_is_one_line(bad: dict) -> None:
    with pytest.raises(LabError):
        Precision("x", **bad)
    with pytest.raises(LabError, match="unknown precision"):
        preset("± 7")
