"""The dashboard renders and reacts, driven through Streamlit's AppTest (a real script run)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def test_playground_renders_and_reacts_to_shape():
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    assert not at.exception
    blobs = float(at.metric[0].value)
    assert 0.9 <= blobs <= 1.0
    at.radio[0].set_value("moons").run()
    assert not at.exception
    moons = float(at.metric[0].value)
    assert moons < blobs
    assert len(at.dataframe) == 1
