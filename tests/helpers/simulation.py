"""Coverage simulations of half-sample intervals on synthetic speaker populations (tests and bench)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.geometry.options import ConvexityOptions
from core.geometry.resampling import ResampleUnits
from core.geometry.synthetic import speaker_population

SCHEMES = ("word", "speaker", "other-speakers")


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
    import numba
    import torch

    from core.geometry.calibration import (
        SimulatedDataset,
        coverage_simulation,
        half_count_coverage,
    )

    population = speaker_population(
        n_speakers,
        takes=1 if labels == "word" else 3,
        word_strength=(0.3, 0.8, 1.6),
        speaker_strength=(1.0, 0.6, 0.3) if labels == "word" else (1.6, 0.8, 0.4),
        seed=seed,
    )
    fixed = np.arange(n_speakers)

    def draw(rng):
        if labels == "word":
            d = population.draw(rng)
            return SimulatedDataset(d.features, d.words, ResampleUnits.of("speaker", d.speakers))
        if labels == "other-speakers":
            d = population.draw(rng)
            return SimulatedDataset(d.features, d.speakers, ResampleUnits.of("speaker", d.speakers))
        d = population.draw(rng, speakers=fixed)
        units = ResampleUnits.of("clip", range(len(d.speakers)), d.speakers, within="speaker")
        return SimulatedDataset(d.features, d.speakers, units)

    threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)  # tiny graphs: threads cost more than they save
    torch.set_num_threads(1)
    options = ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu")
    try:
        if labels == "other-speakers":
            half = replace(population, n_speakers=n_speakers // 2)

            def draw_half(rng):
                d = half.draw(rng)
                return SimulatedDataset(
                    d.features, d.speakers, ResampleUnits.of("speaker", d.speakers)
                )

            return half_count_coverage(
                draw,
                draw_half,
                n_truth=n_truth,
                n_datasets=n_datasets,
                n_resamples=n_resamples,
                seed=seed,
                options=options,
            )
        return coverage_simulation(
            draw,
            n_truth=n_truth,
            n_datasets=n_datasets,
            n_resamples=n_resamples,
            level=0.9,
            seed=seed,
            options=options,
        )
    finally:
        numba.set_num_threads(threads[0])
        torch.set_num_threads(threads[1])


def stability(n_truth: int, n_datasets: int, n_resamples: int, seed: int = 2):
    """Stability table of the threshold rule's calibrated flag on a synthetic population whose
    threshold point is stable in truth (word labels rising to a plateau over five layers; 12 speakers
    x 6 words per dataset, speakers as units)."""
    import numba
    import torch

    from core.geometry.calibration import SimulatedDataset, stability_simulation

    population = speaker_population(
        12,
        word_strength=(0.3, 1.0, 2.0, 2.4, 2.5),
        speaker_strength=(0.5,) * 5,
        seed=1,
    )

    def draw(rng):
        d = population.draw(rng)
        return SimulatedDataset(d.features, d.words, ResampleUnits.of("speaker", d.speakers))

    threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    try:
        return stability_simulation(
            draw,
            n_truth=n_truth,
            n_datasets=n_datasets,
            n_resamples=n_resamples,
            seed=seed,
            options=ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu"),
        )
    finally:
        numba.set_num_threads(threads[0])
        torch.set_num_threads(threads[1])
