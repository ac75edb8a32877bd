"""The grid on the local executor: a bad model fails only its own cells; the table lands in the store.

A 2-model grid (one tiny trainable wav2vec2, one model path that does not exist), one task, the full
model, one seed: the bad model's suggestion fails and so do the cells that need it, each with the error
in one line, while the good model's cell trains (a real detached worker). The table is a ``grid`` entry
of the results store with provenance, listed by ``results list`` and shown on Benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli.main import main
from core.results.store import list_results
from core.runs import folders, records
from core.runs.grid_runs import run_grid
from core.runs.local import LocalExecutor
from core.runs.spec import ExecutorSpec
from core.training.grid import GridSpec, read_grid_tables
from tests.helpers.fixtures import isolated_jobs  # noqa: F401  (own cache, one thread, one job slot)


@pytest.mark.slow
def test_bad_model_fails_only_its_cells_and_the_table_is_stored(
    tiny_assets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    good, bad = str(tiny_assets["wav2vec2"]), str(tmp_path / "no-such-model")
    train = dict(
        dataset="folder",
        root=str(tiny_assets["data"]),
        eval_split="test",
        epochs=1,
        batch_size=8,
        lr=3e-3,
        log_every=1,
        convexity=False,
        device="cpu",
        max_steps_per_epoch=2,
    )
    spec = GridSpec(
        models=(bad, good),
        tasks=("words",),
        points=("full",),
        seeds=(0,),
        train=train,
        benchmark=False,
    )
    said: list[str] = []
    table = run_grid(spec, LocalExecutor(), ExecutorSpec(), say=said.append)

    assert (table.n_cells, table.n_done) == (2, 1)
    rows = {r.model: r for r in table.rows}
    assert rows[good].seeds_done == (0,) and rows[good].accuracy_mean is not None
    assert rows[good].point == 2 and not rows[good].failed
    error = rows[bad].failed["0"]
    assert rows[bad].seeds_done == () and "no-such-model" in error and "\n" not in error
    assert any("suggestion failed" in s for s in said)
    assert [records.status(run_id).state for run_id in _cell_ids(table)] == ["done"]

    (stored,) = read_grid_tables()  # the results store, not a loose file
    assert stored.table.to_dict() == table.to_dict()
    prov = stored.provenance
    assert prov.model_id == f"{bad},{good}" and "files-sha256:" in prov.weights
    assert prov.dataset == "folder" and prov.dataset_fingerprint.startswith("words:")
    assert prov.settings["executor"] == "local" and prov.settings["seeds"] == [0]
    assert prov.engine_version and prov.created and prov.device == "cpu"
    assert [e.kind for e in list_results()] == ["grid"]

    assert main(["results", "list", "--kind", "grid"]) == 0
    out = capsys.readouterr().out
    assert stored.key[:12] in out and " grid " in out

    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/benchmarks.py").run()
    assert not at.exception, at.exception
    shown = next(df.value for df in at.dataframe if "failed seeds" in df.value.columns)
    by_point = dict(zip(shown["point"], shown["failed seeds"], strict=True))
    assert by_point["full (p=2)"] == "" and "no-such-model" in by_point["full (p=?)"]
    assert any(stored.key[:12] in c.value for c in at.caption)

    said.clear()  # resumable: the done cell is skipped, the failed suggestion is tried again
    again = run_grid(spec, LocalExecutor(), ExecutorSpec(), say=said.append)
    assert again.n_done == 1 and any("1 done, 0 to run, 1 failed" in s for s in said)


def _cell_ids(table) -> list[str]:
    """Run ids of the cells that ran (the grid's run folders)."""
    return [p.name for p in folders.runs_root().iterdir() if p.name.startswith(table.grid_id)]


@pytest.mark.slow
@pytest.mark.slow
def test_a_grid_plan_point_trains_and_benchmarks_its_plan(tiny_assets: dict[str, Path]) -> None:
    """A grid point ``drop 1`` of a 2-layer model: its cell fine-tunes layer 2 alone (config, result
    and table name the plan, as ``keep 2``) and its cost comes from a benchmark of that plan."""
    model = str(tiny_assets["wav2vec2"])
    train = dict(
        dataset="folder",
        root=str(tiny_assets["data"]),
        eval_split="test",
        epochs=1,
        batch_size=8,
        convexity=False,
        trajectory=False,
        device="cpu",
        max_steps_per_epoch=1,
    )
    spec = GridSpec(models=(model,), tasks=("words",), points=("drop 1",), seeds=(0,), train=train)
    table = run_grid(spec, LocalExecutor(), ExecutorSpec(), say=lambda _: None)
    (row,) = table.rows
    assert (row.plan, row.point, table.n_done) == ("keep 2", 1, 1)
    assert row.cost_ratios["train_step_seconds"] is not None
    (run,) = [r for r in records.list_runs() if r.kind == "finetune"]
    assert run.run_id.endswith("-words-pL2-k2-s0")
    assert (run.config["plan"], run.config["prune_point"]) == ("keep 2", None)
    result = records.result(run.run_id)
    assert result is not None and result.plan == "keep 2" and result.n_layers == 1


def test_a_grid_benchmark_cell_is_the_json_document_the_grid_keeps(
    tiny_assets: dict[str, Path], tmp_path: Path
) -> None:
    """The grid writes each benchmark cell as JSON and reads its rows back as plain objects."""
    import json

    from core.training.grid import benchmark_cell

    spec = GridSpec(
        models=(str(tiny_assets["wav2vec2"]),),
        tasks=("words",),
        points=(1,),
        seeds=(0,),
        train={"device": "cpu"},
        benchmark=True,
    )
    cell = benchmark_cell(spec, str(tiny_assets["wav2vec2"]), "words", 1, 2)
    again = json.loads(json.dumps(cell))
    assert again == cell and not cell.get("error")
    assert {row["metric"] for row in cell["rows"]} >= {"train_step_seconds"}
