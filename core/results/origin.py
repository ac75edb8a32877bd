"""Where a stored result came from: computed here, or imported from a bundle (which, when).

Keys are built from public facts and an entry's checksum covers only itself, so a bundle can carry a
well-formed result for a key this store does not hold yet. The origin is therefore recorded beside the
entry by the store itself (``origin.json``, never taken from a bundle: a bundle member of that name is
refused as an unlisted file), shown wherever a result is, and can make computation paths refuse
anything not computed here (``CONVEXITY_LAB_COMPUTED_ONLY=1`` or the CLI's ``--computed-only``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from core.errors import LabError
from core.io.atomic import atomic_write_bytes
from core.io.records import Record

__all__ = ["COMPUTED_ONLY_ENV", "ORIGIN_NAME", "Origin", "computed_only", "read_origin"]

ORIGIN_NAME = "origin.json"
COMPUTED_ONLY_ENV = "CONVEXITY_LAB_COMPUTED_ONLY"
MAX_ORIGIN_BYTES = 4096


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Origin(Record):
    """``computed`` here, ``imported`` from a bundle, or ``unrecorded`` (an entry older than origins)."""

    source: Literal["computed", "imported", "unrecorded"] = "unrecorded"
    at: str = ""
    bundle: str | None = None  # the bundle's file name
    bundle_sha256: str | None = None
    kept: bool = True  # False: computed but not stored (a read-only cache, a full disk)

    @classmethod
    def computed(cls, kept: bool = True) -> Origin:
        """Computed by this installation, now (``kept``: and stored)."""
        return cls("computed", _now(), kept=kept)

    @classmethod
    def imported(cls, bundle: str, bundle_sha256: str) -> Origin:
        """Imported now from the bundle ``bundle``."""
        return cls("imported", _now(), bundle, bundle_sha256)

    @property
    def is_computed(self) -> bool:
        """Whether this installation computed it."""
        return self.source == "computed"

    def describe(self) -> str:
        """One phrase for listings, captions and exports."""
        if self.source == "computed":
            return f"computed here {self.at[:19]}"
        if self.source == "imported":
            sha = (self.bundle_sha256 or "")[:12]
            return f"imported from {self.bundle} (sha256 {sha}) {self.at[:19]}, not computed here"
        return "origin not recorded (stored before origins were kept)"

    def tag(self) -> str:
        """One word for tables: computed, imported or unrecorded."""
        return self.source

    def write(self, directory: Path) -> None:
        """Record this origin beside the entry in ``directory``."""
        atomic_write_bytes(directory / ORIGIN_NAME, json.dumps(self.to_dict()).encode())


def read_origin(directory: Path) -> Origin:
    """The recorded origin of the entry in ``directory``; ``unrecorded`` when missing or malformed."""
    path = directory / ORIGIN_NAME
    try:
        if path.stat().st_size > MAX_ORIGIN_BYTES:
            return Origin()
        return Origin.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, LabError, RecursionError):
        return Origin()


def computed_only() -> bool:
    """Whether computation paths must ignore results this installation did not compute."""
    return os.environ.get(COMPUTED_ONLY_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
