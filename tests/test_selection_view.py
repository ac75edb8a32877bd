"""The Projections page's views of the diagnostics, built in core: a selected region as a table and
CSV, one clip's diagnostics in a line (counts as counts, singular and plural right)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from core.errors import ConvexityInputError
from core.geometry.diagnostics import clip_summary, diagnose_layer, selection_csv, selection_table

N = 40


@pytest.fixture(scope="module")
def tables() -> dict:
    rng = np.random.default_rng(0)
    words = np.arange(N) % 2
    x = rng.normal(size=(N, 4)) + 1.0 * words[:, None]
    labels = {"word": [f"w{w}" for w in words], "speaker": [f"s{i % 4}" for i in range(N)]}
    return diagnose_layer(x, labels, k=5, engine="numba")


def _labels() -> dict[str, list[str]]:
    return {
        "word": [f"w{i % 2}" for i in range(N)],
        "speaker": [f"s{i % 4}" for i in range(N)],
        "file": [f"c{i}.wav" for i in range(N)],
    }


def test_a_selection_lists_each_clip_once_with_its_diagnostics(tables: dict) -> None:
    table = tables["word"]
    rows = selection_table([7, 2, 7, 11], _labels(), table)
    assert [r.clip for r in rows] == [2, 7, 11]
    assert [r.word for r in rows] == ["w0", "w1", "w1"] and rows[1].file == "c7.wav"
    for r in rows:
        assert r.convexity == table.convexity[r.clip] and r.purity == table.purity[r.clip]
        assert r.bridge == table.bridge[r.clip] and r.bridge_paths == table.bridge_paths[r.clip]
    bare = selection_table([3], _labels())
    assert math.isnan(bare[0].convexity) and bare[0].speaker == "s3"
    with pytest.raises(ConvexityInputError):
        selection_table([N], _labels(), table)


def test_the_selection_csv_has_a_header_and_blank_missing_values(tables: dict) -> None:
    parsed = list(csv.DictReader(io.StringIO(selection_csv(selection_table([1, 4], _labels())))))
    assert [r["clip"] for r in parsed] == ["1", "4"] and parsed[0]["convexity"] == ""
    full = list(
        csv.DictReader(io.StringIO(selection_csv(selection_table([1], _labels(), tables["word"]))))
    )
    assert float(full[0]["purity"]) == tables["word"].purity[1]


def test_a_clips_line_counts_paths_as_whole_numbers(tables: dict) -> None:
    table = tables["word"]
    zero = int(np.flatnonzero(table.bridge_paths == 0)[0])
    text = clip_summary(table, zero)
    assert "(on no other class's path)" in text and "0.0 other" not in text
    busy = int(np.argmax(table.bridge_paths))
    n = int(table.bridge_paths[busy])
    assert n > 1
    assert f"on {n:,} other classes' path" in clip_summary(table, busy)
    assert "clip convexity (word)" in text and "kNN purity" in text
