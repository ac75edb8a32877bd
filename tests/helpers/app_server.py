"""``streamlit run app.py`` on a free loopback port with a private cache, for browser tests and screenshots."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.io.paths import REPO_ROOT


def free_port() -> int:
    """A TCP port nobody listens on right now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(cache: Path, startup_s: float = 90) -> Iterator[str]:
    """Serve the dashboard with ``cache`` as CONVEXITY_LAB_CACHE; yields its URL, stops it on exit.

    Raises RuntimeError with the server's log tail when it does not become healthy in ``startup_s``.
    """
    port = free_port()
    env = {**os.environ, "CONVEXITY_LAB_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    log_path = cache / "streamlit.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
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
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(proc, url, startup_s, log_path)
            yield url
        finally:
            _stop(proc)


def _wait_healthy(proc: subprocess.Popen, url: str, startup_s: float, log_path: Path) -> None:
    """Poll Streamlit's health endpoint until it answers 200."""
    deadline = time.monotonic() + startup_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("streamlit did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group; SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, 15)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(10)
