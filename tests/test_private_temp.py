"""Folders at predictable shared paths (numba's kernel cache, Ray's sockets) are used only when they are
this user's own and nobody else can write them; a planted one is refused and nothing in it runs."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core.errors import StorageError
from core.io import paths
from core.io.paths import REPO_ROOT, private_temp_dir

OTHER_UID = 65534  # nobody


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /tmp: world-writable and sticky, what tempfile.gettempdir() returns."""
    base = tmp_path / "tmp"
    base.mkdir()
    base.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    return base


def test_private_folder_is_created_owner_only(shared_tmp: Path) -> None:
    made = private_temp_dir("numba")
    assert made.parent == shared_tmp and made.name == f"convexity-lab-numba-{os.getuid()}"
    found = os.lstat(made)
    assert stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid()
    assert stat.S_IMODE(found.st_mode) == 0o700
    assert private_temp_dir("numba") == made  # this user's own folder is reused


def test_anyone_writable_folder_is_refused(shared_tmp: Path) -> None:
    planted = shared_tmp / f"convexity-lab-numba-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.raises(StorageError, match="refusing .*not a private folder") as err:
        private_temp_dir("numba")
    assert "\n" not in str(err.value)


def test_link_to_a_private_folder_is_refused(shared_tmp: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (shared_tmp / f"convexity-lab-ray-{os.getuid()}").symlink_to(target)
    with pytest.raises(StorageError, match="refusing"):
        private_temp_dir("ray")


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a folder as another uid needs root")
def test_another_users_folder_is_refused(shared_tmp: Path) -> None:
    planted = shared_tmp / f"convexity-lab-numba-{os.getuid()}"
    planted.mkdir(mode=0o700)
    os.chown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(StorageError, match=f"owner uid {OTHER_UID}"):
        private_temp_dir("numba")


def test_numba_falls_back_to_a_fresh_folder_past_a_planted_one(
    shared_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    planted = shared_tmp / f"convexity-lab-numba-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    monkeypatch.setattr(paths, "_writable", lambda path: False)  # read-only code and cache
    chosen = paths.numba_cache_dir()
    assert chosen is not None and chosen != planted
    assert chosen.parent == shared_tmp and stat.S_IMODE(chosen.stat().st_mode) == 0o700
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: refusing") and "\n" not in warning
    chosen.rmdir()


# A subprocess that imports the lab with its code folder and cache read-only (as a shared install is),
# then runs a numba-cached kernel. os.access is narrowed for those two paths only, since root may write
# anywhere; numba itself is untouched.
VICTIM = """
import os, sys
real = os.access
ro = (sys.argv[1], sys.argv[2])
os.access = lambda p, m, **kw: False if str(p).startswith(ro) else real(p, m, **kw)
import numpy as np, torch
import core
from core.geometry.knn import exact_distances
x = torch.tensor(np.arange(12.0).reshape(4, 3))
d = exact_distances(x, torch.tensor([0, 1]), torch.tensor([[2, 3], [3, 0]]))
print(os.environ.get("NUMBA_CACHE_DIR"), float(d.sum()))
"""


class _Payload:
    """Unpickling this creates the marker file: the proof that a planted index ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def _run_victim(tmp: Path, cache: Path, numba_dir: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(TMPDIR=str(tmp), CONVEXITY_LAB_CACHE=str(cache), PYTHONPATH=str(REPO_ROOT))
    if numba_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_dir)
    code_dir = str(REPO_ROOT / "core")
    return subprocess.run(
        [sys.executable, "-c", VICTIM, code_dir, str(cache)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
    )


@pytest.mark.slow
def test_planted_numba_index_never_runs(tmp_path: Path) -> None:
    """A folder planted at the predictable path, holding numba indexes whose unpickling runs code, is
    refused in one line and the kernel compiles elsewhere; the same indexes do run when numba is
    pointed at them directly, so the payload is real."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    cache = tmp_path / "cache"
    cache.mkdir()
    genuine = tmp_path / "genuine"
    made = _run_victim(shared, cache, genuine)
    assert made.returncode == 0, made.stderr
    indexes = sorted(genuine.rglob("*.nbi"))
    assert indexes, "numba wrote no index to copy"

    marker = tmp_path / "payload-ran"
    planted = shared / f"convexity-lab-numba-{os.getuid()}"
    shutil.copytree(genuine, planted)
    for index in planted.rglob("*.nbi"):
        index.write_bytes(pickle.dumps(_Payload(marker)))
    for path in [planted, *planted.rglob("*")]:
        path.chmod(0o777)
        if os.geteuid() == 0:
            os.chown(path, OTHER_UID, OTHER_UID)

    victim = _run_victim(shared, cache, None)
    assert victim.returncode == 0, victim.stderr
    assert not marker.exists(), "the planted index ran"
    lines = [line for line in victim.stderr.splitlines() if "refusing" in line]
    assert len(lines) == 1 and str(planted) in lines[0]
    used, total = victim.stdout.split()
    assert Path(used) != planted and float(total) == float(made.stdout.split()[1])

    control = _run_victim(shared, cache, planted)  # what happened before the check
    assert marker.exists(), control.stderr


def test_ray_keeps_its_world_writable_folder_inside_a_private_one(shared_tmp: Path) -> None:
    from core.runs.ray_executor import ray_temp_dir

    inner = ray_temp_dir()
    assert inner.parent == private_temp_dir("ray")
    assert stat.S_IMODE(inner.parent.stat().st_mode) == 0o700
