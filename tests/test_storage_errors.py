"""Full disks and read-only caches: one line, nothing half-written, computed results still returned.

The operating system's refusals are injected where the lab meets them (reserving a memmap's blocks,
writing an entry, creating a lock file): the tests run as root, which no permission bit stops.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from core.data.features import Selection, extract_features
from core.errors import StorageError
from core.geometry.options import ConvexityOptions
from core.io import locks
from core.io import paths as lab_paths
from core.results import store
from core.results.kinds import stored_convexity
from core.results.store import list_results, results_root
from tests.helpers.builders import fake_features

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def cache(private_cache: Path) -> Path:
    return private_cache


def _refuse(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, "injected: " + errno.errorcode[code])

    return fail


def test_extraction_on_a_full_disk_is_one_line_and_leaves_no_temp_file(
    tree: Path, model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.data.features as features

    monkeypatch.setattr(features.os, "posix_fallocate", _refuse(errno.ENOSPC))
    with pytest.raises(StorageError, match=r"cannot write features to .*MiB needed") as err:
        extract_features(str(model_dir), Selection.of("folder", str(tree)), batch_size=4)
    assert "\n" not in str(err.value)
    leftovers = [p for p in (cache / "features").rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == []
    assert [p for p in (cache / "features").iterdir() if p.is_dir()] == []  # no empty entry


def test_a_disk_too_full_for_the_header_is_one_line_and_leaves_no_entry(
    tree: Path, model_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.data.features as features

    monkeypatch.setattr(features.np.lib.format, "open_memmap", _refuse(errno.ENOSPC))
    with pytest.raises(StorageError, match=r"cannot write features to .*No space|injected"):
        extract_features(str(model_dir), Selection.of("folder", str(tree)), batch_size=4)
    assert [p for p in (cache / "features").iterdir() if p.is_dir()] == []


def test_a_full_disk_keeps_the_computed_curve_and_stores_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fs = fake_features()
    monkeypatch.setattr(store, "write_entry", _refuse(errno.ENOSPC))
    with caplog.at_level(logging.WARNING):
        curves = stored_convexity(
            fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None)
        )
    assert curves["word"].scores.shape == (4,)
    assert "computed but not stored" in caplog.text and "ENOSPC" in caplog.text
    left = [p.name for p in results_root().iterdir() if p.suffix != ".lock"]
    assert list_results() == [] and left == []  # no entry, no staging folder


def test_a_read_only_cache_computes_without_storing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fs = fake_features()
    results_root()  # the folder exists, but nothing can be created in it
    monkeypatch.setattr(locks, "open", _refuse(errno.EACCES), raising=False)
    with caplog.at_level(logging.WARNING):
        curves = stored_convexity(
            fs, {"word": fs.words}, ConvexityOptions(k=5, max_pairs_per_class=None)
        )
    assert curves["word"].scores.shape == (4,)
    assert "CONVEXITY_LAB_CACHE" in caplog.text


def test_a_cache_folder_that_cannot_be_created_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Path, "mkdir", _refuse(errno.EROFS))
    with pytest.raises(StorageError, match="set CONVEXITY_LAB_CACHE"):
        results_root()


def test_numba_caches_in_the_lab_cache_when_the_install_is_read_only(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lab_paths.numba_cache_dir() is None  # a writable checkout: beside the code
    code = Path(lab_paths.__file__).resolve().parents[1]
    real = lab_paths.os.access
    monkeypatch.setattr(
        lab_paths.os,
        "access",
        lambda p, mode: False if str(p).startswith(str(code)) else real(p, mode),
    )
    assert lab_paths.numba_cache_dir() == cache / "numba"
    monkeypatch.setattr(lab_paths.os, "access", lambda p, mode: False)
    assert "convexity-lab-numba-" in str(lab_paths.numba_cache_dir())


def test_a_cache_path_naming_a_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.cli.main import main

    (tmp_path / "cache-file").write_text("not a folder")
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache-file"))
    for argv in (["results", "list"], ["jobs", "list"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is a file, not a folder" in err[0]


def test_runs_are_listed_and_shown_when_their_status_cannot_be_written(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk: a run whose worker is gone still lists, as failed (interrupted), unrecorded."""
    from core import runs
    from core.cli.main import main
    from core.io.run_folder import RunFolder, RunState
    from core.runs import records

    run = runs.create_run("finetune", {"model": "m", "epochs": 2, "task": "words"})
    RunFolder(run).set_state(RunState.RUNNING, epoch=1, pid=2**22 + 12345)  # no such process
    monkeypatch.setattr(records, "set_state", _refuse(errno.ENOSPC))
    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    assert run.name in out and "failed" in out and "no runs yet" not in out
    assert main(["jobs", "status", run.name]) == 0
    assert '"state": "failed"' in capsys.readouterr().out
    assert RunFolder(run).read_json(RunFolder.STATUS)["state"] == "running"  # nothing was written


def test_a_run_that_cannot_be_written_leaves_no_folder(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import runs
    from core.io.run_folder import RunFolder

    monkeypatch.setattr(RunFolder, "write_spec", _refuse(errno.ENOSPC))
    with pytest.raises(OSError, match="injected"):
        runs.create_run("finetune", {"model": "m", "epochs": 1, "task": "words"})
    assert not any(p for p in runs.runs_root().iterdir() if not p.name.startswith("."))
