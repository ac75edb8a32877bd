"""Curve statistics started from the Convexity page vs ``python -m core convexity --chance --resamples``.

    CONVEXITY_LAB_CACHE=DIR python bench/statistics_dashboard_vs_cli.py --key 3fe6b627   # tiny.en sample
    python bench/statistics_dashboard_vs_cli.py --key KEY --old /tmp/old-tree       # + an older checkout

Same settings on both sides: the page's defaults (k = 10, target SE 0.005, 10 permutations, 20
half-samples, 3 seeds), which are the CLI's ``--chance 10 --resamples 20`` at its defaults, so both
compute the same store entry. Each run gets a fresh copy of a cache holding the features and the
curves (so only the statistics are computed). The dashboard side is real: ``streamlit run app.py``,
Chromium (``/usr/bin/chromium`` through Playwright) opens /convexity, clicks "Chance level and
population intervals" and waits, with the page open and polling, until the prune-point stability is
shown; the time is from the click to that. ``--old DIR`` runs the same on another checkout of the
repository (e.g. ``git archive <commit> | tar -x -C DIR``). Runs alternate CLI, dashboard(s),
dashboard(s), CLI so a drift in load falls on both; the load average is printed with every figure.
Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def fresh_cache(base: Path) -> Path:
    """A copy of ``base`` (features, curves, Setup choice) with no statistics stored."""
    out = Path(tempfile.mkdtemp(prefix="stats-bench-"))
    shutil.copytree(base, out, dirs_exist_ok=True, symlinks=True)
    return out


def prepare(key: str) -> Path:
    """A cache with the feature set (linked), its curves at the page's defaults and the Setup choice."""
    from core.data.features import feature_cache_root

    src = feature_cache_root() / key
    base = Path(tempfile.mkdtemp(prefix="stats-base-"))
    (base / "features").mkdir()
    (base / "features" / key).symlink_to(src)
    env = {**os.environ, "CONVEXITY_LAB_CACHE": str(base)}
    subprocess.run(
        [sys.executable, "-m", "core", "convexity", "--key", key, "--no-progress"],
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
    )
    code = (
        "from core.io.choice import SetupChoice, save_choice;"
        f"save_choice(SetupChoice(feature_key={key!r}, model='whisper-tiny.en-offline'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)
    return base


def cli_run(base: Path, key: str) -> float:
    """Seconds of ``python -m core convexity --key KEY --chance 10 --resamples 20``."""
    cache = fresh_cache(base)
    env = {**os.environ, "CONVEXITY_LAB_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "core", "convexity", "--key", key, "--chance", "10"]
    t0 = time.perf_counter()
    subprocess.run(
        [*cmd, "--resamples", "20", "--no-progress"],
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
    )
    seconds = time.perf_counter() - t0
    shutil.rmtree(cache, ignore_errors=True)
    return seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_latency(url: str, stop: threading.Event, worst: list[float]) -> None:
    """Poll the server's health endpoint every second; keep the slowest answer (a frozen server
    answers late)."""
    while not stop.is_set():
        t0 = time.perf_counter()
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=60).read()
        worst[0] = max(worst[0], time.perf_counter() - t0)
        stop.wait(1.0)


def dashboard_run(base: Path, tree: Path) -> tuple[float, float]:
    """(seconds from the click on the page's statistics button to the shown stability, the
    slowest health answer of the server meanwhile)."""
    from playwright.sync_api import sync_playwright

    cache = fresh_cache(base)
    port = free_port()
    env = {**os.environ, "CONVEXITY_LAB_CACHE": str(cache)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://localhost:{port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for _ in range(120):
                try:
                    page.goto(f"{url}/convexity")
                    break
                except Exception:  # the server is still starting
                    time.sleep(1)
            button = page.get_by_role("button", name="Chance level and population intervals")
            button.wait_for(timeout=300_000)
            stop, worst = threading.Event(), [0.0]
            poller = threading.Thread(target=health_latency, args=(url, stop, worst))
            t0 = time.perf_counter()
            button.click()
            poller.start()
            page.get_by_text("prune-point stability").first.wait_for(timeout=3_600_000)
            seconds = time.perf_counter() - t0
            stop.set()
            poller.join()
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait()
        shutil.rmtree(cache, ignore_errors=True)
    return seconds, worst[0]


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--key", required=True, help="cached feature set (a prefix will do)")
    ap.add_argument("--old", type=Path, help="another checkout whose dashboard to time too")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    from core.data.features import load_cached_features

    key = load_cached_features(args.key).key
    base = prepare(key)
    sides = [("dashboard", REPO)] + ([("dashboard (old)", args.old)] if args.old else [])
    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)
        print(f"{name}: {seconds:.1f} s (load {load()})", flush=True)

    print(f"feature set {key[:12]}, load before {load()}", flush=True)
    for _ in range(args.rounds):
        record("cli", cli_run(base, key))
        for name, tree in sides:
            seconds, latency = dashboard_run(base, tree)
            record(name, seconds)
            print(f"  {name}: slowest server answer meanwhile {latency:.2f} s", flush=True)
        record("cli", cli_run(base, key))
    cli = statistics.median(results["cli"])
    for name, values in results.items():
        mid = statistics.median(values)
        print(f"{name}: median {mid:.1f} s of {len(values)}; {mid / cli:.2f}x the CLI's median")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
