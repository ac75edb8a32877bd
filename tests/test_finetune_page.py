"""The Prune & fine-tune page on a user's folder, driven through Streamlit's AppTest (real script runs).

Features of a tiny random wav2vec2 on a generated tone/noise folder (speaker ids in the file names);
launches go through a stand-in for ``submit_run`` that creates the run folder without starting a worker,
so each test reads exactly the ``config.json`` a real launch writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.data.features import Selection, extract_features

APP = "../app.py"
REGEX = r"^(spk\d)_"


@pytest.fixture(scope="module")
def folder_cache(tmp_path_factory: pytest.TempPathFactory, one_thread) -> dict[str, Any]:
    """A private cache with the features of a 2-word folder and of a 1-word folder (same tiny model)."""
    from tests.helpers.tiny_assets import make_tone_noise_dataset, make_trainable_wav2vec2

    base = tmp_path_factory.mktemp("ft-page")
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEXITY_LAB_CACHE", str(base / "cache"))
    model = make_trainable_wav2vec2(base / "model", layers=3)
    data = make_tone_noise_dataset(base / "words", speakers=3, per_speaker=8)
    one = base / "one-word"
    shutil.copytree(data / "tone", one / "tone")
    keys = {}
    for name, root in (("two", data), ("one", one)):
        sel = Selection.of("folder", root=str(root), speaker_regex=REGEX)
        keys[name] = str(extract_features(str(model), sel, device="cpu", batch_size=64).key)
    yield {"cache": base / "cache", "model": str(model), "data": str(data), **keys}
    mp.undo()


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Configs the page launched; each gets a queued run folder (no worker starts)."""
    from core.runs import lifecycle

    configs: list[dict[str, Any]] = []

    def submit(kind: str, config: dict[str, Any], spec: Any = None) -> Path:
        configs.append(config)
        return lifecycle.create_run(kind, config)

    monkeypatch.setattr(lifecycle, "submit_run", submit)
    return configs


@pytest.fixture(autouse=True)
def _no_runs(folder_cache: dict[str, Any]) -> None:
    """Every test starts without runs."""
    shutil.rmtree(folder_cache["cache"] / "runs", ignore_errors=True)


def _page(key: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["feature_key"] = key
    at.run().switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    return at


def _click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_blocker_a_folder_run_gets_the_folder_and_speaker_rule(folder_cache, launched) -> None:
    """Launching from a folder's features writes its folder and speaker rule into config.json (it had
    ``root: null``: the run failed in 2 s with 'needs a folder')."""
    from core.runs import list_runs

    at = _page(folder_cache["two"])
    at.radio(key="ft_task").set_value("speakers").run()
    _click(at, "Fine-tune full model (3 layers)")
    assert len(launched) == 1
    cfg = launched[0]
    assert cfg["root"] == folder_cache["data"] and cfg["dataset"] == "folder"
    assert (cfg["speaker_regex"], cfg["split_seed"], cfg["min_clips"]) == (REGEX, 0, None)
    stored = json.loads(
        (folder_cache["cache"] / "runs" / at.session_state["ft_view"] / "config.json").read_text()
    )
    assert stored["config"]["root"] == folder_cache["data"]
    assert [r.run_id for r in list_runs()] == [at.session_state["ft_view"]]
    assert not at.error


def test_a_one_word_folder_says_one_thing_and_launches_nothing(folder_cache, launched) -> None:
    """One clear message (no 'no convexity suggestion' nor 'extract features' next to it), buttons off."""
    at = _page(folder_cache["one"])
    assert len(at.error) == 1, [e.value for e in at.error]
    assert "every clip is in one word sub-folder" in at.error[0].value
    assert "\n" not in at.error[0].value
    assert not at.warning, [w.value for w in at.warning]
    assert not any("extract features" in c.value for c in at.caption)
    assert all(b.disabled for b in at.button if b.label.startswith("Fine-tune"))
    assert not launched


def test_a_second_identical_launch_asks_first(folder_cache, launched) -> None:
    at = _page(folder_cache["two"])
    _click(at, "Fine-tune full model (3 layers)")
    first = at.session_state["ft_view"]
    _click(at, "Fine-tune full model (3 layers)")
    assert len(launched) == 1  # not started again
    assert any(first in w.value and "Start another" in w.value for w in at.warning)
    _click(at, f"Show {first}")
    assert len(launched) == 1 and at.session_state["ft_view"] == first
    assert not any("Start another" in w.value for w in at.warning)
    _click(at, "Fine-tune full model (3 layers)")
    _click(at, "Start another")
    assert len(launched) == 2 and at.session_state["ft_view"] != first
    at.slider(key="ft_prune").set_value(1).run()
    _click(at, "Fine-tune pruned (p = 1)")  # other settings: no question
    assert len(launched) == 3


def _finish(cache: Path, run_id: str, test_acc: float, n_test: int, val_acc: float) -> None:
    """Mark a created run done with a result.json as the trainer writes it."""
    run = cache / "runs" / run_id
    result = {
        "model": "m",
        "task": "words",
        "prune_point": 3,
        "n_layers": 3,
        "labels": ["noise", "tone"],
        "n_train": 38,
        "n_eval": 5,
        "eval_split": "validation",
        "best_epoch": 1,
        "best_accuracy": val_acc,
        "params": {"total": 123_456},
        "train_seconds": 3.0,
        "steps_per_epoch": 2,
        "device": "cpu",
        "test_split": "test",
        "test_accuracy": test_acc,
        "n_test": n_test,
    }
    (run / "result.json").write_text(json.dumps(result))
    status = json.loads((run / "status.json").read_text())
    status.update(state="done", summary=result)
    (run / "status.json").write_text(json.dumps(status))
    rows = [{"kind": "eval", "step": 2, "epoch": 1, "accuracy": val_acc, "loss": 0.4, "time": 1}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_test_accuracy_is_the_headline_and_validation_is_labelled_selection(
    folder_cache, launched
) -> None:
    at = _page(folder_cache["two"])
    labels = [n.label for n in at.number_input]
    assert "Validation clips (selection; 0 = whole split)" in labels
    assert "Test clips (0 = whole test split)" in labels
    at.number_input(key="ft_test_clips").set_value(4).run()
    _click(at, "Fine-tune full model (3 layers)")
    assert launched[0]["max_test_clips"] == 4
    run_id = at.session_state["ft_view"]
    _finish(folder_cache["cache"], run_id, 0.902, 315, 0.75)
    at.run()
    assert not at.exception, at.exception
    picker = at.selectbox(key="ft_view")
    label = picker.format_func(picker.value)
    assert "done" in label and "test acc 0.902 (315 clips)" in label and "0.750" not in label
    assert _metrics(at)["test accuracy"] == "0.902"
    table = at.dataframe[0].value
    assert table.loc[0, "test accuracy"] == 0.902 and table.loc[0, "test clips"] == 315
    assert table.loc[0, "validation accuracy (selection)"] == 0.75
    assert "accuracy" not in table.columns
    banner = at.success[0].value
    assert banner.startswith("Test accuracy 0.902 on 315 test clips")
    assert "chosen on validation: 0.750, the selection metric" in banner
    fig = at.get("plotly_chart")[0].proto.spec
    assert "validation accuracy (selection" in fig and "eval accuracy" not in fig


def test_parameters_shown_are_the_runs_count(folder_cache, launched) -> None:
    """The page's figure at p is the run's own count: encoder + head for the task's classes."""
    from core.models.classifier import build_classifier
    from core.models.pruning import count_parameters

    at = _page(folder_cache["two"])
    at.slider(key="ft_prune").set_value(2).run()
    clf, _ = build_classifier(folder_cache["model"], ["noise", "tone"], 2, device="cpu")
    total = count_parameters(clf)["total"]
    assert _metrics(at)["parameters"] == f"{total / 1e6:.2f} M"
    assert f"{total:,} parameters" in at.metric[0].help  # exactly, not rounded to 0.01 M
    assert "head for the task's 2 classes" in at.metric[0].help


def test_the_slider_follows_the_feature_set_and_the_shown_run(folder_cache, launched) -> None:
    at = _page(folder_cache["two"])
    caption = next(c.value for c in at.caption if c.value.startswith("Convexity suggestion"))
    suggested = int(caption.split("p = ")[1].split(" ")[0])
    assert at.slider(key="ft_prune").value == suggested
    other = 1 if suggested != 1 else 2
    at.slider(key="ft_prune").set_value(other).run()
    _click(at, f"Fine-tune pruned (p = {other})")
    at.slider(key="ft_prune").set_value(3).run()
    at.session_state["feature_key"] = folder_cache["one"]  # chosen on Setup
    at.run()
    at.session_state["feature_key"] = folder_cache["two"]
    at.run()
    assert at.slider(key="ft_prune").value == suggested  # the features' suggestion, not 3
    _click(at, "Fine-tune full model (3 layers)")
    at.selectbox(key="ft_view").select_index(1).run()  # the pruned run (newest first)
    assert not at.exception, at.exception
    assert "p = " in at.selectbox(key="ft_view").format_func(at.selectbox(key="ft_view").value)
    assert at.slider(key="ft_prune").value == other  # its prune point


def test_setup_takes_a_folder_and_speaker_rule_and_shows_time_left(
    folder_cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setup: the speaker rule reaches the features; the bar says elapsed and remaining time; the
    parameter count is the one the runs use."""
    import streamlit

    from core.data.features import load_cached_features
    from core.models.classifier import classifier_params_by_prune_point

    texts: list[str] = []
    real = streamlit.progress

    class Recorded:
        def __init__(self, bar: Any) -> None:
            self.bar = bar

        def progress(self, value: float, text: str | None = None) -> Any:
            texts.append(str(text))
            return self.bar.progress(value, text=text)

        def empty(self) -> Any:
            return self.bar.empty()

    monkeypatch.setattr(streamlit, "progress", lambda v, text=None: Recorded(real(v, text=text)))
    at = AppTest.from_file(APP, default_timeout=240)
    at.run().switch_page("pages/setup.py").run()
    at.text_input(key="custom_model").set_value(folder_cache["model"]).run()
    at.selectbox(key="dataset").set_value("folder").run()
    at.text_input(key="root").set_value(folder_cache["data"]).run()
    at.text_input(key="setup_speaker_regex").set_value(r"^spk(\d)_").run()
    at.number_input(key="max_clips").set_value(20).run()
    _click(at, "Extract features")
    assert not at.error, [e.value for e in at.error]
    fs = load_cached_features(at.session_state["feature_key"])
    assert fs.meta["selection"]["speaker_regex"] == r"^spk(\d)_"
    assert set(fs.speakers) == {"0", "1", "2"}
    encoding = [t for t in texts if t.startswith("Encoding clips")]
    assert encoding and all(" elapsed · " in t for t in encoding)
    assert " left" in encoding[-1] and "20/20" in encoding[-1]
    total = classifier_params_by_prune_point(folder_cache["model"], 2)[3]["total"]
    assert any(f"({total:,}: encoder + classification head)" in c.value for c in at.caption)
    at.switch_page("pages/finetune.py").run()  # runs from here use the rule
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_setup_errors_are_worded_for_the_dashboard(folder_cache) -> None:
    """No "pass root=<path>" and no list of every preset: one line saying what to give."""
    at = AppTest.from_file(APP, default_timeout=240)
    at.run().switch_page("pages/setup.py").run()
    at.selectbox(key="dataset").set_value("folder").run()
    at.text_input(key="root").set_value("").run()  # (a stored choice may fill it in)
    _click(at, "Extract features")
    assert len(at.error) == 1 and "root=" not in at.error[0].value
    assert "Folder field" in at.error[0].value
    at.text_input(key="root").set_value(folder_cache["data"]).run()
    at.text_input(key="custom_model").set_value("/nonexistent/my-model").run()
    _click(at, "Extract features")
    assert len(at.error) == 1, [e.value for e in at.error]
    message = at.error[0].value
    assert "Presets:" not in message and "whisper-base-offline" not in message
    assert "local model folder" in message and "/nonexistent/my-model" in message


def test_benchmarks_tell_pruned_from_full_runs_of_a_local_model_folder(folder_cache) -> None:
    """A local model folder is not in the registry: its depth comes from its config.json, so a p = 1
    run of it is listed as pruned (Benchmarks had no pruned run to compare)."""
    from core.runs import lifecycle
    from core.runs.views import finished_results
    from core.training.configs import FinetuneConfig

    for p in (None, 1):
        cfg = FinetuneConfig(model=folder_cache["model"], prune_point=p).to_dict()
        run = lifecycle.create_run("finetune", cfg)
        _finish(folder_cache["cache"], run.name, 0.9, 4, 0.8)
        result = json.loads((run / "result.json").read_text())
        result.update(model=folder_cache["model"], prune_point=p or 3, n_layers=p or 3)
        (run / "result.json").write_text(json.dumps(result))
    found = {f.result.prune_point: f.pruned for f in finished_results()}
    assert found == {3: False, 1: True}


def test_a_plan_in_the_url_is_the_launched_runs_plan(folder_cache, launched) -> None:
    """``/finetune?plan=drop+2`` (how the Plans page links a plan) prefills the plan field; the run
    launched from it keeps layers 1 and 3, and its config.json says so."""
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["feature_key"] = folder_cache["two"]
    at.query_params["plan"] = "keep 1, 3"
    at.run().switch_page("pages/finetune.py").run()
    assert not at.exception, at.exception
    assert at.text_input(key="ft_plan").value == "keep 1, 3"
    _click(at, "Fine-tune pruned (drop 2)")
    assert [(c["plan"], c["prune_point"]) for c in launched] == [("drop 2", None)]
    stored = json.loads(
        (folder_cache["cache"] / "runs" / at.session_state["ft_view"] / "config.json").read_text()
    )
    assert stored["config"]["plan"] == "drop 2" and stored["config"]["prune_point"] is None
    at.text_input(key="ft_plan").set_value("drop 1-3").run()  # every layer: refused, nothing starts
    assert any("leaves no model" in e.value for e in at.error)
    assert all(b.disabled for b in at.button if b.label.startswith("Fine-tune"))
