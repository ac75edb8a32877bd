"""Process liveness (core.io.processes): one check shared by run workers, statistics jobs and
leftover cleaning; a zombie, a reused pid and a process of another command read as gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.io.processes import pid_alive, proc_start, started_at

needs_proc = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")


def test_this_process_is_alive_and_identified() -> None:
    me = os.getpid()
    assert pid_alive(me)
    assert pid_alive(me, started=proc_start(me))
    assert pid_alive(me, command_has="python")
    started = started_at(me)
    assert started is None or abs(started - time.time()) < 7 * 24 * 3600


@pytest.mark.parametrize("pid", [None, 0, -1])
def test_no_pid_is_not_alive(pid: int | None) -> None:
    assert not pid_alive(pid)


@needs_proc
def test_a_reused_pid_or_another_command_is_not_the_process_meant() -> None:
    me = os.getpid()
    assert not pid_alive(me, started=str(int(proc_start(me) or 0) + 1))
    assert not pid_alive(me, command_has="no-such-run-2f9c")


@needs_proc
def test_a_finished_child_is_gone_while_a_zombie_and_after() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(200):  # not reaped yet: a zombie once it has exited
        if (proc_start(child.pid) is None) or not pid_alive(child.pid):
            break
        time.sleep(0.01)
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)
