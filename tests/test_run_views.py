"""core.runs.views: finished-run listing and background tasks; parameter counts per prune point (core.models)."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest

import core.runs.views
from core import runs
from core.models.pruning import params_by_prune_point
from core.models.whisper_offline import offline_whisper_available
from core.runs.views import BackgroundTask, finished_results

MODEL = "whisper-tiny.en-offline"


@pytest.mark.skipif(not offline_whisper_available(MODEL), reason=f"{MODEL} weights not installed")
def test_params_by_prune_point_matches_real_pruning():
    from core.models.pruning import count_parameters, prune
    from core.models.registry import load_encoder

    enc = load_encoder(MODEL, device="cpu")
    table = params_by_prune_point(enc)
    assert sorted(table) == list(range(1, enc.n_layers + 1))
    for p in (1, 2, enc.n_layers):
        model = copy.deepcopy(enc.model)
        prune(model, p)
        assert table[p] == count_parameters(model)


def test_views_do_not_import_pruning():
    """Read-only views of run folders know nothing of pruning or model weights."""
    tree = ast.parse(Path(core.runs.views.__file__).read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m and m.startswith("core.models.pruning") for m in modules), modules


def test_finished_results_and_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path))
    run = tmp_path / "runs" / "20200101-000000-finetune-m-abc"
    run.mkdir(parents=True)
    cfg = {"kind": "finetune", "config": {"model": MODEL, "prune_point": 2}}
    (run / "config.json").write_text(json.dumps(cfg))
    result = {"model": MODEL, "prune_point": 2, "n_layers": 2, "best_accuracy": 0.5}
    (run / "result.json").write_text(json.dumps(result))
    (run / "train.log").write_text("a\nb\nfailed: boom\n")
    (tmp_path / "runs" / "not-a-run").mkdir()
    found = finished_results(tmp_path / "runs")
    assert [f["id"] for f in found] == [run.name]
    assert found[0]["pruned"] is True and "p=2/4" in found[0]["label"]
    assert runs.log_tail(run.name, 1).endswith("failed: boom")
    assert runs.result(run.name) == result
    assert runs.convexity(run.name) is None


def test_background_task_reports_result_and_error():
    ok = BackgroundTask("ok", lambda: 42)
    bad = BackgroundTask("bad", lambda: 1 / 0)
    ok.join(10)
    bad.join(10)
    assert (ok.state, ok.result) == ("done", 42)
    assert bad.state == "failed" and "ZeroDivisionError" in bad.error
