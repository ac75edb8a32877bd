"""Pytest fixtures shared by a few test modules, which import them by name so pytest finds them there."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def isolated_jobs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Own cache (and so runs folder) per test; one thread per worker process."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CONVEXITY_LAB_MAX_JOBS", "1")
    torch.set_num_threads(1)
