"""The one JSON reader of stored records: every field checked against its type, one line when not."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import pytest

from core.errors import RecordError
from core.geometry.curves import LayerCurve
from core.io.records import Record, from_dict, to_dict


@dataclass(frozen=True)
class Inner(Record):
    name: str
    value: float = 0.0


@dataclass(frozen=True)
class Outer(Record):
    kind: Literal["a", "b"]
    counts: tuple[int, ...]
    pair: tuple[str, float]
    inner: Inner
    by_name: dict[str, Inner] = field(default_factory=dict)
    note: str | None = None


GOOD = {
    "kind": "a",
    "counts": [1, 2],
    "pair": ["x", 1],
    "inner": {"name": "n"},
    "by_name": {"m": {"name": "m", "value": 2}},
    "newer_writer_field": 1,
}


def test_round_trip_converts_lists_to_tuples_and_fills_defaults() -> None:
    rec = Outer.from_dict(GOOD)
    assert rec == Outer("a", (1, 2), ("x", 1.0), Inner("n"), {"m": Inner("m", 2.0)})
    assert Outer.from_dict(rec.to_dict()) == rec
    assert to_dict(rec)["counts"] == [1, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "c"}, r"Outer\.kind: expected one of"),
        ({"counts": "12"}, r"Outer\.counts: expected a list"),
        ({"counts": [1, True]}, r"Outer\.counts\[1\]: expected int"),
        ({"pair": ["x"]}, r"Outer\.pair: expected 2 entries"),
        ({"inner": 5}, r"Outer\.inner: expected an object"),
        ({"inner": {}}, r"Outer\.inner: missing field 'name'"),
        ({"by_name": {"m": {"name": 3}}}, r"Outer\.by_name\['m'\]\.name: expected str"),
        ({"note": 5}, r"Outer\.note: expected str"),
    ],
)
def test_each_malformed_field_is_one_line_naming_it(change: dict, message: str) -> None:
    with pytest.raises(RecordError, match=message) as err:
        Outer.from_dict({**GOOD, **change})
    assert "\n" not in str(err.value)


def test_not_an_object_and_deep_nesting_are_refused() -> None:
    with pytest.raises(RecordError, match="expected an object"):
        from_dict(Outer, [1])
    deep: dict = {"name": "n"}
    for _ in range(100):
        deep = {"name": "n", "value": deep}
    with pytest.raises(RecordError):
        Inner.from_dict(deep)


def test_null_in_a_float_field_reads_as_nan() -> None:
    assert math.isnan(Inner.from_dict({"name": "n", "value": None}).value)


def test_layer_curve_fills_layers_and_checks_lengths() -> None:
    curve = LayerCurve.from_dict({"scores": [0.1, 0.2], "sems": [0, 0], "exact": [True, True]})
    assert curve.layers == (0, 1) and curve.all_exact
    with pytest.raises(RecordError, match="one score"):
        LayerCurve.from_dict({"scores": [0.1, 0.2], "sems": [0.0]})
    with pytest.raises(RecordError):
        LayerCurve.from_dict({"scores": []})
