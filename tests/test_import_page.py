"""Setup's "Import your own features" upload and what other pages do with the set, through AppTest.

A good upload becomes the feature set in use that Convexity (with its criteria) and Compare show; a
bad one is one error line and leaves the feature cache as it was; Prune & fine-tune and the CLI's
``finetune`` / ``sweep`` refuse an imported set in one line before any run folder exists.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from core.cli.main import main
from core.data.features import list_cached_features

APP = "../app.py"
SLOW = pytest.mark.slow  # the cases the fast loop skips (the same check, other inputs)
N, STATES, D = 24, 4, 6
FEATURES_LABEL = "Features (.npy / .npz)"
LABELS_LABEL = "Labels table (.csv / .tsv)"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty cache for the app."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _hidden() -> np.ndarray:
    """Features with a word structure (3 well-separated classes) so the curves are not flat."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(3, STATES, D))
    return centres[np.arange(N) % 3] + rng.normal(size=(N, STATES, D))


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def _labels(n: int = N) -> bytes:
    return (
        "word,speaker,path\n" + "".join(f"w{i % 3},s{i % 2},c{i}.wav\n" for i in range(n))
    ).encode()


def _files(cache: Path) -> set[str]:
    """Every file and folder in the feature cache but lock files (empty, never feature data)."""
    root = cache / "features"
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.suffix != ".lock"}


def _upload(features: tuple[str, bytes], labels: bytes, name: str = "") -> AppTest:
    """Setup with both files uploaded and "Import features" clicked."""
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.switch_page("pages/setup.py").run()
    assert not at.exception, at.exception
    uploaders = {u.label: u for u in at.get("file_uploader")}
    uploaders[FEATURES_LABEL].set_value((*features, "application/octet-stream"))
    uploaders[LABELS_LABEL].set_value(("labels.csv", labels, "text/csv"))
    if name:
        next(t for t in at.text_input if t.label == "Name (optional)").set_value(name)
    at.run()
    next(b for b in at.button if b.label == "Import features").click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_an_uploaded_set_is_used_by_convexity_its_criteria_and_compare(cache: Path) -> None:
    at = _upload(("my feats.npy", _npy(_hidden())), _labels(), name="toolkit-x")
    assert not at.error, [e.value for e in at.error]
    assert "imported:toolkit-x" in at.success[0].value
    assert any(m["model_key"] == "imported:toolkit-x" for m in list_cached_features())
    at.switch_page("pages/convexity.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("imported:toolkit-x" in c.value for c in at.caption)
    assert at.get("plotly_chart"), "no convexity curve drawn"
    next(t for t in at.toggle if t.label == "Compute the criteria").set_value(True).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    options = at.multiselect[0].options
    assert any("imported:toolkit-x" in o for o in options), options
    at.switch_page(
        "pages/setup.py"
    ).run()  # choosing it again from the cached sets keeps Setup whole
    next(b for b in at.button if b.label == "Use this feature set").click().run()
    assert not at.exception, at.exception
    assert any("Using imported:toolkit-x" in s.value for s in at.success)
    assert at.selectbox(key="dataset").value in ("sample", "speech-commands", "folder")


@pytest.mark.parametrize(
    ("features", "labels", "says"),
    [
        (("x.npy", _npy(np.array([{}] * N, dtype=object), allow_pickle=True)), _labels(), "float"),
        pytest.param(("x.npy", _npy(np.zeros((N, D)))), _labels(), "(N, L+1, D)", marks=SLOW),
        (("x.npy", _npy(np.where(_hidden() > 3, np.nan, _hidden()))), _labels(), "non-finite"),
        pytest.param(("x.npy", _npy(_hidden())), _labels(N - 1), "rows", marks=SLOW),
        pytest.param(
            ("x.npy", _npy(np.ones((N, STATES, D), dtype=np.int64))), _labels(), "float", marks=SLOW
        ),
        pytest.param(("x.npz", b"PK\x03\x04 truncated"), _labels(), "not an .npz", marks=SLOW),
    ],
    ids=["pickled", "wrong-shape", "nan", "mismatched-labels", "integers", "broken-npz"],
)
def test_a_bad_upload_is_one_error_line_and_leaves_the_cache_as_it_was(
    cache: Path, features: tuple[str, bytes], labels: bytes, says: str
) -> None:
    before = _files(cache)
    at = _upload(features, labels)
    limit = int(config.get_option("server.maxUploadSize"))  # .streamlit/config.toml's value
    assert any(f"Up to {limit} MB per file" in c.value for c in at.caption)
    assert len(at.error) == 1, [e.value for e in at.error]
    line = at.error[0].value
    assert "\n" not in line and says in line, line
    assert not at.success
    assert _files(cache) == before
    assert at.session_state["feature_key"] is None


@pytest.mark.slow
def test_finetune_page_says_an_imported_set_needs_a_model_and_makes_no_run(cache: Path) -> None:
    at = _upload(("h.npy", _npy(_hidden())), _labels(), name="no-encoder")
    at.switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and "needs a model" in at.error[0].value, [e.value for e in at.error]
    assert not [b for b in at.button if b.label.startswith("Fine-tune")]
    assert not (cache / "runs").exists() or not list((cache / "runs").iterdir())
    at.switch_page("pages/sweep.py").run()  # the sweep says it trains on another model and data
    assert not at.exception, at.exception
    assert any("needs a model" in i.value for i in at.info), [i.value for i in at.info]


@pytest.mark.parametrize(
    "argv",
    [
        ["finetune", "--model", "imported:my-set"],
        ["finetune", "--model", "imported:my-set", "--background"],
        ["finetune", "--model", "whisper-tiny.en-offline", "--dataset", "imported"],
        ["sweep", "--model", "imported:my-set"],
    ],
    ids=["finetune", "finetune-background", "imported-dataset", "sweep"],
)
def test_cli_refuses_to_fine_tune_an_imported_set_before_any_run_folder(
    cache: Path, capsys: pytest.CaptureFixture, argv: list[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a model" in err[0], err
    assert not (cache / "runs").exists() or not list((cache / "runs").iterdir())
