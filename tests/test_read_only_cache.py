"""A cache mounted read-only (a lecturer's shared copy): every store-backed command computes without
storing, with one warning line, and changes nothing. Uses a real read-only bind mount (root only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.data.imported import import_features

pytestmark = pytest.mark.slow  # each case computes through the CLI


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def read_only_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """(the read-only view, the feature key): features cached, no results folder, then mounted ro."""
    writable = tmp_path / "cache"
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(writable))
    rng = np.random.default_rng(0)
    words = np.repeat(np.arange(4), 8)
    np.save(tmp_path / "h.npy", rng.normal(size=(32, 3, 4)) + words[:, None, None])
    (tmp_path / "labels.csv").write_text(
        "word,speaker\n" + "".join(f"w{w},s{i % 4}\n" for i, w in enumerate(words))
    )
    key = import_features(tmp_path / "h.npy", tmp_path / "labels.csv", name="ro").key
    assert not (writable / "results").exists()
    view = tmp_path / "ro"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(writable), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr.decode().strip()}")
        monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(view))
        yield view, key
    finally:
        subprocess.run(["umount", "--lazy", str(view)], check=False)  # memmaps may be open


@pytest.mark.parametrize(
    "argv",
    [
        ["convexity", "--key", "{key}", "--labels", "word", "--k", "3"],
        ["umap", "--key", "{key}"],
        ["results", "list"],
    ],
    ids=["convexity", "umap", "results-list"],
)
def test_store_commands_compute_without_storing(
    read_only_cache, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    view, key = read_only_cache
    before = _snapshot(view)
    assert main([a.format(key=key) for a in argv]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    warnings = [line for line in captured.err.splitlines() if line.strip()]
    assert len(warnings) <= 1 and all("not stored" in w for w in warnings)
    assert "stored in the results store" not in captured.out
    assert _snapshot(view) == before
