"""The dashboard and the results store: CLI results open without recomputation; Compare overlays depths.

Real Streamlit (AppTest), the real CLI (in process) and real features of a tiny random wav2vec2 on a small
audio folder, in a private ``CONVEXITY_LAB_CACHE``.
"""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.cli.main import main
from core.data.features import Selection, extract_features
from core.geometry import convexity as engine
from tests.test_results import fake_features

APP = "../app.py"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache for one test."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the convexity engine (wrapped, signature kept)."""
    calls: list[int] = []
    real = engine.layerwise_convexity

    @functools.wraps(real)
    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "layerwise_convexity", counted)
    return calls


def _values(field: object) -> np.ndarray:
    """A plotly trace array from a chart spec (plain list or base64 'bdata')."""
    if isinstance(field, dict) and "bdata" in field:
        return np.frombuffer(base64.b64decode(field["bdata"]), dtype=np.dtype(field["dtype"]))
    return np.asarray(field, dtype=float)


def _chart(at: AppTest, key_part: str) -> dict:
    """The spec of the plotly chart whose element id contains ``key_part``."""
    for chart in at.get("plotly_chart"):
        if key_part in chart.proto.id:
            return json.loads(chart.proto.spec)
    raise AssertionError(f"no chart {key_part!r}")


def test_cli_result_opens_in_the_dashboard_without_recomputation(
    cache: Path, tree: Path, model_dir: Path, one_thread, engine_calls: list[int]
) -> None:
    fs = extract_features(model_dir, Selection("folder", str(tree)), batch_size=8)
    assert main(["convexity", "--key", str(fs.key)[:12], "--no-progress", "--device", "cpu"]) == 0
    assert len(engine_calls) == 1  # the CLI computed it once and stored it
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["feature_key"] = fs.key
    at.run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception, at.exception
    assert len(engine_calls) == 1, "the dashboard recomputed a stored result"
    assert any("loaded from the results store" in c.value for c in at.caption)
    assert any("exact" in c.value for c in at.caption)
    spec = _chart(at, "cx_curve")
    notes = " ".join(a.get("text", "") for a in spec["layout"].get("annotations", []))
    assert "tiny-w2v" in notes and "folder" in notes  # the figure names model and data
    assert not any(
        "standard error of the sampled" in c.value for c in at.caption
    )  # exact: no SE claim
    at.radio(key="cx_bars").set_value("authors' spread").run()
    assert not at.exception and len(engine_calls) == 1
    spec = _chart(at, "cx_curve")
    assert _values(spec["data"][0]["error_y"]["array"]).max() > 0
    next(b for b in at.button if b.label == "Recompute").click().run()
    assert not at.exception and len(engine_calls) == 2  # only when asked


def test_compare_overlays_models_of_different_depth(cache: Path, engine_calls: list[int]) -> None:
    from core.results.kinds import convexity_entry

    ids = []
    for layers, model in ((5, "tiny-4"), (7, "base-6")):
        fs = fake_features(layers=layers, model=model)
        entry, _ = convexity_entry(
            fs, {"word": fs.words}, k=5, max_pairs_per_class=None, device="cpu"
        )
        ids.append(f"{entry.key[:12]}:word")
    before = len(engine_calls)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    at.multiselect(key="cmp_curves").set_value(ids).run()
    at.radio(key="cmp_axis").set_value("relative").run()
    assert not at.exception
    spec = _chart(at, "cmp_curves_plot")
    xs = {t["name"].split(" · ")[0]: _values(t["x"]) for t in spec["data"]}
    assert len(xs["tiny-4"]) == 5 and len(xs["base-6"]) == 7
    assert xs["tiny-4"][-1] == xs["base-6"][-1] == 1.0 and xs["base-6"][1] == pytest.approx(1 / 6)
    table = at.dataframe[0].value
    assert list(table["layers"]) == [4, 6] and set(table["error"]) == {"exact"}
    params = {k: [v] if isinstance(v, str) else list(v) for k, v in at.query_params.items()}
    assert params["axis"] == ["relative"] and sorted(params["curve"]) == sorted(
        ids
    )  # linkable view
    assert _chart(at, "cmp_heatmap")  # per-class difference of the two
    at.radio(key="cmp_axis").set_value("absolute").run()
    spec = _chart(at, "cmp_curves_plot")
    assert max(_values(t["x"])[-1] for t in spec["data"]) == 6
    assert len(engine_calls) == before  # the page only reads the store


def test_compare_view_opens_from_its_link(cache: Path) -> None:
    from core.results.kinds import convexity_entry

    fs = fake_features(layers=5, model="tiny-4")
    entry, _ = convexity_entry(fs, {"word": fs.words, "speaker": fs.speakers}, k=5, device="cpu")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["curve"] = [f"{entry.key[:12]}:speaker"]
    at.query_params["axis"] = "absolute"
    at.query_params["bars"] = "spread"
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="cmp_curves").value == [f"{entry.key[:12]}:speaker"]
    assert (
        at.radio(key="cmp_axis").value == "absolute" and at.radio(key="cmp_bars").value == "spread"
    )
    assert any("authors' spread" in c.value for c in at.caption)
