"""Result kinds as one registry table: every kind has every part, the store reads kinds there, and a
kind missing a part is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.errors import ResultError
from core.results.registry import (
    RESULT_KINDS,
    KindParts,
    ResultKind,
    check_kinds,
    check_parts,
    result_kind,
)
from core.results.store import KINDS


def test_every_registered_kind_is_complete() -> None:
    check_kinds(RESULT_KINDS)
    assert tuple(RESULT_KINDS) == KINDS
    assert {
        "convexity",
        "criteria",
        "umap",
        "finetune-convexity",
        "grid",
        "series",
        "aligned-umap",
        "diagnostics",
        "curve-statistics",
    } <= set(RESULT_KINDS)


@pytest.mark.parametrize("part", [f.name for f in dataclasses.fields(KindParts)])
def test_a_kind_missing_any_part_is_refused(part: str) -> None:
    broken = dataclasses.replace(RESULT_KINDS["convexity"].parts, **{part: None})
    with pytest.raises(ResultError, match=part):
        check_parts("convexity", broken)


def test_a_kind_without_its_module_or_parts_is_refused() -> None:
    for wrong in (
        ResultKind("made-up", None, "core.results.kinds.no_such_kind"),
        ResultKind("made-up", None, "core.results.kinds.entry"),  # a module without PARTS
        ResultKind("made-up", "core.geometry.no_such_engine", "core.results.kinds.convexity"),
        ResultKind("made-up", None, ""),
    ):
        with pytest.raises(ResultError, match="made-up"):
            check_kinds({"made-up": wrong})
    with pytest.raises(ResultError, match="names itself"):
        check_kinds({"made-up": ResultKind("made-up", None, "core.results.kinds.umap")})
    with pytest.raises(ResultError, match="registered as"):
        check_kinds({"other": RESULT_KINDS["umap"]})
    with pytest.raises(ResultError, match="unknown result kind"):
        result_kind("curves")


@pytest.mark.parametrize("name", [n for n in RESULT_KINDS if n != "finetune-convexity"])
def test_every_kind_schema_refuses_data_that_is_not_its_own(name: str) -> None:
    """The store checks each read against the kind's schema: an emptied ``data`` reads as missing
    (a run's curves are optional stage by stage, so an empty one is valid)."""
    assert RESULT_KINDS[name].check_data({}) is not None
    assert RESULT_KINDS[name].check_data([]) is not None


def test_the_convexity_schema_is_the_engines_record() -> None:
    """The stored convexity JSON has one definition: the engine's ``ConvexityResult`` parsed whole."""
    from core.geometry.convexity import ClassConvexity, ConvexityCurve, ConvexityResult
    from core.results.kinds.convexity import decode_curves, encode_curves

    result = ConvexityResult(
        0.5, 0.1, {"a": ClassConvexity(0.5, 0.1, 3, 6, 3, 0.2)}, 1, ("b",), {"k": 3}, {"t": 1.0}
    )
    curves = {"word": ConvexityCurve("word", (0, 1), (result, result))}
    data = encode_curves(curves)
    assert RESULT_KINDS["convexity"].check_data(data) is None
    back = decode_curves(data)["word"]
    assert back.results[0] == result and back.layers == (0, 1)
    data["curves"]["word"]["results"][0]["per_class"]["a"].pop("pair_std")
    assert "pair_std" in str(RESULT_KINDS["convexity"].check_data(data))
    data = encode_curves(curves)
    data["curves"]["word"]["layers"] = [0]
    assert RESULT_KINDS["convexity"].check_data(data) is not None


def test_criteria_decode_through_the_engines_record() -> None:
    from core.geometry.criteria import CriterionResult
    from core.results.kinds.criteria import decode_criteria, encode_criteria
    from core.results.store import StoredResult

    result = CriterionResult(
        "linear_probe", "curve", np.arange(3.0), None, {"k": 1}, True, "fraction_of_max"
    )
    done = encode_criteria({"linear_probe": result})
    assert RESULT_KINDS["criteria"].check_data(done.data) is None
    entry = StoredResult("0" * 64, "criteria", {}, None, done.data, done.arrays)  # type: ignore[arg-type]
    back = decode_criteria(entry)["linear_probe"]
    assert back.prune_rule == "fraction_of_max" and np.array_equal(back.values, result.values)
    done.data["criteria"]["linear_probe"]["kind"] = "table"
    assert "kind" in str(RESULT_KINDS["criteria"].check_data(done.data))
