"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.tiny_assets import make_tiny_wav2vec2, write_tree


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest single-threaded (and do not fight parallel jobs for the 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small labelled audio folder (tests read it; one restores a clip's mtime after touching it)."""
    return write_tree(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random wav2vec2 saved like a real checkpoint."""
    return make_tiny_wav2vec2(tmp_path_factory.mktemp("models") / "tiny-w2v")


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny wav2vec2, a tiny Whisper and the tone/noise folder dataset, built once."""
    from tests.helpers.tiny_assets import (
        make_tiny_whisper,
        make_tone_noise_dataset,
        make_trainable_wav2vec2,
    )

    base = tmp_path_factory.mktemp("assets")
    return {
        "wav2vec2": make_trainable_wav2vec2(base / "w2v"),
        "whisper": make_tiny_whisper(base / "whisper"),
        "data": make_tone_noise_dataset(base / "data"),
    }


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache root per test; no executor or Ray address inherited from the environment."""
    root = tmp_path / "cache"
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(root))
    for name in ("CONVEXITY_LAB_EXECUTOR", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    return root


@pytest.fixture
def single_threaded(monkeypatch: pytest.MonkeyPatch):
    """One torch thread here and in worker processes (2 shared cores; tiny models run fastest so)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def started(private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A private cache; the ids of runs a page asked to start (no worker process is spawned)."""
    from core.runs import lifecycle

    calls: list[str] = []
    monkeypatch.setattr(lifecycle, "start", lambda run: calls.append(Path(run).name) or 0)
    return calls


@pytest.fixture(scope="session")
def tiny_en_sample():
    """Whisper tiny.en features of the bundled sample's 960-clip slice, extracted once per session."""
    from tests.helpers.sample_slice import extract_sample_slice

    return extract_sample_slice("whisper-tiny.en-offline")


# The longest files first: with ``--no-loadscope-reorder`` (pyproject) xdist hands files to its
# workers in collection order, so the long ones start early and the two workers finish together
# instead of one waiting out the other's tail (xdist's own order puts files with few tests last).
LONGEST_FIRST = (
    "test_e2e_browser.py",
    "test_paper_size_browser.py",
    "test_curve_statistics.py",
    "test_folder_journey_browser.py",
    "test_benchmarks_browser.py",
    "test_import_browser.py",
    "test_app.py",
    "test_convexity_page.py",
    "test_gpu_check.py",
    "test_whisper_sample.py",
    "test_ray.py",
    "test_jobs.py",
    "test_grid_faults.py",
    "test_diagnostics_finds_problems.py",
    "test_learn_browser.py",
    "test_convexity.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the collected tests file by file, the longest files (``LONGEST_FIRST``) first."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
