"""The cost benchmark launched from the dashboard vs ``python -m core benchmark``: same settings, same load.

    python bench/dashboard_vs_cli.py                       # whisper-tiny.en-offline, p = 1, ABBA order
    python bench/dashboard_vs_cli.py --model whisper-base-offline --prune 2 --rounds 1

The dashboard side is real: ``streamlit run app.py`` on a free loopback port with a private cache,
Chromium (``/usr/bin/chromium`` through Playwright) opens the Benchmarks page, clicks "Run benchmark"
with the page's defaults and waits, with the page open and polling, until the result is shown. The CLI
side runs the same command line's defaults (one ``BenchmarkConfig``). Runs alternate (dashboard, CLI,
CLI, dashboard ...) so a drift in machine load falls on both; every figure is printed with the spread
of its repeats and the load measured over each run. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_MODEL = "whisper-tiny.en-offline"  # the page's default model
ROWS = ("train_step_seconds", "inference_latency_b1_seconds", "inference_throughput_b32")


def dashboard_run(url: str, cache: Path, model: str, prune: int) -> dict:
    """Click "Run benchmark" on the Benchmarks page and wait for the shown result; its benchmark.json."""
    from playwright.sync_api import expect, sync_playwright

    before = set((cache / "runs").glob("*/benchmark.json")) if (cache / "runs").is_dir() else set()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url) else r.abort())
        page.goto(f"{url}/benchmarks")
        page.get_by_role("heading", name="Cost benchmark").wait_for(timeout=240_000)
        if model != DEFAULT_MODEL:
            page.locator('[data-testid="stSelectbox"]', has_text="Model").first.click()
            page.get_by_role("option", name=model, exact=True).click()
            page.wait_for_timeout(1500)
        point = page.get_by_label("Prune point", exact=True)
        point.fill(str(prune))
        point.press("Tab")
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Run benchmark").click()
        expect(page.get_by_text("for ", exact=False).first).to_be_visible(timeout=60_000)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:  # the page stays open and polls, as a person's would
            new = set((cache / "runs").glob("*/benchmark.json")) - before
            if new:
                break
            page.wait_for_timeout(1000)
        # the page shows the result by itself once the job ends (its status fragment reruns it)
        expect(page.get_by_text("measured side by side")).to_be_visible(timeout=60_000)
        browser.close()
    (path,) = set((cache / "runs").glob("*/benchmark.json")) - before
    return json.loads(path.read_text())


def cli_run(cache: Path, model: str, prune: int) -> dict:
    """``python -m core benchmark`` with its defaults; its benchmark.json."""
    out = Path(tempfile.mkdtemp(dir=cache))
    env = {**os.environ, "CONVEXITY_LAB_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "core", "benchmark", "--model", model, "--prune", str(prune)]
    subprocess.run([*cmd, "--out", str(out)], check=True, env=env, capture_output=True)
    return json.loads((out / "benchmark.json").read_text())


def line(side: str, data: dict) -> str:
    """One run's rows: full, pruned, pruned / full (min-max), reliable; and the load it saw."""
    rows = {r["metric"]: r for r in data["rows"]}
    ctx = data["context"]
    load = [ctx["load_before"][0], *ctx.get("load_during", []), ctx["load_after"][0]]
    parts = [f"{side:9} load {min(load):.1f}-{max(load):.1f}"]
    for metric in ROWS:
        r = rows.get(metric)
        if r is None:
            continue
        ok = "" if r["reliable"] else " UNRELIABLE"
        parts.append(
            f"{metric.split('_')[0] + '_' + metric.split('_')[1]}: full {r['full']:.4g} pruned "
            f"{r['pruned']:.4g} x{r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}){ok}"
        )
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="whisper-tiny.en-offline")
    parser.add_argument("--prune", type=int, default=1)
    parser.add_argument(
        "--rounds", type=int, default=1, help="ABBA blocks (2 runs of each per block)"
    )
    args = parser.parse_args()
    from tests.helpers.app_server import running_app

    cache = Path(tempfile.mkdtemp(prefix="dash-vs-cli-"))
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at the start; cache {cache}")
    with running_app(cache) as url:
        for _ in range(args.rounds):
            for side in ("dashboard", "cli", "cli", "dashboard"):
                run = dashboard_run if side == "dashboard" else None
                data = (
                    run(url, cache, args.model, args.prune)
                    if run
                    else cli_run(cache, args.model, args.prune)
                )
                print(line(side, data), flush=True)


if __name__ == "__main__":
    main()
