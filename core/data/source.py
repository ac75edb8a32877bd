"""Which clips: where they come from and under which rules (:class:`ClipSource`), and what to extract of
them (:class:`Selection`).

One source names the clips of a feature set, of its extraction and of every run made from it, so a run
reads the same clips under the same rules; a run's splits are selections of its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.data.datasets import ClipTable, compile_speaker_regex, get_dataset, load_table, select
from core.errors import DatasetError
from core.io.records import Record

__all__ = ["ClipSource", "Selection"]


@dataclass(frozen=True)
class ClipSource(Record):
    """A registered dataset and its folder, with the rules that make its speakers and splits."""

    dataset: str = field(
        default="sample",
        metadata={"help": 'dataset key (see "datasets"): sample, speech-commands, folder'},
    )
    root: str | None = field(
        default=None, metadata={"help": "dataset folder (default: the dataset's own location)"}
    )
    speaker_regex: str | None = field(
        default=None,
        metadata={
            "help": "folder datasets: the speaker id is this regex's group named 'speaker', else its "
            "first group, searched in the file name"
        },
    )
    split_seed: int = field(
        default=0, metadata={"help": "seed of the train/validation/test split of a folder dataset"}
    )
    min_clips: int | None = field(
        default=None,
        metadata={"help": "speakers task: minimum clips per speaker (none: the dataset default)"},
    )

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> ClipSource:
        """Read a feature set's ``meta.json`` (the folder is top-level, the rules sit in ``selection``)."""
        dataset = str(meta.get("dataset") or "sample")
        spec = get_dataset(dataset)
        sel = meta.get("selection") or {}
        root = meta.get("root") or sel.get("root")
        if root is None and spec.default_root is None:
            raise DatasetError(
                f"feature set {str(meta.get('key', ''))[:8]} does not record its {spec.title!r} "
                "folder: extract it again on Setup"
            )
        regex = sel.get("speaker_regex")
        min_clips = sel.get("min_clips")
        return cls(
            dataset=dataset,
            root=str(root) if root is not None else None,
            speaker_regex=str(regex) if regex is not None else None,
            split_seed=int(sel.get("split_seed") or 0),
            min_clips=int(min_clips) if min_clips is not None else None,
        )

    def table(self) -> ClipTable:
        """Every clip of the dataset, labelled and split under these rules."""
        return load_table(
            self.dataset, self.root, split_seed=self.split_seed, speaker_regex=self.speaker_regex
        )


@dataclass(frozen=True)
class Selection:
    """What to extract: the clips of a source for a task and split, with a seeded stratified cap."""

    source: ClipSource = field(default_factory=ClipSource)
    task: str = "words"
    split: str = "all"
    max_clips: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.source, ClipSource):
            raise TypeError(
                "Selection takes a ClipSource; Selection.of(dataset, root, ...) for short"
            )
        if self.source.speaker_regex is not None:
            compile_speaker_regex(self.source.speaker_regex)  # a bad regex fails here, in one line

    @classmethod
    def of(
        cls,
        dataset: str = "sample",
        root: str | None = None,
        *,
        task: str = "words",
        split: str = "all",
        max_clips: int | None = None,
        seed: int = 0,
        **rules: Any,
    ) -> Selection:
        """For short: a dataset name with its folder and any other :class:`ClipSource` field
        (``speaker_regex``, ...) as a keyword."""
        source = ClipSource(dataset, root, **rules)
        return cls(source, task=task, split=split, max_clips=max_clips, seed=seed)

    def pick(self, full: ClipTable) -> ClipTable:
        """These clips of ``full``, the source's table (see ``core.data.datasets.select``)."""
        return select(
            full,
            self.task,
            self.split,
            max_clips=self.max_clips,
            seed=self.seed,
            min_clips=self.source.min_clips,
        )

    def table(self) -> ClipTable:
        """Index the source and apply the task/split/max_clips selection."""
        return self.pick(self.source.table())

    def key_part(self) -> dict[str, Any]:
        """The selection parameters that enter the cache key (the folder itself enters via the fingerprint)."""
        src = self.source
        part: dict[str, Any] = {
            "dataset": src.dataset,
            "task": self.task,
            "split": self.split,
            "max_clips": self.max_clips,
            "seed": self.seed,
            "min_clips": src.min_clips,
            "split_seed": src.split_seed,
        }
        if src.speaker_regex is not None:  # the dataset's own regex: keys stay those made before
            part["speaker_regex"] = src.speaker_regex
        return part
