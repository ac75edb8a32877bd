"""A synthetic feature set at the paper's size (10,990 clips, 35 words, 388 speakers), written as the
files a user imports (``.npz`` with one array per hidden state and a labels table). The browser
journey uses 4 hidden states: every page's cost per layer is the paper's, and 13 layers would only
repeat the UMAP and curve work the journey waits for (minutes each on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_CLIPS, N_WORDS, N_SPEAKERS = 10_990, 35, 388
N_STATES = 4  # hidden states 0..3


def write_paper_size(
    folder: Path, *, states: int = N_STATES, dim: int = 24, seed: int = 0
) -> tuple[Path, Path]:
    """(features .npz, labels .csv) in ``folder``: word clusters that sharpen with depth, no paths."""
    rng = np.random.default_rng(seed)
    words = np.arange(N_CLIPS) % N_WORDS
    speakers = rng.integers(0, N_SPEAKERS, N_CLIPS)
    word_centres = rng.normal(scale=2.0, size=(N_WORDS, dim))
    speaker_centres = rng.normal(scale=1.0, size=(N_SPEAKERS, dim))
    noise = rng.normal(size=(N_CLIPS, dim))
    layers = {}
    for i in range(states):
        depth = i / (states - 1)
        x = word_centres[words] * depth + speaker_centres[speakers] * (1 - depth) + noise
        layers[f"layer_{i}"] = x.astype(np.float32)
    arrays = folder / "paper.npz"
    np.savez(arrays, **layers)
    labels = folder / "labels.csv"
    labels.write_text(
        "word,speaker\n"
        + "".join(f"w{w:02d},s{s:03d}\n" for w, s in zip(words, speakers, strict=True))
    )
    return arrays, labels
