"""``ModelRequest``: the model a config or feature set asks for, as stored (no torch needed to hold one)."""

from __future__ import annotations

from dataclasses import dataclass

from core.io.records import Record

__all__ = ["ModelRequest"]


@dataclass(frozen=True)
class ModelRequest(Record):
    """Which model is asked for: a preset key, hub id or directory, and how to run it.

    ``whisper_input`` ("trimmed": the 1-s clip, "padded": the 30-s window) applies to Whisper models only;
    ``trust_remote_code`` lets a hub model run its own code (only for repositories you trust).
    """

    name: str
    whisper_input: str = "trimmed"
    trust_remote_code: bool = False
