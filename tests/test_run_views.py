"""core.runs.views: parameter counts per prune point, finished-run listing, background tasks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from core.models.whisper_offline import offline_whisper_available
from core.runs.views import BackgroundTask, finished_results, log_tail, params_by_prune_point

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


def test_finished_results_and_log_tail(tmp_path: Path):
    run = tmp_path / "runs" / "20200101-000000-finetune-m-abc"
    run.mkdir(parents=True)
    cfg = {"kind": "finetune", "config": {"model": MODEL, "prune_point": 2}}
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "result.json").write_text(
        json.dumps({"model": MODEL, "prune_point": 2, "n_layers": 2, "best_accuracy": 0.5})
    )
    (run / "train.log").write_text("a\nb\nfailed: boom\n")
    (tmp_path / "runs" / "not-a-run").mkdir()
    found = finished_results(tmp_path / "runs")
    assert [f["id"] for f in found] == [run.name]
    assert found[0]["pruned"] is True and "p=2/4" in found[0]["label"]
    assert log_tail(run, 1).endswith("failed: boom")


def test_background_task_reports_result_and_error():
    ok = BackgroundTask("ok", lambda: 42)
    bad = BackgroundTask("bad", lambda: 1 / 0)
    ok.join(10)
    bad.join(10)
    assert (ok.state, ok.result) == ("done", 42)
    assert bad.state == "failed" and "ZeroDivisionError" in bad.error
