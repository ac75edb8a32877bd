"""Compare's "compare at equal size": two curves of data sets of different size, each taken at a
size both reach (``core.geometry.rarefaction``), and their difference with its interval."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.errors import LabError
from core.geometry import (
    DEFAULT_K,
    ConvexityOptions,
    RarefySize,
    common_size,
    kept_share,
    rarefied_curve,
    size_matched_difference,
)
from core.results import CurveSeries
from pages.parts import cached, figures
from pages.parts.messages import one_line

MAX_SUBSETS = 40


def _counts(fs: Any, label_set: str) -> list[int]:
    """Clips per class of one label set of a feature set."""
    return sorted(Counter(fs.labels(label_set)).values())


def _features(s: CurveSeries) -> Any | None:
    """The cached feature set behind a curve, or None (imported curves may have none)."""
    if s.provenance is None or not s.provenance.feature_key:
        return None
    try:
        return cached.feature_set(s.provenance.feature_key)
    except LabError:
        return None


def _compute(
    sides: list[tuple[CurveSeries, Any]], size: RarefySize, n_subsets: int
) -> list[Any] | None:
    """Both curves at ``size`` with a progress bar and time left from measured subsets."""
    bar = st.progress(0.0, text="Compare at equal size: starting")
    total = n_subsets * len(sides)
    t0 = time.perf_counter()
    out = []
    for i, (s, fs) in enumerate(sides):
        k = s.provenance.k if s.provenance is not None and s.provenance.k else DEFAULT_K

        def tick(done: int, _n: int, base: int = i * n_subsets) -> None:
            finished = base + done
            left = (time.perf_counter() - t0) / finished * (total - finished)
            bar.progress(
                finished / total,
                text=f"Compare at equal size: {finished} of {total} subsets, about {left:.0f} s left "
                "(any click stops it)",
            )

        out.append(
            rarefied_curve(
                fs.features,
                list(fs.labels(s.label_set)),
                size,
                n_subsets,
                ConvexityOptions(k=int(k), target_se=0.005),
                name=s.label_set,
                progress=tick,
            )
        )
    bar.empty()
    return out


@dataclass(frozen=True)
class _Pair:
    """The two curves compared, A and B: their ids, series and feature sets."""

    a_id: str
    b_id: str
    sa: CurveSeries
    fa: Any
    sb: CurveSeries
    fb: Any

    @property
    def paired(self) -> bool:
        """Whether A and B are the same clips and label set, so their subsets are shared."""
        return list(self.fa.paths) == list(self.fb.paths) and self.sa.label_set == self.sb.label_set


def _intro() -> None:
    """The section's title and why curves of different data sizes need a common size."""
    st.subheader("Compare at equal size")
    st.caption(
        "Graph convexity moves with the number of classes and clips per class, so curves of data "
        "sets of different size do not compare as they are. Here each is taken at a size both "
        "reach: the mean over seeded subsets of that many classes and clips per class, with a 90% "
        "interval of the mean curve of other data sets of that size from the same population."
    )


def _pick_pair(
    with_features: list[tuple[CurveSeries, Any]], labels: dict[str, str], pickers: Any
) -> _Pair | None:
    """A and B from the curves with features, or None (and a note) when the same one is picked."""
    by_id = {s.id: (s, fs) for s, fs in with_features}
    pa, pb = pickers(list(by_id), labels, ("cmp_ea", "cmp_eb"))
    if pa == pb:
        st.info("Pick two different curves.")
        return None
    return _Pair(pa, pb, *by_id[pa], *by_id[pb])


def _size_inputs(most: RarefySize) -> tuple[RarefySize, int]:
    """The size (classes, clips per class) at most ``most``, and the number of subsets."""
    c1, c2, c3 = st.columns(3)
    n_classes = c1.number_input(
        "Classes", 2, most.n_classes, most.n_classes, key="cmp_size_classes"
    )
    per_class = c2.number_input(
        "Clips per class", 2, most.per_class, most.per_class, key="cmp_size_clips"
    )
    n_subsets = c3.number_input("Subsets", 4, MAX_SUBSETS, 10, key="cmp_size_subsets")
    return RarefySize(int(n_classes), int(per_class)), int(n_subsets)


def _curves_at_size(pair: _Pair, size: RarefySize, n_subsets: int) -> list[Any] | None:
    """Both curves at ``size``: computed on the button, kept for the same request; else None."""
    request = (pair.a_id, pair.b_id, size, n_subsets)
    if st.button("Compare at equal size", key="cmp_size_go"):
        try:
            st.session_state["cmp_size_result"] = (
                request,
                _compute([(pair.sa, pair.fa), (pair.sb, pair.fb)], size, n_subsets),
            )
        except LabError as exc:
            st.info(f"Not at this size: {one_line(exc)}")
            return None
    stored = st.session_state.get("cmp_size_result")
    if stored is None or stored[0] != request:
        st.caption(f"A and B at {size.describe()}: press the button to compute.")
        return None
    return stored[1]


def _show_curves(a: Any, b: Any, size: RarefySize, labels: dict[str, str], pair: _Pair) -> None:
    """Plot A and B at the common size, each with its interval band."""
    fig = figures.curve_figure(
        [
            figures.Curve(f"A at {size.describe()}", list(a.layers), np.asarray(a.score)),
            figures.Curve(f"B at {size.describe()}", list(b.layers), np.asarray(b.score)),
        ],
        height=340,
        y_title="graph convexity at equal size",
        caption=[f"A = {labels[pair.a_id]}", f"B = {labels[pair.b_id]}"],
    )
    for name, iv, colour in (("A", a, "#1d4ed8"), ("B", b, "#b45309")):
        half = np.asarray(iv.high) - np.asarray(iv.score)
        figures.add_band(
            fig,
            f"{iv.level:.0%} interval ({name})",
            list(iv.layers),
            np.asarray(iv.score),
            half,
            colour,
        )
    figures.show(fig, key="cmp_size_plot", config=figures.figure_config("equal-size", fig))


def _difference_rows(a: Any, b: Any, diff: Any) -> list[dict[str, Any]]:
    """One table row per layer: A and B at the size, A - B with its interval and whether it excludes 0."""
    return [
        {
            "layer": i,
            "A at size": round(sa_, 4),
            "B at size": round(sb_, 4),
            "A − B": round(d, 4),
            "low": round(lo, 4),
            "high": round(hi, 4),
            "excludes 0": ex,
        }
        for i, sa_, sb_, d, lo, hi, ex in zip(
            diff.layers,
            a.score,
            b.score,
            diff.difference,
            diff.low,
            diff.high,
            diff.excludes_zero,
            strict=True,
        )
    ]


def _how_to_read(a: Any, size: RarefySize, paired: bool) -> str:
    """What each curve and the difference are: subsets, interval, and paired or independent."""
    return (
        f"Each curve: the mean over {a.n_resamples} seeded subsets of {size.describe()}; "
        f"{a.level:.0%} interval of {a.question}. A − B: "
        + (
            "the same clips, so the difference is taken within each shared subset (paired)."
            if paired
            else "different data, so the two variances add (independent)."
        )
    )


def equal_size_section(
    chosen: list[CurveSeries], labels: dict[str, str], pickers: Any
) -> list[dict[str, Any]]:
    """Pick A and B, a size both reach and the subsets; on the button, both curves at that size
    and A - B with its interval (paired over the same subsets when the clips are the same)."""
    with_features = [(s, fs) for s in chosen if (fs := _features(s)) is not None]
    if len(with_features) < 2:
        return []
    _intro()
    pair = _pick_pair(with_features, labels, pickers)
    if pair is None:
        return []
    counts = [_counts(pair.fa, pair.sa.label_set), _counts(pair.fb, pair.sb.label_set)]
    try:
        most = common_size(counts)
    except LabError as exc:
        st.info(f"No size both reach: {one_line(exc)}")
        return []
    size, n_subsets = _size_inputs(most)
    curves = _curves_at_size(pair, size, n_subsets)
    if curves is None:
        return []
    a, b = curves
    paired = pair.paired
    diff = size_matched_difference(
        a,
        b,
        f"A ({pair.sa.label_set})",
        f"B ({pair.sb.label_set})",
        paired=paired,
        share=kept_share(np.array(counts[0]), size) if paired else None,
    )
    _show_curves(a, b, size, labels, pair)
    st.markdown(f"**At equal size:** {diff.verdict}.")
    rows = _difference_rows(a, b, diff)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="cmp_size_table")
    st.caption(_how_to_read(a, size, paired))
    return rows
