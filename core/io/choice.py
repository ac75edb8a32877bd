"""The user's last explicit Setup choice, kept on disk so a new session starts from it.

A new dashboard session (a new tab, a reload) must show what the user last chose on Setup, not whatever
feature set happens to be newest in the cache. Stored as ``cache_dir()/last_choice.json`` (atomic write);
a missing or damaged file reads as "no choice yet".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.io.atomic import atomic_write_json
from core.io.paths import cache_dir
from core.io.records import Record

__all__ = ["SetupChoice", "load_choice", "save_choice"]

FILE = "last_choice.json"


@dataclass(frozen=True)
class SetupChoice(Record):
    """Model, data and the feature set the user picked on Setup."""

    feature_key: str
    model: str
    custom_model: str = ""
    dataset: str = "sample"
    root: str = ""
    split: str = "all"
    max_clips: int = 0
    whisper_input: str = "trimmed"


def load_choice() -> SetupChoice | None:
    """The stored choice, or None if there is none (or it cannot be read)."""
    try:
        data = json.loads((cache_dir() / FILE).read_text(encoding="utf-8"))
        return SetupChoice.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def save_choice(choice: SetupChoice) -> None:
    """Store ``choice`` atomically (a concurrent reader sees the old or the new file, never half)."""
    atomic_write_json(cache_dir() / FILE, choice.to_dict())
