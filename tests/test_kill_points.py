"""A run killed between any two of its writes resumes to the rows of a run never interrupted.

Every write a fine-tune's worker makes (status merges, metric rows, JSON documents, model folders,
``state.pt``) goes through a patched writer that dies at the n-th write, before it lands; the run is
then resumed as ``jobs resume --foreground`` does, for each n in turn. Its metric rows (events aside,
times aside) must equal the uninterrupted run's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from core import runs
from core.io.run_folder import RunFolder
from core.runs import lifecycle
from core.training import finetune as finetune_module
from tests.helpers.tiny_assets import tiny_config_dict

pytestmark = pytest.mark.slow


class Killed(BaseException):
    """The process died here (nothing below the worker's frame catches a BaseException it records)."""


WRITERS = {  # (owner, attribute): every way the fine-tune's worker writes to its folder
    "status": (RunFolder, "update_status"),
    "state": (RunFolder, "set_state"),
    "metric": (RunFolder, "append_metric"),
    "document": (RunFolder, "write_json"),
    "model folder": (finetune_module, "save_model_dir"),
    "state.pt": (finetune_module, "save_state"),
}


@contextmanager
def writes(kill_at: int | None = None) -> Iterator[list[str]]:
    """Count the writes (their names, in order); die before write number ``kill_at`` (1-based)."""
    done: list[str] = []
    saved = {name: getattr(owner, attr) for name, (owner, attr) in WRITERS.items()}

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def writer(*args: Any, **kwargs: Any) -> Any:
            if kill_at is not None and len(done) + 1 == kill_at:
                done.append(f"killed before {name}")
                raise Killed(name)
            done.append(name)
            return original(*args, **kwargs)

        return writer

    try:
        for name, (owner, attr) in WRITERS.items():
            setattr(owner, attr, wrap(name, saved[name]))
        yield done
    finally:
        for name, (owner, attr) in WRITERS.items():
            setattr(owner, attr, saved[name])


def _rows(run: Path) -> list[tuple]:
    """The metric rows that a run's history consists of: kind, epoch, step and the measured values."""
    out = []
    for r in runs.read_metrics(run):
        if r.get("event"):
            continue
        values = tuple(round(float(r[k]), 5) for k in ("loss", "accuracy", "lr") if k in r)
        out.append((r.get("kind"), r.get("epoch"), r.get("step"), values))
    return out


def _run(config: dict[str, Any], kill_at: int | None = None) -> tuple[Path, list[str]]:
    run = lifecycle.create_run("finetune", config)
    with writes(kill_at) as done:
        code = lifecycle.run_job(run)  # the worker's frame records the death as a failure
    assert code == (0 if kill_at is None else 1)
    return run, done


@pytest.fixture
def config(tiny_assets: dict[str, Path], private_cache: Path, single_threaded) -> dict[str, Any]:
    return tiny_config_dict(tiny_assets, epochs=2, max_steps_per_epoch=2, trajectory=False)


def test_every_kill_point_resumes_to_the_uninterrupted_rows(config: dict[str, Any]) -> None:
    reference, done = _run(config)
    assert runs.status(reference.name).state == "done"
    expected = _rows(reference)
    assert [r[1] for r in expected if r[0] == "eval"] == [1, 2]
    assert {"state.pt", "metric", "model folder", "document", "state"} <= set(done)
    for n in range(1, len(done) + 1):
        run, killed = _run(config, kill_at=n)
        (where,) = [k for k in killed if k.startswith("killed before")]
        torch.manual_seed(1234)  # a fresh process's generator is not the killed one's
        final = lifecycle.resume(run.name, background=False)
        assert final.state == "done", (n, where, final.error)
        assert _rows(run) == expected, (n, where, killed)
