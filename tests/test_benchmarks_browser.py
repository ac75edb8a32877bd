"""Benchmarks in a real browser: once a watched benchmark ends on the open page, the JSON export downloads.

A benchmark run folder is held "running" by a stand-in worker process (``sleep``); the page polls it,
then it is recorded done with a saved ``benchmark.json`` and the page reruns itself. The export button
must then hand over its file at once, not spin until the browser gives up on it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from core.io.processes import proc_start
from core.io.run_folder import stamp
from core.runs import lifecycle
from core.runs.folders import RunState, set_state
from core.training.configs import BenchmarkConfig
from tests.helpers.app_server import running_app
from tests.helpers.builders import BENCHMARK_MODEL as MODEL
from tests.helpers.builders import saved_benchmark

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed"),
]


def test_export_downloads_after_a_watched_benchmark_ends(private_cache: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    private_cache.mkdir(parents=True, exist_ok=True)
    run = lifecycle.create_run("benchmark", BenchmarkConfig(model=MODEL, prune_point=1).to_dict())
    worker = subprocess.Popen(["sleep", "600"])
    try:
        set_state(
            run,
            RunState.RUNNING,
            started_at=stamp(),
            pid=worker.pid,
            pid_start=proc_start(worker.pid),
        )
        with running_app(private_cache) as url, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(accept_downloads=True)
            page.goto(f"{url}/benchmarks", timeout=120_000)
            page.get_by_text(f"{run.name}: running").wait_for(timeout=120_000)
            saved_benchmark(run, (0.5, 0.5, 0.5))
            set_state(run, RunState.DONE, finished_at=stamp())
            page.get_by_text("Saved benchmarks").wait_for(timeout=60_000)
            time.sleep(3.0)  # the page settled: no run polled any more
            button = page.get_by_role("button", name="Everything shown (JSON)")
            with page.expect_download(timeout=30_000) as got:
                button.click()
            data = json.loads(Path(got.value.path()).read_text())
            assert data["benchmark"]["run"] == run.name
            browser.close()
    finally:
        worker.kill()
        worker.wait()
