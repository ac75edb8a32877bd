"""Coverage simulations of half-sample intervals on synthetic speaker populations (tests and bench)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from core.geometry.calibration import (
    Draw,
    SimulatedDataset,
    coverage_simulation,
    half_count_coverage,
    stability_simulation,
)
from core.geometry.options import ConvexityOptions
from core.geometry.resampling import ResampleUnits
from core.geometry.synthetic import SpeakerPopulation, speaker_population

SCHEMES = ("word", "speaker", "other-speakers")
OPTIONS = ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")  # exhaustive scores


@contextmanager
def one_thread() -> Iterator[None]:
    """numba and torch on one thread while inside (tiny graphs: threads cost more than they save)."""
    import numba
    import torch

    threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads[0])
        torch.set_num_threads(threads[1])


def coverage_population(labels: str, n_speakers: int, seed: int) -> SpeakerPopulation:
    """The synthetic speaker population of the coverage simulations for ``labels`` (``SCHEMES``):
    three layers from speaker-dominated to word-dominated."""
    words = labels == "word"
    return speaker_population(
        n_speakers,
        takes=1 if words else 3,
        word_strength=(0.3, 0.8, 1.6),
        speaker_strength=(1.0, 0.6, 0.3) if words else (1.6, 0.8, 0.4),
        seed=seed,
    )


def coverage_draw(population: SpeakerPopulation, labels: str) -> Draw:
    """Datasets of ``population`` labelled and resampled as ``labels`` says (``simulate``)."""
    fixed = np.arange(population.n_speakers)

    def draw(rng: np.random.Generator) -> SimulatedDataset:
        if labels == "word":
            d = population.draw(rng)
            return SimulatedDataset(d.features, d.words, ResampleUnits.of("speaker", d.speakers))
        if labels == "other-speakers":
            d = population.draw(rng)
            return SimulatedDataset(d.features, d.speakers, ResampleUnits.of("speaker", d.speakers))
        d = population.draw(rng, speakers=fixed)
        units = ResampleUnits.of("clip", range(len(d.speakers)), d.speakers, within="speaker")
        return SimulatedDataset(d.features, d.speakers, units)

    return draw


def simulate(
    n_truth: int,
    n_datasets: int,
    n_resamples: int,
    seed: int,
    labels: str = "word",
    n_speakers: int = 16,
):
    """Coverage table of one interval scheme on a synthetic speaker population:

    - ``word``: word labels, speakers as units (``n_speakers`` drawn from a pool of 2,000);
    - ``speaker``: speaker labels, clips within each speaker as units (fixed speakers, fresh clips):
      "same speakers, other recordings";
    - ``other-speakers``: speaker labels, speakers as units (speakers drawn from the pool): "other
      speakers, half the count", against the mean score of datasets of ``n_speakers // 2``.
    """
    population = coverage_population(labels, n_speakers, seed)
    draw = coverage_draw(population, labels)
    with one_thread():
        if labels == "other-speakers":
            return half_count_coverage(
                draw,
                coverage_draw(replace(population, n_speakers=n_speakers // 2), labels),
                n_truth=n_truth,
                n_datasets=n_datasets,
                n_resamples=n_resamples,
                seed=seed,
                options=OPTIONS,
            )
        return coverage_simulation(
            draw,
            n_truth=n_truth,
            n_datasets=n_datasets,
            n_resamples=n_resamples,
            level=0.9,
            seed=seed,
            options=OPTIONS,
        )


def stability(n_truth: int, n_datasets: int, n_resamples: int, seed: int = 2):
    """Stability table of the threshold rule's calibrated flag on a synthetic population whose
    threshold point is stable in truth (word labels rising to a plateau over five layers; 12 speakers
    x 6 words per dataset, speakers as units)."""
    population = speaker_population(
        12,
        word_strength=(0.3, 1.0, 2.0, 2.4, 2.5),
        speaker_strength=(0.5,) * 5,
        seed=1,
    )
    with one_thread():
        return stability_simulation(
            coverage_draw(population, "word"),
            n_truth=n_truth,
            n_datasets=n_datasets,
            n_resamples=n_resamples,
            seed=seed,
            options=OPTIONS,
        )
