"""Two finished fine-tunes side by side, shaped for a table: accuracies, parameters, training times.

Test accuracy is the headline row, the selection split's beside it; a pair without a separate test
split has one row, named by the split that chose its checkpoint. Training times of separate runs are
facts with their context, never divided. Every exported row names its runs, splits, clips and seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.io.records import Record
from core.runs.views import FinishedRun, Score, comparison_source

__all__ = ["BETTER", "SETTINGS", "ComparisonRow", "RunComparison", "TimeFact", "compare_runs"]

# settings whose difference makes two runs' accuracies not like for like
SETTINGS = {
    "model": "model",
    "task": "task",
    "dataset": "dataset",
    "eval_split": "evaluation split",
    "test_split": "test split",
    "max_train_clips": "training clips cap",
    "max_eval_clips": "evaluation clips cap",
    "max_test_clips": "test clips cap",
    "seed": "seed",
    "split_seed": "split seed",
    "epochs": "epochs",
    "lr": "learning rate",
    "batch_size": "batch size",
    "whisper_input": "Whisper input",
}
BETTER = {"pruned": "pruned ✓", "full": "full ✓", None: ""}


@dataclass(frozen=True)
class ComparisonRow(Record):
    """One quantity of the two runs: each side as text, the change and which side is better."""

    quantity: str
    full: str
    pruned: str
    change: str
    better: str

    def table_row(self) -> dict[str, str]:
        """The row as the table (and the CSV export) names its columns."""
        return {
            "quantity": self.quantity,
            "full model": self.full,
            "pruned model": self.pruned,
            "pruned vs full": self.change,
            "better": self.better,
        }


@dataclass(frozen=True)
class TimeFact(Record):
    """One run's training wall time with what it depends on (a fact, not half of a ratio)."""

    run: str
    training_time: str
    median_epoch: str
    device: str
    machine_load: str
    epochs: str

    def table_row(self) -> dict[str, str]:
        """The row as the table names its columns."""
        return {
            "run": self.run,
            "training time": self.training_time,
            "median epoch": self.median_epoch,
            "device": self.device,
            "machine load": self.machine_load,
            "epochs": self.epochs,
        }


@dataclass(frozen=True)
class RunComparison:
    """A full and a pruned run compared: rows, what they were measured on, how their settings differ."""

    full: FinishedRun
    pruned: FinishedRun
    rows: tuple[ComparisonRow, ...]
    facts: str
    differences: tuple[str, ...]
    times: tuple[TimeFact, ...]

    def export_rows(self) -> list[dict[str, Any]]:
        """The rows, each with which runs, model, splits, clip counts, seeds and code made it."""
        source = comparison_source(self.full, self.pruned)
        return [{**row.table_row(), **source} for row in self.rows]


def _better(pruned_wins: bool, full_wins: bool) -> str:
    """The better side's mark ("" for a tie)."""
    return BETTER["pruned" if pruned_wins else "full" if full_wins else None]


def _accuracy_row(quantity: str, f: Score, p: Score) -> ComparisonRow:
    """One accuracy row: each side with its split and clip count, the difference in points."""
    diff = p.accuracy - f.accuracy
    return ComparisonRow(
        quantity, f.text(), p.text(), f"{diff * 100:+.1f} points", _better(diff > 0, diff < 0)
    )


def _rows(full: FinishedRun, pruned: FinishedRun) -> tuple[ComparisonRow, ...]:
    """Test accuracy (headline), validation accuracy (selection) and parameter rows."""
    from core.training.benchmark import human_value

    rows = []
    if full.result.test is not None and pruned.result.test is not None:
        rows.append(_accuracy_row("test accuracy", full.test, pruned.test))
        rows.append(
            _accuracy_row("validation accuracy (selection)", full.validation, pruned.validation)
        )
    else:
        rows.append(
            _accuracy_row("accuracy (best epoch, chosen on the same split)", full.test, pruned.test)
        )
    for key, name in (("total", "parameters (total)"), ("trainable", "parameters (trained)")):
        f, p = getattr(full.result.params, key), getattr(pruned.result.params, key)
        if f and p:
            rows.append(
                ComparisonRow(
                    name,
                    human_value(f, "parameters"),
                    human_value(p, "parameters"),
                    f"x{p / f:.2f}",
                    _better(p < f, p > f),
                )
            )
    return tuple(rows)


def _times(full: FinishedRun, pruned: FinishedRun) -> tuple[TimeFact, ...]:
    """Training wall times of the two runs as facts with their context: never divided."""
    from core.training.benchmark import human_value

    out = []
    for side, r in (("full model", full), ("pruned model", pruned)):
        epoch = r.epoch_seconds_median
        out.append(
            TimeFact(
                run=side,
                training_time=human_value(r.result.train_seconds, "s"),
                median_epoch=human_value(epoch, "s") if epoch is not None else "n/a",
                device=r.result.device or "not recorded",
                machine_load="not recorded",
                epochs=str(r.config.get("epochs", "?")),
            )
        )
    return tuple(out)


def _settings_note(full: FinishedRun, pruned: FinishedRun) -> tuple[str, tuple[str, ...]]:
    """What the accuracies were measured on, and the settings in which the two runs differ."""
    facts = (
        f"Test accuracy is the headline, scored once on the held-out split by the checkpoint that "
        f"validation chose. Full model: {full.test.text()}, selection {full.validation.text()}, "
        f"{full.result.n_train} training clips, seed {full.config.get('seed', '?')}; pruned model: "
        f"{pruned.test.text()}, selection {pruned.validation.text()}, {pruned.result.n_train} "
        f"training clips, seed {pruned.config.get('seed', '?')}."
    )
    both = {**full.config, "n_train": full.result.n_train, "n_test": full.test.n_clips}
    other = {**pruned.config, "n_train": pruned.result.n_train, "n_test": pruned.test.n_clips}
    names = {**SETTINGS, "n_train": "training clips", "n_test": "scored clips"}
    differ = tuple(
        f"{label}: {both.get(k)} vs {other.get(k)}"
        for k, label in names.items()
        if k in both or k in other
        if both.get(k) != other.get(k)
    )
    return facts, differ


def compare_runs(full: FinishedRun, pruned: FinishedRun) -> RunComparison:
    """The comparison of a full and a pruned run (see :class:`RunComparison`)."""
    facts, differ = _settings_note(full, pruned)
    return RunComparison(full, pruned, _rows(full, pruned), facts, differ, _times(full, pruned))
