"""Synthetic labelled features with known structure, for demos, teaching and benchmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import ConvexityInputError


def synthetic_layers(
    n: int, classes: int, dim: int, layers: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, layers, D) float32 whose class structure rises to a peak and fades, like a real model.

    Class c's centre is a random Gaussian vector scaled per layer by a bell curve peaking at 60% depth;
    unit Gaussian noise is added. Returns (features, labels) with balanced labels ``i % classes``.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    peak = 0.6 * (layers - 1)
    features = np.empty((n, layers, dim), dtype=np.float32)
    for layer in range(layers):
        strength = 0.35 * math.exp(-(((layer - peak) / (0.35 * layers)) ** 2))
        features[:, layer] = centres[labels] * strength + rng.normal(size=(n, dim)).astype(
            np.float32
        )
    return features, labels


def toy_clusters(
    n_per_class: int, classes: int, spread: float, shape: str = "blobs", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """2-D points for teaching: ``blobs`` (convex classes) or ``moons`` (interlocking, non-convex arcs).

    ``spread`` is the noise standard deviation relative to the distance between class centres.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    if shape == "blobs":
        angles = 2 * math.pi * np.arange(classes) / classes
        centres = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 3.0
        points = centres[labels] + rng.normal(size=(len(labels), 2)) * spread * 3.0
    elif shape == "moons":
        t = rng.uniform(0, math.pi, size=len(labels))
        flip = labels % 2 == 1
        x = np.where(flip, 1 - np.cos(t), np.cos(t)) + 1.2 * (labels // 2)
        y = np.where(flip, 0.5 - np.sin(t), np.sin(t))
        points = np.stack([x, y], axis=1) + rng.normal(size=(len(labels), 2)) * spread
    else:
        raise ConvexityInputError(f"shape must be 'blobs' or 'moons', got {shape!r}")
    return points.astype(np.float64), labels


def flip_labels(
    labels: np.ndarray | list, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(labels with ``fraction`` of them changed to another class drawn uniformly, sorted flipped indices).

    A known truth for checking that per-clip diagnostics find mislabelled clips; seeded.
    """
    lab = np.asarray(labels, dtype=object)
    classes = np.array(sorted(set(lab.tolist()), key=str), dtype=object)
    if len(classes) < 2 or not 0.0 < fraction < 1.0:
        raise ConvexityInputError("flip_labels needs two classes and a fraction in (0, 1)")
    rng = np.random.default_rng(seed)
    n_flip = max(1, round(fraction * len(lab)))
    flipped = np.sort(rng.choice(len(lab), n_flip, replace=False))
    out = lab.copy()
    for i in flipped:
        out[i] = rng.choice(classes[classes != lab[i]])
    return out, flipped


@dataclass(frozen=True)
class Drawn:
    """One synthetic dataset: features (N, layers, D) float32, each clip's word and speaker id."""

    features: np.ndarray
    words: np.ndarray
    speakers: np.ndarray


@dataclass(frozen=True)
class SpeakerPopulation:
    """A population of speakers far larger than any dataset, each saying every word ``takes`` times.

    Clip = word centre x ``word_strength[l]`` + speaker offset x ``speaker_strength[l]`` + unit noise
    at layer l, so layers differ in how well words (and speakers) separate. ``draw`` returns one
    dataset of ``n_speakers`` speakers drawn without replacement from the ``pool`` (fresh noise per
    clip): the known truth against which resampling intervals are checked by simulation.
    """

    words: int
    pool: int
    dim: int
    n_speakers: int
    takes: int
    word_strength: tuple[float, ...]
    speaker_strength: tuple[float, ...]
    centres: np.ndarray
    offsets: np.ndarray

    def draw(self, rng: np.random.Generator, speakers: np.ndarray | None = None) -> Drawn:
        """One dataset of the population: of ``speakers`` (pool indices) when given, else of
        speakers drawn from the pool."""
        chosen = (
            rng.choice(self.pool, self.n_speakers, replace=False) if speakers is None else speakers
        )
        speaker = np.repeat(np.arange(self.n_speakers), self.words * self.takes)
        word = np.tile(np.repeat(np.arange(self.words), self.takes), self.n_speakers)
        w = np.asarray(self.word_strength)[None, :, None]
        v = np.asarray(self.speaker_strength)[None, :, None]
        noise = rng.normal(size=(len(word), len(self.word_strength), self.dim))
        x = w * self.centres[word][:, None] + v * self.offsets[chosen[speaker]][:, None] + noise
        return Drawn(x.astype(np.float32), word, chosen[speaker])


def speaker_population(
    n_speakers: int,
    takes: int = 1,
    *,
    words: int = 6,
    pool: int = 2000,
    dim: int = 8,
    word_strength: tuple[float, ...] = (0.3, 0.8, 1.6, 3.0),
    speaker_strength: tuple[float, ...] = (1.0, 0.6, 0.3, 0.2),
    seed: int = 0,
) -> SpeakerPopulation:
    """A :class:`SpeakerPopulation` whose layers go from speaker-dominated (words near chance) to
    word-dominated (word convexity near 1)."""
    if len(word_strength) != len(speaker_strength):
        raise ConvexityInputError("word_strength and speaker_strength need one value per layer")
    rng = np.random.default_rng(seed)
    return SpeakerPopulation(
        words,
        pool,
        dim,
        n_speakers,
        takes,
        tuple(word_strength),
        tuple(speaker_strength),
        rng.normal(size=(words, dim)),
        rng.normal(size=(pool, dim)),
    )
