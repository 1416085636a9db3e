"""Synthetic walkers for training tests: each identity has its own body proportions and gait rhythm."""

from __future__ import annotations

import numpy as np

from sensors.layouts import CANONICAL


def synthetic_windows(people: int, windows_per_person: int, f: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windows [people * windows_per_person, f, 20, 3] (metres, canonical) and their identity labels."""
    rng = np.random.default_rng(seed)
    base = rng.normal(scale=0.25, size=(20, 3))
    base[:, 1] = np.linspace(0.9, -0.9, 20)
    base[CANONICAL.index("HipCenter")] = 0
    out, labels = [], []
    for person in range(people):
        body = base * rng.uniform(0.8, 1.2, size=(1, 3)) + rng.normal(scale=0.03, size=(20, 3))
        swing = rng.normal(scale=0.08, size=(20, 3))
        freq = rng.uniform(0.8, 1.4)
        for _ in range(windows_per_person):
            t = rng.uniform(0, 10) + np.arange(f) / 30
            pose = body[None] + np.sin(2 * np.pi * freq * t)[:, None, None] * swing[None]
            pose += rng.normal(scale=0.01, size=pose.shape) + rng.normal(scale=1.0, size=(1, 1, 3))  # noise, position
            out.append(pose)
            labels.append(person)
    return np.asarray(out, np.float32), np.asarray(labels)
