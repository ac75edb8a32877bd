"""The GPU check script stays working: it runs end to end at tiny sizes on the CPU."""

from __future__ import annotations

import pytest

from bench.gpu_check import main


@pytest.mark.slow
def test_gpu_check_runs_every_step_at_small_sizes(capsys: pytest.CaptureFixture) -> None:
    assert main(["--small", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for check in ("engine exhaustive", "engine target SE", "extraction vs bare", "full vs pruned"):
        line = next(line for line in out.splitlines() if line.startswith(check))
        assert "FAILED" not in line, line
    assert "exact" in out and "clips/s" in out and "x" in out
