"""Which question a population interval answers, named once for captions, CSV columns and docs.

An interval is the spread of a curve over other draws of *something*: other speakers, other
recordings of the same speakers, other clips. Which one depends on what the half-samples draw
(``ResampleUnits``), and a reader must be told in words; this table is where those words live.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.geometry.resampling import ResampleUnits

__all__ = ["INTERVAL_KINDS", "IntervalKind", "interval_kind"]


@dataclass(frozen=True)
class IntervalKind:
    """One kind of population interval: its short name, what it is an interval of, and its CSV
    column prefix."""

    key: str
    name: str  # e.g. "other speakers, same count"
    of: str  # what it is an interval of, in a sentence's words
    column: str  # CSV column prefix: <column>_low, <column>_high


INTERVAL_KINDS = {
    k.key: k
    for k in (
        IntervalKind(
            "other-speakers-half",
            "other speakers, half the count",
            "the mean curve of other sets of half as many speakers from the same population "
            "(speaker convexity moves with the number of speakers, so it is taken at half the "
            "count: the mean over half-samples of the speakers)",
            "other_speakers_half",
        ),
        IntervalKind(
            "other-speakers",
            "other speakers, same count",
            "the mean curve of other sets of as many speakers from the same population "
            "(half-samples of the speakers, scaled to the full count)",
            "other_speakers",
        ),
        IntervalKind(
            "other-recordings",
            "same speakers, other recordings",
            "the mean curve of these same speakers with other recordings, as many per speaker "
            "(half-samples of each speaker's clips)",
            "other_recordings",
        ),
        IntervalKind(
            "other-clips",
            "other clips, same count",
            "the mean curve of other sets of as many clips (half-samples of the clips)",
            "other_clips",
        ),
    )
}


def interval_kind(units: ResampleUnits, classes: bool = False) -> IntervalKind:
    """The kind of interval that half-samples of ``units`` give (``classes``: the units are the
    label set's classes, e.g. speakers drawn for speaker labels)."""
    if units.within:
        return INTERVAL_KINDS["other-recordings"]
    if units.unit == "speaker":
        return INTERVAL_KINDS["other-speakers-half" if classes else "other-speakers"]
    return INTERVAL_KINDS["other-clips"]
