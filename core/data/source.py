"""Where a feature set's clips came from: the dataset, its folder and the speaker/split rule used.

A run launched from a feature set must read the same clips under the same rules, so this record is
built from the feature set's ``meta.json`` and carried into every run config made from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.data.datasets import get_dataset
from core.errors import DatasetError

__all__ = ["FeatureSource"]


@dataclass(frozen=True)
class FeatureSource:
    """The data a feature set was extracted from (``root`` None: the dataset's own location)."""

    dataset: str
    root: str | None
    speaker_regex: str | None  # None: the dataset's own rule
    split_seed: int
    min_clips: int | None  # None: the dataset's default speakers-task floor

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> FeatureSource:
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

    def run_fields(self) -> dict[str, Any]:
        """The fields of a fine-tune or sweep config that name these clips and rules."""
        return {
            "dataset": self.dataset,
            "root": self.root,
            "speaker_regex": self.speaker_regex,
            "split_seed": self.split_seed,
            "min_clips": self.min_clips,
        }
