"""One resolved model per piece of work: requests resolve once, resolved models load without resolving
again, shards and runs refuse weights other than the ones they were planned or pinned on."""

from __future__ import annotations

import collections
import json
import pickle
from pathlib import Path

import pytest
import torch

from core.data.features import Selection, extract_features, key_identity
from core.errors import FeatureError, LabError, TrainingError
from core.models import loading
from core.models.identity import ModelIdentity
from core.models.loading import ResolvedModel, as_resolved, resolve
from core.models.request import ModelRequest
from tests.helpers.tiny_assets import make_tiny_wav2vec2, tiny_config_dict


@pytest.fixture(autouse=True)
def _isolated(private_cache: Path, single_threaded: None) -> None:
    """Own cache folder per test, one torch thread."""


def _count(monkeypatch: pytest.MonkeyPatch, *names: str) -> collections.Counter:
    """Count calls of ``core.models.loading`` functions (the real ones still run)."""
    calls: collections.Counter = collections.Counter()
    for name in names:
        real = getattr(loading, name)

        def spy(*a, _real=real, _name=name, **k):
            calls[_name] += 1
            return _real(*a, **k)

        monkeypatch.setattr(loading, name, spy)
    return calls


def _other_weights(path: Path) -> Path:
    """A tiny wav2vec2 like ``make_tiny_wav2vec2``'s, with other weights."""
    make_tiny_wav2vec2(path)
    from transformers import Wav2Vec2Model

    model = Wav2Vec2Model.from_pretrained(path)
    with torch.no_grad():
        model.encoder.layers[0].attention.q_proj.weight.add_(1.0)
    model.save_pretrained(path)
    return path


@pytest.mark.slow  # converts the real tiny.en weights into a private cache (about 10 s)
def test_an_offline_whisper_extraction_resolves_once_and_checks_its_weights_once(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache miss of an offline Whisper: one look-up, one offline-weights check, then a cache hit."""
    from core.models.whisper_offline import ensure_offline_whisper, offline_whisper_available

    key = "whisper-tiny.en-offline"
    if not offline_whisper_available(key):
        pytest.skip("the whisper-tiny.en weight package is not installed")
    ensure_offline_whisper(key)  # the one-off conversion is not what is counted
    calls = _count(monkeypatch, "resolve_model", "ensure_offline_whisper", "resolve")
    sel = Selection.of("folder", str(tree), max_clips=3)
    fs = extract_features(ModelRequest(key), sel, batch_size=4)
    assert not fs.from_cache and fs.meta["input_mode"] == "trimmed"
    assert calls == {"resolve": 1, "resolve_model": 1, "ensure_offline_whisper": 1}
    assert extract_features(ModelRequest(key), sel, batch_size=4).from_cache


def test_a_local_extraction_resolves_once_and_a_resolved_model_loads_without_resolving(
    tree: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count(monkeypatch, "resolve_model", "resolve")
    fs = extract_features(ModelRequest(str(model_dir)), Selection.of("folder", str(tree)))
    assert not fs.from_cache and calls == {"resolve": 1, "resolve_model": 1}
    resolved = pickle.loads(pickle.dumps(resolve(ModelRequest(str(model_dir)))))
    assert isinstance(resolved, ResolvedModel) and resolved.identity.known
    calls.clear()
    encoder = resolved.load(device="cpu")
    assert not calls and encoder.resolved == resolved
    assert extract_features(resolved, Selection.of("folder", str(tree))).key == fs.key
    assert key_identity(encoder) == key_identity(resolved)


def test_the_input_mode_rule_is_the_requests(tmp_path: Path) -> None:
    """A request's window is checked when it resolves; non-Whisper models run on the waveform."""
    path = make_tiny_wav2vec2(tmp_path / "w2v")
    assert as_resolved(ModelRequest(str(path), "padded")).input_mode == "waveform"
    with pytest.raises(LabError, match="whisper_input must be"):
        resolve(ModelRequest("whisper-tiny", "cropped"))
    assert ModelRequest.from_dict(ModelRequest("m", "padded").to_dict()) == ModelRequest(
        "m", "padded"
    )


def test_shards_of_other_weights_are_refused(tree: Path, tmp_path: Path) -> None:
    """Shards computed by a model of the same depth but other weights do not enter the entry."""
    from core.data.sharded import assemble_shards, extract_shard

    a = make_tiny_wav2vec2(tmp_path / "a")
    b = _other_weights(tmp_path / "b")
    sel = Selection.of("folder", str(tree))
    n = len(sel.table())
    good = extract_shard(ModelRequest(str(a)), sel, 0, n, device="cpu")
    other = extract_shard(ModelRequest(str(b)), sel, 0, n, device="cpu")
    assert good.identity["n_layers"] == other.identity["n_layers"]
    with pytest.raises(FeatureError, match="was computed by"):
        assemble_shards(ModelRequest(str(a)), sel, [other])
    assert assemble_shards(ModelRequest(str(a)), sel, [good]).meta["n_clips"] == n


def _two_folders_named_m(tmp_path: Path) -> tuple[Path, Path]:
    """Two model folders both called ``m`` (in ``one/`` and ``two/``), with different weights."""
    return make_tiny_wav2vec2(tmp_path / "one" / "m"), _other_weights(tmp_path / "two" / "m")


def test_a_sweep_pinned_to_other_weights_is_refused_before_its_folder(
    tiny_assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same name standing for other weights than the pin: one line, and no run folder."""
    from core.runs.folders import runs_root
    from core.runs.lifecycle import create_run_on
    from core.runs.spec import ExecutorSpec
    from core.training.settings import check_settings

    one, _ = _two_folders_named_m(tmp_path)
    monkeypatch.chdir(one.parent)
    config = tiny_config_dict(tiny_assets, model="m", points=[1], benchmark=False)
    pinned = check_settings("sweep", config)["model_identity"]
    assert pinned["weights"] == resolve(ModelRequest("m")).identity.weights
    monkeypatch.chdir(tmp_path / "two")
    with pytest.raises(TrainingError, match="pinned to") as err:
        create_run_on("sweep", {**config, "model_identity": pinned}, ExecutorSpec())
    assert "\n" not in str(err.value)
    root = runs_root()
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.slow
def test_runs_record_the_weights_they_ran_on(
    tiny_assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep pins its points and benchmarks to its curve's weights, records them, and a resumed
    sweep whose model folder now holds other weights refuses before training anything."""
    from core.training.sweep import SweepConfig, SweepResult, run_sweep

    one, _ = _two_folders_named_m(tmp_path)
    monkeypatch.chdir(one.parent)
    base = tiny_config_dict(tiny_assets, model="m", epochs=1, max_steps_per_epoch=1)
    cfg = SweepConfig.from_dict({**base, "points": [1], "benchmark": True})
    cfg.check()
    run = tmp_path / "sweep"
    result = run_sweep(cfg, run)
    ident = resolve(ModelRequest("m")).identity
    assert result.model_identity == ident
    saved = SweepResult.from_dict(json.loads((run / "results.json").read_text()))
    assert saved.model_identity == ident

    def recorded(name: str, *keys: str) -> ModelIdentity:
        data = json.loads((run / name).read_text())
        for key in keys:
            data = data[key]
        return ModelIdentity.from_dict(data["model_identity"])

    assert recorded("pretrained_convexity.json") == ident
    assert recorded("p1/result.json") == ident
    assert recorded("p1/config.json", "config") == ident
    assert recorded("benchmark_p1.json") == ident
    monkeypatch.chdir(tmp_path / "two")  # "m" is now another model folder: resuming refuses
    (run / "p1" / "result.json").unlink()
    with pytest.raises(TrainingError, match="pinned to"):
        run_sweep(cfg, run)
    assert not (run / "p1" / "result.json").exists()


def test_a_padded_whisper_classifier_keeps_the_30_s_window(tmp_path: Path) -> None:
    """The request's window reaches the classifier that is trained and the one reloaded to score it."""
    from core.models.classifier import build_classifier, load_classifier
    from tests.helpers.tiny_assets import make_tiny_whisper

    path = make_tiny_whisper(tmp_path / "w")
    for mode, positions in (("padded", 1500), ("trimmed", 50)):
        clf, enc = build_classifier(ModelRequest(str(path), mode), ["a", "b"], device="cpu")
        assert (enc.input_mode, clf.config.max_source_positions) == (mode, positions)
        clf.save_pretrained(tmp_path / mode)
        enc.feature_extractor.save_pretrained(tmp_path / mode)
        again, view = load_classifier(tmp_path / mode, "cpu", mode)
        assert (view.input_mode, again.config.max_source_positions) == (mode, positions)
