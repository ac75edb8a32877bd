"""Grid points may be plans: their cells, run ids, configs and table rows name the plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.training.grid import GridSpec, grid_table, parse_points, plan_cells


def _spec() -> GridSpec:
    return GridSpec(
        models=("m",),
        tasks=("words",),
        points=parse_points("full,1") + parse_points(["drop 1", "keep 1"]),
        seeds=(0,),
    )


def test_plan_points_become_cells_that_name_their_plan() -> None:
    spec = _spec()
    cells = plan_cells(spec, {("m", "words"): {"n_layers": 3, "suggested": 2}})
    # "keep 1" is the prune point 1 again: kept once, under the first label
    assert [(c.label, c.point, c.plan) for c in cells] == [
        ("full", 3, None),
        ("1", 1, None),
        ("drop 1", 2, "drop 1"),
    ]
    full, top, planned = cells
    assert top.run_id.endswith("-words-p1-s0") and planned.run_id.endswith("-words-pL3-k2-3-s0")
    assert (full.pruned, top.pruned, planned.pruned) == (False, True, True)
    cfg = spec.finetune_dict("m", "words", planned.point, 0, planned.plan)
    assert (cfg["prune_point"], cfg["plan"]) == (None, "drop 1")
    assert spec.finetune_dict("m", "words", 1, 0)["prune_point"] == 1
    bench = {"rows": [{"metric": "train_step_seconds", "ratio": 0.7}]}
    table = grid_table(spec, cells, {}, {}, {("m", "words", "drop 1"): bench}, "local")
    row = next(r for r in table.rows if r.plan == "drop 1")
    assert row.cost_ratios == {"train_step_seconds": 0.7}
    assert "drop 1" in table.records()[2]["point"]
    assert "plan" not in table.rows[0].to_dict()  # a top point's row keeps its old layout


def test_plan_cells_of_a_failed_suggestion_fail_with_it() -> None:
    cells = plan_cells(_spec(), {("m", "words"): {"error": "RuntimeError: no model"}})
    assert {c.label: c.error for c in cells if c.label.startswith(("drop", "keep"))} == {
        "drop 1": "suggestion: RuntimeError: no model",
        "keep 1": "suggestion: RuntimeError: no model",
    }


def test_a_plan_no_model_of_the_grid_can_keep_is_one_line_before_any_work(
    private_cache: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``grid --plan "drop 4"`` on a 3-layer model: exit 2, one line naming the model, and no grid or
    run folder (no suggestion was computed)."""
    from core.cli.main import main

    capsys.readouterr()
    argv = [
        "grid",
        "--models",
        str(model_dir),
        "--tasks",
        "words",
        "--points",
        "full",
        "--seeds",
        "0",
    ]
    assert main([*argv, "--plan", "drop 4"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "layer 4 is out of range" in err[0] and str(model_dir) in err[0], err
    assert main([*argv, "--plan", "drop 1-3"]) == 2
    assert "leaves no model" in capsys.readouterr().err
    made = [p for p in (private_cache / "runs", private_cache / "results" / "grid") if p.exists()]
    assert all(not any(p.iterdir()) for p in made), made
