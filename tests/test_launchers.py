"""Where runs execute, as the user chooses it: the launchers' "Run on" (AppTest) and the CLI's --executor.

The Ray launch test points a real worker at ``auto`` with Ray's temp folder made private (so no cluster
of anyone else on this machine is found): the run records its executor, then fails in one line. The
tiny run on a real local Ray cluster through the CLI is in tests/test_ray.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import runs as run_store
from core.cli.main import main
from core.errors import RunError
from core.runs import folders, lifecycle
from core.runs.executors import launch_spec
from core.runs.spec import ExecutorSpec, executor_spec

APP = "../app.py"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache; no executor or Ray address inherited from the environment."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    for name in ("CONVEXITY_LAB_EXECUTOR", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


def _finetune_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    return at


def _launch_button(at: AppTest):
    return next(b for b in at.button if b.label.startswith("Fine-tune pruned"))


def test_address_is_validated_and_env_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("http://host:1", "ray://two words:1", "host", "a;rm -rf /:1"):
        with pytest.raises(RunError, match="Ray address"):
            ExecutorSpec(name="ray", address=bad)
    for good in ("auto", "127.0.0.1:6379", "ray://head.example:10001"):
        assert ExecutorSpec(name="ray", address=good).address == good
    assert launch_spec("local", "not checked for local") == ExecutorSpec()
    monkeypatch.setenv("CONVEXITY_LAB_EXECUTOR", "ray")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert executor_spec() == ExecutorSpec(name="ray", address="127.0.0.1:6379")
    assert executor_spec("local").address is None


@pytest.mark.parametrize("command", ["finetune", "sweep"])
def test_cli_executor_ray_without_ray_is_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, cache: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main([command, "--model", "m", "--executor", "ray", "--address", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install ray==2.60.0" in err
    assert run_store.list_runs() == []  # nothing was created


def test_cli_records_the_local_executor(
    capsys: pytest.CaptureFixture, tmp_path: Path, tiny_assets: dict[str, Path]
) -> None:
    """A foreground local run records where it ran; a missing model is refused before any folder."""
    assert main(["finetune", "--model", str(tmp_path / "none"), "--executor", "local"]) == 2
    assert run_store.list_runs() == [] and "none" in capsys.readouterr().err
    quick = [
        "--dataset",
        "folder",
        "--root",
        str(tiny_assets["data"]),
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "1",
        "--no-convexity",
        "--device",
        "cpu",
    ]
    assert main(["finetune", "--model", str(tiny_assets["wav2vec2"]), *quick]) == 0
    (run,) = run_store.list_runs()
    spec = json.loads((folders.run_dir(run.run_id) / "config.json").read_text())
    assert spec["executor"]["name"] == "local" and run.executor == "local"
    assert run.state == "done"
    assert main(["finetune", "--model", "m", "--address", "http://x:1", "--executor", "ray"]) == 2
    assert "Ray address" in capsys.readouterr().err


def test_finetune_page_runs_locally_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _finetune_page()
    assert at.radio(key="ft_run_on").value == "local"
    assert at.text_input(key="ft_ray_address").value == "auto"
    assert not at.error
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert _finetune_page().text_input(key="ft_ray_address").value == "127.0.0.1:6379"


def test_finetune_page_bad_address_is_one_line_and_launches_nothing() -> None:
    pytest.importorskip("ray")
    at = _finetune_page()
    at.radio(key="ft_run_on").set_value("Ray cluster")
    at.text_input(key="ft_ray_address").set_value("http://not a cluster").run()
    assert [e.value.count("\n") for e in at.error] == [0] and "Ray address" in at.error[0].value
    _launch_button(at).click().run()
    assert not at.exception, at.exception
    assert run_store.list_runs() == []


def test_pages_without_ray_say_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    at = _finetune_page()
    at.radio(key="ft_run_on").set_value("Ray cluster").run()
    assert [e.value.count("\n") for e in at.error] == [0]
    assert "pip install ray" in at.error[0].value
    _launch_button(at).click().run()
    assert not at.exception and run_store.list_runs() == []

    at.switch_page("pages/sweep.py").run()
    at.radio(key="sw_run_on").set_value("Ray cluster")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    assert any("pip install ray" in e.value for e in at.error) and run_store.list_runs() == []


@pytest.mark.slow
def test_finetune_page_ray_choice_is_recorded_in_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray-tmp"))  # no other cluster can be found
    at = _finetune_page()
    at.radio(key="ft_run_on").set_value("Ray cluster").run()
    assert not at.error
    _launch_button(at).click().run()
    assert not at.exception, at.exception
    (run,) = run_store.list_runs()
    try:
        spec = json.loads((folders.run_dir(run.run_id) / "config.json").read_text())
        assert spec["executor"] == ExecutorSpec(name="ray", address="auto").to_dict()
        assert spec["kind"] == "finetune" and run.executor == "ray"
        final = lifecycle.wait(run.run_id, timeout=120)  # its driver finds no cluster at "auto"
    finally:
        lifecycle.cancel(run.run_id, timeout=30)
    assert final.state == "failed" and final.executor == "ray"
    assert final.error and "\n" not in final.error, final.error
    assert main(["jobs", "list"]) == 0  # the same run list as local runs, with where it ran
    (row,) = [line for line in capsys.readouterr().out.splitlines() if run.run_id in line]
    assert " ray " in row and " failed " in row


def test_sweep_page_offers_the_choice_in_its_form() -> None:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    assert at.radio(key="sw_run_on").value == "local"
    assert at.radio(key="sw_run_on").options == ["local", "Ray cluster"]


def test_sweep_page_cancels_an_active_sweep() -> None:
    """The Prune sweep page's cancel (a sweep queued but never started: cancelled at once)."""
    run = lifecycle.create_run("sweep", {"model": "m", "task": "words", "points": ["suggested"]})
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/sweep.py").run()
    assert not at.exception, at.exception
    at.button(key="sw_cancel").click().run()
    assert not at.exception, at.exception
    assert run_store.status(run.name).state == "cancelled"
    assert not [b for b in at.button if b.key == "sw_cancel"]  # final: no cancel offered
