"""Run kinds as one registry table: every kind has every part, and every layer reads its kind there."""

from __future__ import annotations

import dataclasses

import pytest

from core.errors import RunError
from core.runs.records import PROGRESS_VIEWS
from core.training.kinds import RUN_KINDS, VIEWS, RunKind, check_kinds, run_kind


def test_every_registered_kind_is_complete() -> None:
    check_kinds(RUN_KINDS)
    assert set(RUN_KINDS) == {"finetune", "sweep", "benchmark"}
    assert set(PROGRESS_VIEWS) == set(VIEWS)  # every view a kind may name has its reader


@pytest.mark.parametrize(
    "part", [f.name for f in dataclasses.fields(RunKind) if f.name != "points"]
)
def test_a_kind_missing_any_part_is_refused(part: str) -> None:
    broken = dataclasses.replace(RUN_KINDS["finetune"], **{part: None})
    with pytest.raises(RunError, match="finetune"):
        check_kinds({"finetune": broken})


def test_a_kind_with_a_wrong_part_is_refused() -> None:
    spec = RUN_KINDS["benchmark"]
    for wrong in (
        {"view": "pages"},
        {"result": "core.training.benchmark:NoSuchResult"},
        {"config": dict},
        {"run": "not callable"},
    ):
        with pytest.raises(RunError):
            check_kinds({"benchmark": dataclasses.replace(spec, **wrong)})


def test_an_unknown_kind_is_one_line_naming_the_kinds() -> None:
    with pytest.raises(
        RunError, match=r"unknown job kind 'train'; kinds: finetune, sweep, benchmark"
    ):
        run_kind("train")
