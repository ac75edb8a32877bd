"""A plan's text: ``parse_plan`` reads what ``describe`` writes, and the forms people type."""

from __future__ import annotations

import itertools

import pytest

from core.errors import PruneError
from core.models.plans import PruningPlan, parse_plan


def test_every_plan_of_six_layers_round_trips_through_its_description() -> None:
    for size in range(1, 7):
        for kept in itertools.combinations(range(1, 7), size):
            plan = PruningPlan.keep(kept, 6)
            assert parse_plan(plan.describe(), 6) == plan, plan.describe()
            assert PruningPlan.from_key(plan.key()) == plan, plan.key()


@pytest.mark.parametrize("key", ["", "p8", "L6-k", "L6-k1-2,5", "L6-k7", "L6-k3-1"])
def test_a_key_that_is_no_plans_is_one_line(key: str) -> None:
    with pytest.raises(PruneError) as info:
        PruningPlan.from_key(key)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("drop 3-4", (1, 2, 5, 6)),
        ("keep 1-4", (1, 2, 3, 4)),
        ("keep 1-2, 5-6", (1, 2, 5, 6)),
        ("Keep 1,2 ,5", (1, 2, 5)),
        ("  drop 6 ", (1, 2, 3, 4, 5)),
        ("keep all", (1, 2, 3, 4, 5, 6)),
        ("keep all 6", (1, 2, 3, 4, 5, 6)),
    ],
)
def test_plan_texts_people_type(text: str, kept: tuple[int, ...]) -> None:
    assert parse_plan(text, 6).kept == kept


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "a plan reads like"),
        ("drop", "a plan reads like"),
        ("remove 3", "a plan reads like"),
        ("drop 0", "out of range"),
        ("keep 7", "out of range"),
        ("drop 2,2", "twice"),
        ("drop 1-6", "leaves no model"),
        ("keep 4,2", "increasing order"),
        ("keep all 12", "is for 12 layers"),
        ("drop 4-3", "runs backwards"),
    ],
)
def test_bad_plan_texts_are_one_line(text: str, error: str) -> None:
    with pytest.raises(PruneError, match=error) as info:
        parse_plan(text, 6)
    assert "\n" not in str(info.value)
