"""Coverage simulations of half-sample intervals on synthetic speaker populations (tests and bench)."""

from __future__ import annotations

import numpy as np

from core.geometry.options import ConvexityOptions
from core.geometry.resampling import ResampleUnits
from core.geometry.synthetic import speaker_population


def simulate(n_truth: int, n_datasets: int, n_resamples: int, seed: int, labels: str = "word"):
    """Coverage table of word labels with speakers as units (speakers drawn from a pool of 2,000),
    or of speaker labels with clips within each speaker as units (16 fixed speakers, fresh clips)."""
    import numba
    import torch

    from core.geometry.calibration import coverage_simulation

    population = speaker_population(
        16,
        takes=1 if labels == "word" else 3,
        word_strength=(0.3, 0.8, 1.6),
        speaker_strength=(1.0, 0.6, 0.3) if labels == "word" else (1.6, 0.8, 0.4),
        seed=seed,
    )
    fixed = np.arange(16)

    def draw(rng):
        if labels == "word":
            d = population.draw(rng)
            return d.features, d.words, ResampleUnits.of("speaker", d.speakers)
        d = population.draw(rng, speakers=fixed)
        units = ResampleUnits.of("clip", range(len(d.speakers)), d.speakers, within="speaker")
        return d.features, d.speakers, units

    threads = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)  # tiny graphs: threads cost more than they save
    torch.set_num_threads(1)
    try:
        return coverage_simulation(
            draw,
            n_truth=n_truth,
            n_datasets=n_datasets,
            n_resamples=n_resamples,
            level=0.9,
            seed=seed,
            options=ConvexityOptions(k=5, max_pairs_per_class=None, device="cpu"),
        )
    finally:
        numba.set_num_threads(threads[0])
        torch.set_num_threads(threads[1])
