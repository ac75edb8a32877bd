"""Speaker ids from file names by ``--speaker-regex``, and one speaker rule per dataset for every command.

The folder is real audio: clips of the bundled sample rewritten as FLAC under new names
(``<word>/<name>-take<n>.flac``, no ``_nohash_``), so only a speaker regex finds the speakers. Three
speakers have 12 clips and one has 9, below the ``folder`` dataset's rule (>= 10 clips); the folder
also holds Speech Commands-style split lists, which used to make ``datasets --root`` apply the
50-clip Speech Commands rule while ``extract ... folder`` applied 10.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf

from core.cli.main import main
from core.data.datasets import (
    DatasetError,
    compile_speaker_regex,
    get_dataset,
    load_table,
    speaker_from_name,
    speaker_rule,
)
from core.data.features import Selection, load_cached_features
from core.io.paths import REPO_ROOT

SAMPLE = REPO_ROOT / "data" / "sample"
REGEX = r"^(?P<speaker>[a-z]+)-take\d"
NAMES = {"alice": 4, "bob": 4, "carol": 4, "dave": 3}  # words each speaker says (3 takes each)
WORDS = ("yes", "no", "up", "down")
KEPT = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bundled-sample clips of four voices as FLACs named ``<word>/<name>-take<n>.flac``, with lists."""
    root = tmp_path_factory.mktemp("renamed")
    voices = sorted({p.name.split("_nohash_")[0] for p in (SAMPLE / "yes").glob("*.ogg")})[:4]
    lists: dict[str, list[str]] = {"validation": [], "testing": []}
    for (name, n_words), voice in zip(NAMES.items(), voices, strict=True):
        for word in WORDS[:n_words]:
            (root / word).mkdir(exist_ok=True)
            for take in range(3):
                audio, sr = sf.read(SAMPLE / word / f"{voice}_nohash_{take}.ogg", dtype="float32")
                rel = f"{word}/{name}-take{take}.flac"
                sf.write(root / rel, audio, sr, subtype="PCM_16")
                if name in ("bob", "carol"):  # words: held-out speakers, as in Speech Commands
                    lists["validation" if name == "bob" else "testing"].append(rel)
    for which, rels in lists.items():
        (root / f"{which}_list.txt").write_text("".join(f"{r}\n" for r in rels))
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One private cache for the module (features extracted once are reused)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def cli(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> Callable[..., tuple[int, str, str]]:
    """``python -m core ARGS`` in-process with the module's cache: (exit code, stdout, stderr)."""
    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_named_group_wins_over_the_first_group_and_bad_regexes_are_one_line() -> None:
    assert speaker_from_name(compile_speaker_regex(r"^(\w)(?P<speaker>\w+)-"), "xbob-1") == "bob"
    assert speaker_from_name(compile_speaker_regex(r"^([a-z]+)_"), "bob_nohash_1.wav") == "bob"
    assert speaker_from_name(compile_speaker_regex(r"^([a-z]+)_"), "Bob-1.wav") == ""
    for bad, why in (("([a-z]+", "not a valid regular expression"), ("^[a-z]+", "has no group")):
        with pytest.raises(DatasetError, match=why) as err:
            compile_speaker_regex(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(DatasetError, match="has no group"):
        Selection.of("folder", root="x", speaker_regex="^[a-z]+")


def test_speaker_regex_is_part_of_the_cache_key_only_when_given() -> None:
    plain = Selection.of("folder", root="x")
    assert "speaker_regex" not in plain.key_part()  # keys made before the option stay valid
    given = Selection.of("folder", root="x", speaker_regex=REGEX)
    assert given.key_part()["speaker_regex"] == REGEX


def test_datasets_extract_and_finetune_keep_the_same_speakers(
    cli: Callable[..., tuple[int, str, str]], renamed: Path, model_dir: Path
) -> None:
    """The rule is the dataset's: ``datasets --root`` reads the folder as ``folder``, like extract and
    fine-tuning, whatever split lists it holds; naming another dataset applies that one's rule."""
    from core.data.source import ClipSource
    from core.training.configs import DataSelection, FinetuneConfig
    from core.training.task_data import load_task_data

    assert get_dataset("folder").speaker_rule == "speakers with >= 10 clips"
    code, out, err = cli("datasets", "--root", str(renamed), "--speaker-regex", REGEX)
    assert code == 0, err
    assert "speakers task (rule of 'folder': >= 10 clips per speaker): keeps 3 of 4" in out
    assert "dropped: dave" in out and "datasets speech-commands --root DIR" in out
    code, named, _ = cli("datasets", "folder", "--root", str(renamed), "--speaker-regex", REGEX)
    assert code == 0 and "keeps 3 of 4" in named
    code, sc, _ = cli(
        "datasets", "speech-commands", "--root", str(renamed), "--speaker-regex", REGEX
    )
    assert code == 0 and "rule of 'speech-commands': >= 50 clips per speaker): keeps 0 of 4" in sc
    code, listing, _ = cli("datasets")
    assert code == 0 and "speakers with >= 50 clips" in listing

    code, out, err = cli(
        "extract",
        str(model_dir),
        "folder",
        "--root",
        str(renamed),
        "--task",
        "speakers",
        "--speaker-regex",
        REGEX,
        "--no-progress",
    )
    assert code == 0, err
    key = re.search(r"^key: ([0-9a-f]+)", out, re.M).group(1)
    fs = load_cached_features(key)
    assert sorted(set(fs.speakers)) == list(KEPT) and len(fs.speakers) == 36
    assert fs.meta["selection"]["speaker_regex"] == REGEX

    cfg = FinetuneConfig(
        model=str(model_dir),
        data=DataSelection(
            ClipSource("folder", str(renamed), speaker_regex=REGEX), task="speakers"
        ),
    )
    assert load_task_data(cfg).classes == list(KEPT)
    table = load_table("folder", renamed, speaker_regex=REGEX)
    assert speaker_rule(table).kept == KEPT and speaker_rule(table).dropped == ("dave",)


def test_convexity_needs_the_regex_and_names_the_option(
    cli: Callable[..., tuple[int, str, str]], renamed: Path, model_dir: Path
) -> None:
    common = (str(model_dir), "folder", "--root", str(renamed), "--no-progress")
    for task in ("words", "speakers"):  # after extraction (geometry) / before it (selection)
        code, _, err = cli("convexity", *common, "--task", task, "--labels", "speaker")
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "--speaker-regex" in err, err  # the option the message names exists
    code, out, err = cli(
        "convexity",
        *common,
        "--task",
        "speakers",
        "--speaker-regex",
        REGEX,
        "--exhaustive",
        "--k",
        "5",
    )
    assert code == 0, err
    assert "speaker" in out and "word" in out
    for command in ("extract", "convexity", "criteria"):
        code, _, err = cli(command, *common, "--speaker-regex", "([a-z]+")
        assert code == 2 and err.startswith("error: speaker regex") and len(err.splitlines()) == 1


def test_finetune_and_sweep_refuse_a_bad_regex_before_creating_a_run(
    cli: Callable[..., tuple[int, str, str]], renamed: Path, cache: Path
) -> None:
    runs = cache / "runs"
    before = sorted(runs.iterdir()) if runs.exists() else []
    for command in ("finetune", "sweep"):
        code, _, err = cli(
            command,
            "--model",
            "whisper-tiny.en-offline",
            "--dataset",
            "folder",
            "--root",
            str(renamed),
            "--task",
            "speakers",
            "--speaker-regex",
            "^[a-z]+",
        )
        assert code == 2 and "has no group" in err and len(err.splitlines()) == 1, err
    assert (sorted(runs.iterdir()) if runs.exists() else []) == before


def test_a_sweep_with_a_speaker_regex_runs(
    tiny_assets: dict[str, Path], renamed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to raise TrainingError: feature selections had no speaker regex."""
    from core.training.sweep import SweepConfig, run_sweep
    from tests.helpers.tiny_assets import tiny_config

    monkeypatch.setenv("CONVEXITY_LAB_CACHE", str(tmp_path / "cache"))
    base = tiny_config(
        tiny_assets,
        root=str(renamed),
        task="speakers",
        speaker_regex=REGEX,
        eval_split="validation",
        test_split="test",
        epochs=1,
        max_steps_per_epoch=2,
        convexity=False,
        convexity_max_pairs=20,
    )
    result = run_sweep(
        SweepConfig.from_dict({**base.to_dict(), "points": [1], "benchmark": False}), tmp_path / "s"
    )
    (row,) = result.rows
    assert row.prune_point == 1 and row.test_accuracy is not None
    speaker = result.pretrained_convexity["speaker"]
    assert len(speaker.scores) == 3  # tiny wav2vec2: 2 layers + input
