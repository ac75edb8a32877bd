"""Setup's and the import's words to the user: a regex hint that stays a regex, one class named as
the reason convexity cannot run, a labels table that is not UTF-8 in one line without server paths."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.imported import clip_audio, import_uploaded, row_name
from core.errors import FeatureError

APP = "../app.py"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _setup(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    for name, value in state.items():
        at.session_state[name] = value
    at.run().switch_page("pages/setup.py").run()
    assert not at.exception, at.exception
    return at


def test_the_speaker_rule_hint_is_a_regex_that_works(cache: Path) -> None:
    at = _setup()
    at.selectbox(key="dataset").set_value("folder").run()
    help_text = at.text_input(key="setup_speaker_regex").help
    spans = re.findall(r"`([^`]+)`", help_text)  # markdown shows code spans verbatim
    regex = next(s for s in spans if s.startswith("^"))
    assert re.match(regex, "alice_yes_1.wav").group(1) == "alice"


@pytest.mark.slow
def test_a_one_class_folder_says_convexity_needs_two_classes(
    cache: Path, tree: Path, model_dir: Path, tmp_path: Path, one_thread
) -> None:
    one = tmp_path / "one-word"
    shutil.copytree(tree / "go", one / "go")
    at = _setup(custom_model=str(model_dir), dataset="folder", root=str(one))
    next(b for b in at.button if b.label == "Extract features").click().run()
    assert not at.exception, at.exception
    assert at.success, [e.value for e in at.error]
    warned = [w.value for w in at.warning if "at least 2 classes" in w.value]
    assert len(warned) == 1 and "same word" in warned[0] and "\n" not in warned[0]


def test_a_labels_table_not_in_utf8_is_one_line_without_server_paths(cache: Path) -> None:
    arrays = io.BytesIO()
    np.save(arrays, np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32))
    table = io.BytesIO("word\nçava\nnon\nçava\nnon\n".encode("latin-1"))
    with pytest.raises(FeatureError) as err:
        import_uploaded(arrays, "emb.npy", table, "my labels.csv")
    text = str(err.value)
    assert "\n" not in text and "UTF-8" in text and "my-labels.csv" in text
    assert "convexity-lab-upload" not in text and "codec" not in text and "/tmp" not in text


def test_imported_rows_without_paths_have_no_audio_not_a_bogus_file(tmp_path: Path) -> None:
    note = clip_audio("imported", "/root", row_name(4))
    assert note.file is None and "no audio" in note.note and "/root" not in note.note
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    assert clip_audio("imported", tmp_path, "a.wav").file == tmp_path / "a.wav"
    assert "not in the clip folder" in clip_audio("imported", tmp_path, "b.wav").note
    assert (
        clip_audio("folder", tmp_path, "b.wav").note
        == f"audio file not found: {tmp_path / 'b.wav'}"
    )
