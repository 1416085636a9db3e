"""Parity of a compiled artifact with its torch reference, on skeleton-like windows at several batch sizes."""

from __future__ import annotations

import numpy as np

from engines.runtime.base import Encoder

PARITY_BATCHES = (1, 7, 64)


def parity_windows(n: int, f: int, seed: int = 0) -> np.ndarray:
    """Walk-like windows [n, f, 20, 3]: a standing skeleton's scale, small motion, placed anywhere in the room."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0.0, 0.3, (n, 1, 20, 3))
    motion = rng.normal(0.0, 0.02, (n, f, 20, 3)).cumsum(axis=1)
    place = rng.normal(0.0, 1.5, (n, 1, 1, 3)) + np.array([0.0, 0.0, 2.5])
    return (pose + motion + place).astype(np.float32)


def max_abs_difference(reference: Encoder, artifact: Encoder, batches: tuple[int, ...] = PARITY_BATCHES) -> float:
    """Largest |reference - artifact| over embeddings of fresh windows at each batch size."""
    worst = 0.0
    for i, batch in enumerate(batches):
        windows = parity_windows(batch, reference.f, seed=i)
        worst = max(worst, float(np.abs(reference.encode(windows) - artifact.encode(windows)).max()))
    return worst
