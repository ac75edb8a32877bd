"""Leftovers of killed writers: staging files named for their writer, free lock files, and cleaning
both in the feature cache (on the next write and by ``results clean``) without touching live work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.cli.main import main
from core.data.features import clean_feature_leftovers, feature_cache_root, load_cached_features
from core.data.imported import import_features
from core.io.leftovers import is_stale, writer_tag
from core.io.locks import exclusive, remove_free_lock

ROOT = Path(__file__).resolve().parents[1]
KEY = "ab" * 32
WRITER = f"""
import sys, time
from core.data.features import begin_entry, entry_lock, feature_cache_root
with entry_lock("{KEY}"):
    print(begin_entry(feature_cache_root() / "{KEY}"), flush=True)
    time.sleep(120)
"""


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    return int(proc.stdout)


def _tag(pid: int) -> str:
    """This host's writer tag for another pid."""
    return writer_tag().replace(f"-{os.getpid()}~", f"-{pid}~")


def _import(tmp_path: Path, seed: int) -> str:
    """A small imported feature set (a real cache write); its key."""
    rng = np.random.default_rng(seed)
    np.save(tmp_path / f"h{seed}.npy", rng.normal(size=(8, 3, 4)))
    (tmp_path / "labels.csv").write_text("word\n" + "".join(f"w{i % 2}\n" for i in range(8)))
    return str(import_features(tmp_path / f"h{seed}.npy", tmp_path / "labels.csv").key)


def test_a_leftover_is_stale_once_its_writer_is_gone_and_never_while_it_runs(
    tmp_path: Path,
) -> None:
    dead = tmp_path / f".features.{_tag(_dead_pid())}x.npy.tmp"
    live = tmp_path / f".features.{writer_tag()}x.npy.tmp"
    untagged_old, untagged_new = tmp_path / ".old.tmp", tmp_path / ".new.tmp"
    reused = tmp_path / f".features.{_tag(1)}x.npy.tmp"  # pid 1 runs, but started after the write
    for path in (dead, live, untagged_old, untagged_new, reused):
        path.touch()
    os.utime(live, (0, 0))  # however old: its writer (this process) is alive
    os.utime(untagged_old, (0, 0))
    os.utime(reused, (0, 0))
    assert is_stale(dead) and is_stale(untagged_old) and is_stale(reused)
    assert not is_stale(live) and not is_stale(untagged_new)


def _wait_until_blocked_on(path: Path, timeout: float = 10.0) -> None:
    """Return once a lock request waits on ``path``'s file (a ``->`` line of /proc/locks)."""
    locks = Path("/proc/locks")
    if not locks.exists():
        pytest.skip("needs /proc/locks to see a waiting lock")
    inode = f":{path.stat().st_ino}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in locks.read_text().splitlines():
            fields = line.split()
            if "->" in fields and any(f.endswith(inode) and f.count(":") == 2 for f in fields):
                return
        time.sleep(0.01)
    raise AssertionError(f"no lock request waits on {path}")


def test_a_lock_removed_while_a_waiter_waits_still_excludes(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    entered = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with exclusive(path):
            entered.set()
            release_first.wait(10)

    def waiter(log: list[str]) -> None:
        with exclusive(path):
            log.append("waiter in")

    a = threading.Thread(target=first)
    a.start()
    entered.wait(10)
    assert not remove_free_lock(path)  # held
    log: list[str] = []
    b = threading.Thread(target=waiter, args=(log,))
    b.start()
    _wait_until_blocked_on(path)  # the waiter opened the old file and waits for its lock
    path.unlink()  # as a cleaner would, racing the waiter
    with exclusive(path):  # a third locker gets the new file
        release_first.set()
        a.join(10)
        b.join(0.5)
        assert b.is_alive() and log == [], "the waiter holds the removed file's lock meanwhile"
    b.join(10)
    assert log == ["waiter in"]
    assert remove_free_lock(path) and not path.exists()


@pytest.mark.slow  # a real writer process (imports torch), killed
def test_a_killed_writers_staging_file_and_lock_are_cleaned_and_live_ones_kept(
    tmp_path: Path,
) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    staged = Path(proc.stdout.readline().strip())
    assert staged.is_file() and str(proc.pid) in staged.name
    assert clean_feature_leftovers(min_age_s=0) == []  # its writer runs: nothing is removed
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    lock = feature_cache_root() / f"{KEY}.lock"
    assert lock.is_file()
    removed = set(clean_feature_leftovers(min_age_s=0))
    assert {staged, lock, staged.parent} <= removed
    assert not staged.parent.exists() and not lock.exists()


def test_the_next_write_cleans_dead_writers_leftovers_but_not_entries_or_live_work(
    tmp_path: Path,
) -> None:
    kept_key = _import(tmp_path, 0)
    root = feature_cache_root()
    dead = _tag(_dead_pid())
    leftovers = [
        root / f".nocache-{dead}x.npy.tmp",
        root / kept_key / f".features.{dead}x.npy.tmp",
        root / kept_key / ".shards" / f".shard-0-{dead}x.npy.tmp",
    ]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half")
    live = root / kept_key / ".shards" / f".shard-32-{writer_tag()}x.npy.tmp"
    live.write_bytes(b"being written")
    _import(tmp_path, 1)  # another key's write
    assert not any(p.exists() for p in leftovers)
    assert live.exists()
    load_cached_features(kept_key)  # still valid


def test_results_clean_also_cleans_the_feature_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = feature_cache_root()
    (root / f".nocache-{_tag(_dead_pid())}x.npy.tmp").write_bytes(b"half")
    assert main(["results", "clean"]) == 0
    out = capsys.readouterr().out
    assert f"removed 1 leftover(s) of interrupted writers from {root}" in out
    assert list(root.iterdir()) == []


def test_the_results_store_cleans_through_the_same_rule() -> None:
    from core.results.store import clean_stale, results_root

    dead = results_root() / f".{'c' * 12}-{_tag(_dead_pid())}x.tmp"
    live = results_root() / f".{'c' * 12}-{writer_tag()}x.tmp"
    dead.mkdir()
    live.mkdir()
    assert clean_stale() == [dead]  # at once, without waiting for the age bound
    assert live.is_dir()
