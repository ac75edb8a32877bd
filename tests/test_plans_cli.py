"""`prune --drop/--keep` and `plans`, in process on tiny random models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import transformers as tf

from core.cli.main import main
from core.models.encoder import SpeechEncoder
from core.models.loading import load_encoder
from core.models.plans import PruningPlan
from core.models.pruning import apply_plan, encoder_of
from tests.helpers.tiny_assets import TINY_WAV2VEC2, make_tone_noise_dataset

pytestmark = pytest.mark.usefixtures("one_thread", "private_cache")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("plans-cli")
    torch.manual_seed(0)
    config = tf.WavLMConfig(**{**TINY_WAV2VEC2, "num_hidden_layers": 4}, num_buckets=16)
    tf.WavLMModel(config).save_pretrained(base / "wavlm")
    return {
        "wavlm": base / "wavlm",
        "data": make_tone_noise_dataset(base / "data", speakers=2, per_speaker=10),
    }


def test_prune_drop_saves_the_planned_model(assets, tmp_path, capsys) -> None:
    """`prune MODEL --drop 1-2` saves a 2-layer WavLM equal to the plan applied in memory."""
    out = tmp_path / "pruned"
    assert main(["prune", str(assets["wavlm"]), "--drop", "1-2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pruned: keep 3-4 of 4 transformer layers (2 kept)" in text
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
    saved = load_encoder(out, device="cpu")
    expected = load_encoder(assets["wavlm"], device="cpu")
    apply_plan(expected, PruningPlan.drop([1, 2], 4))
    assert hasattr(encoder_of(saved.model).layers[0].attention, "rel_attn_embed")
    wave = torch.randn(2, 8000).numpy() * 0.1
    torch.testing.assert_close(saved.pooled(wave), expected.pooled(wave))
    # and the prune point still works as before
    assert main(["prune", str(assets["wavlm"]), "3", "--out", str(tmp_path / "p3")]) == 0
    assert "pruned at p=3: kept transformer layers 1..3 of 4" in capsys.readouterr().out
    assert isinstance(load_encoder(tmp_path / "p3", device="cpu"), SpeechEncoder)


@pytest.mark.slow
def test_plans_finds_a_block_and_scores_its_plan_beside_top_p(assets, tmp_path, capsys) -> None:
    """With a threshold every pair meets, the block is layers 1-4: its plan keeps layer 1, equal in size to
    top-1; both are scored beside the full model and written to CSV and JSON."""
    argv = ["plans", str(assets["wavlm"]), "folder", "--root", str(assets["data"]), "--no-progress"]
    out = tmp_path / "plans.csv"
    assert main([*argv, "--threshold", "-1", "--bootstrap", "50", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layers 1-4" in text and "keep 1, drop 2, 3, 4" in text
    rows = list(csv.DictReader(out.open()))
    assert [r["plan"] for r in rows] == ["keep all 4", "keep 1"]  # drop 2-4 is top-1: one plan
    assert rows[1]["kind"] == "top" and rows[1]["features"].startswith("cached full-model")
    for r in rows:
        assert (
            0
            <= float(r["logistic_low"])
            <= float(r["logistic_accuracy"])
            <= float(r["logistic_high"])
            <= 1
        )
    assert float(rows[0]["logistic_vs_full"]) == 0.0

    out_json = tmp_path / "plans.json"
    assert (
        main([*argv, "--threshold", "0.999999", "--out", str(out_json), "--bootstrap", "50"]) == 0
    )
    doc = json.loads(out_json.read_text())
    assert doc["redundancy"]["threshold"] == 0.999999 and "interval" in doc
    assert [p["plan"]["kept"] for p in doc["plans"]][0] == [1, 2, 3, 4]


@pytest.mark.slow
def test_plans_block_inside_the_stack_runs_the_pruned_encoder(
    assets, tmp_path, capsys, monkeypatch
) -> None:
    """A block in the middle (forced by a similarity map with one block, 2-3) is scored by running the
    pruned encoder, beside top-3 (equal size)."""
    import numpy as np

    from core.geometry import criteria

    def fake_cka(features, **_):
        sim = np.full((5, 5), 0.1)
        sim[2:4, 2:4] = 0.99
        np.fill_diagonal(sim, 1.0)
        return criteria.CriterionResult("linear_cka", "matrix", sim, None, {}, True, "last_block")

    monkeypatch.setitem(
        criteria.CRITERIA, "linear_cka", criteria.CriterionSpec(fake_cka, "fake", False, False)
    )
    argv = ["plans", str(assets["wavlm"]), "folder", "--root", str(assets["data"]), "--no-progress"]
    out = tmp_path / "plans.csv"
    assert main([*argv, "--bootstrap", "50", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["plan"] for r in rows] == ["keep all 4", "drop 4", "drop 3"]
    assert (
        rows[2]["kind"] == "block drop"
        and rows[2]["features"] == "pruned encoder run over the clips"
    )
    assert rows[1]["parameters"] == rows[2]["parameters"]


def test_a_bad_typed_plan_is_one_line_before_the_model_loads(assets, capsys, monkeypatch) -> None:
    from core.models import loading

    monkeypatch.setattr(loading.ResolvedModel, "load", lambda *a, **k: pytest.fail("loaded"))
    argv = ["plans", str(assets["wavlm"]), "folder", "--root", str(assets["data"]), "--no-progress"]
    for bad in ("drop 9", "drop 1-4", "remove 2", "keep 2, 2"):
        assert main([*argv, "--plan", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_plans_scores_a_typed_plan_and_mimics_the_blocks(
    assets, tmp_path, capsys, monkeypatch
) -> None:
    """``--plan`` adds a plan and the top-p plan of its size to the table; ``--mimic`` replaces the detected
    block (2-3, forced) by a trained layer and scores it beside the block plan alone."""
    import numpy as np

    from core.geometry import criteria

    def fake_cka(features, **_):
        sim = np.full((5, 5), 0.1)
        sim[2:4, 2:4] = 0.99
        np.fill_diagonal(sim, 1.0)
        return criteria.CriterionResult("linear_cka", "matrix", sim, None, {}, True, "last_block")

    monkeypatch.setitem(
        criteria.CRITERIA, "linear_cka", criteria.CriterionSpec(fake_cka, "fake", False, False)
    )
    argv = ["plans", str(assets["wavlm"]), "folder", "--root", str(assets["data"]), "--no-progress"]
    out = tmp_path / "plans.csv"
    extra = ["--plan", "keep 1, 4", "--mimic", "--epochs", "1", "--stability", "0"]
    assert main([*argv, *extra, "--bootstrap", "50", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["plan"] for r in rows] == ["keep all 4", "drop 4", "drop 3", "keep 1-2", "drop 2-3"]
    assert [r["kind"] for r in rows] == ["full", "top", "block drop", "top", "typed"]
    text = capsys.readouterr().out
    assert "mimic 2-3 (drop 3): training on" in text
    assert "block 2-3: output MSE" in text and "drop 3 alone: logistic" in text
    assert "with mimic layers: logistic" in text
