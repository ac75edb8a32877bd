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
from core.geometry.options import ConvexityOptions
from tests.helpers.builders import fake_features

APP = "../app.py"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache for one test (and no results held in memory from another test's cache)."""
    from pages.parts.cached import results_memory

    results_memory().clear()
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
        flat = np.frombuffer(base64.b64decode(field["bdata"]), dtype=np.dtype(field["dtype"]))
        shape = field.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
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
    fs = extract_features(model_dir, Selection.of("folder", str(tree)), batch_size=8)
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
    at.selectbox(key="cx_bars").set_value("authors' spread").run()
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
            fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
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
    heat = _chart(at, "cmp_heatmap")  # per-class difference of the two ...
    lines, _ = _provenance_text(
        heat
    )  # ... saying which curve is A and which is B, in the image too
    named = " ".join(lines)
    labels = [
        at.selectbox(key=k).format_func(at.selectbox(key=k).value) for k in ("cmp_a", "cmp_b")
    ]
    assert f"A = {labels[0]}" in named and f"B = {labels[1]}" in named, named
    at.radio(key="cmp_axis").set_value("absolute").run()
    spec = _chart(at, "cmp_curves_plot")
    assert max(_values(t["x"])[-1] for t in spec["data"]) == 6
    assert len(engine_calls) == before  # the page only reads the store


def test_compare_view_opens_from_its_link(cache: Path) -> None:
    from core.results.kinds import convexity_entry

    fs = fake_features(layers=5, model="tiny-4")
    entry, _ = convexity_entry(
        fs, {"word": fs.words, "speaker": fs.speakers}, ConvexityOptions(k=5, device="cpu")
    )
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


def _counted(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    """Wrap ``module.name`` (signature kept); the returned list grows by one per call."""
    calls: list[int] = []
    real = getattr(module, name)

    @functools.wraps(real)
    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _provenance_text(spec: dict) -> tuple[list[str], dict]:
    """(the provenance annotation's lines, the layout) of a chart spec."""
    notes = [a for a in spec["layout"].get("annotations", []) if a.get("name") == "provenance"]
    assert len(notes) == 1, notes
    return notes[0]["text"].split("<br>"), spec["layout"]


@pytest.mark.slow
def test_cli_criteria_and_umap_open_in_the_dashboard_without_recomputation(
    cache: Path, tree: Path, model_dir: Path, one_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.geometry import criteria as criteria_engine
    from core.geometry import projections as projection_engine

    fs = extract_features(model_dir, Selection.of("folder", str(tree)), batch_size=8)
    key = str(fs.key)[:12]
    assert main(["criteria", "--key", key, "--no-progress", "--device", "cpu"]) == 0
    assert main(["umap", "--key", key, "--no-progress"]) == 0
    criteria_calls = _counted(monkeypatch, criteria_engine, "run_criteria")
    umap_calls = _counted(monkeypatch, projection_engine, "layer_embeddings")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["feature_key"] = fs.key
    at.session_state["cr_on"] = True
    at.run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception, at.exception
    assert _chart(at, "cr_curves")  # the criteria are shown ...
    assert criteria_calls == [], "the dashboard recomputed the CLI's criteria"  # ... from the store
    at.switch_page("pages/projections.py").run()
    assert not at.exception, at.exception
    assert _chart(at, "pj_plot")
    assert umap_calls == [], "the dashboard recomputed the CLI's UMAP layout"


def test_every_figure_carries_its_whole_provenance_wrapped(
    cache: Path, tree: Path, model_dir: Path, one_thread
) -> None:
    from core.results import export
    from core.results.kinds import convexity_entry
    from core.results.precision import preset

    fs = extract_features(model_dir, Selection.of("folder", str(tree)), batch_size=8)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["feature_key"] = fs.key
    at.session_state["cr_on"] = True
    at.run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception, at.exception
    entry, hit = convexity_entry(
        fs, {"word": fs.words, "speaker": fs.speakers}, preset("± 0.005").options()
    )
    assert hit
    caption = entry.provenance.caption()
    assert len(caption) > export.CAPTION_CHARS  # long enough to need wrapping
    for part in ("cx_curve", "cx_heatmap", "cr_curves", "cr_linear_cka"):
        lines, layout = _provenance_text(_chart(at, part))
        assert caption in " ".join(lines), (
            part
        )  # the whole caption, seed, device, code and date too
        assert max(map(len, lines)) <= export.CAPTION_CHARS, part  # wrapped, not one clipped line
        # the bottom margin holds every line below the axis title
        needed = export.CAPTION_SHIFT + export.CAPTION_LINE * len(lines)
        assert layout["margin"]["b"] >= needed, part
        assert layout["xaxis"]["tickformat"] == "d" and layout["xaxis"]["dtick"] == 1, part
    # prune points are legend entries, not text labels on the plot that collide at one layer
    spec = _chart(at, "cx_curve")
    assert not any("prune" in a.get("text", "") for a in spec["layout"]["annotations"])
    names = [t["name"] for t in spec["data"]]
    assert any(n.startswith("prune point (word)") for n in names)
    assert any(n.startswith("prune point (speaker)") for n in names)
    # the camera image is laid out wider than a column, at the figure's height
    config = json.loads(at.get("plotly_chart")[0].proto.config)
    assert config["toImageButtonOptions"]["width"] >= 1000
    # the HTML export: the whole caption, wrapped for its width
    fig_spec = _chart(at, "cx_curve")
    import plotly.graph_objects as go

    html = export.figure_html(go.Figure(fig_spec), [caption], "convexity", "title")
    html = html.replace("\\u002f", "/")  # plotly's JSON escapes "/"
    out = export.standalone(go.Figure(fig_spec), [caption])
    assert caption == export.caption_text(out)
    for part in caption.split(" · "):  # every part: model, data, k, sampling, device/code, date
        assert part in html, part


def test_one_class_folder_shows_the_curve_it_can(
    cache: Path, tree: Path, model_dir: Path, one_thread, tmp_path: Path
) -> None:
    import shutil

    one = tmp_path / "one-word"
    shutil.copytree(tree / "go", one / "go")  # every clip says "go"; three speakers
    fs = extract_features(model_dir, Selection.of("folder", str(one)), batch_size=8)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["feature_key"] = fs.key
    at.session_state["cx_k"] = 3  # 6 clips
    at.run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    names = [t["name"] for t in _chart(at, "cx_curve")["data"]]
    assert any(n.startswith("speaker") for n in names) and not any(
        n.startswith("word") for n in names
    )
    why = [c.value for c in at.caption if "no word curve" in c.value.lower()]
    assert len(why) == 1 and "same word" in why[0] and "\n" not in why[0]


def test_per_class_heatmap_says_each_class_has_its_own_standard_error(
    cache: Path, tree: Path, model_dir: Path, one_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.geometry.convexity import layerwise_convexity
    from core.geometry.synthetic import synthetic_layers
    from core.results.provenance import provenance_from_meta
    from pages.parts import cached

    fs = extract_features(model_dir, Selection.of("folder", str(tree)), batch_size=8)
    x, y = synthetic_layers(900, 3, 8, fs.n_layers + 1, seed=0)
    sampled = layerwise_convexity(
        x,
        {"word": [f"w{c}" for c in y]},
        ConvexityOptions(k=10, target_se=0.01, seed=0, device="cpu"),
    )
    assert not all(r.settings.get("exact") for r in sampled["word"].results)
    prov = provenance_from_meta(
        fs.meta | {"key": fs.key},
        kind="convexity",
        label_sets=["word"],
        settings=dict(sampled["word"].results[0].settings),
    )
    shown = cached.ShownCurves(sampled, prov, True)
    monkeypatch.setattr(cached, "convexity_result", lambda *a, **k: shown)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["feature_key"] = fs.key
    at.run()
    at.switch_page("pages/convexity.py").run()
    assert not at.exception, at.exception
    spec = _chart(at, "cx_heatmap")
    lines, _ = _provenance_text(spec)
    note = " ".join(lines)
    assert "layer average" in note and "own SE" in note
    trace = spec["data"][0]
    assert "this class's SE" in trace["hovertemplate"]
    class_se = _values(trace["customdata"])
    per_class = sampled["word"].results[-1].per_class
    assert sorted(class_se[:, -1]) == pytest.approx(sorted(v.sem for v in per_class.values()))
