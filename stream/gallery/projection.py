"""What an HNSW graph holds: the principal components that keep most of the vectors' variance.

Why: at a million 256-D vectors a graph search is bound by memory traffic (each distance reads 1 KB from
a random place), not arithmetic. Learned embeddings keep most of their variance in few directions (the
shipped model's: 90% in 30 of 256), so the graph is built over the fewest leading components holding
``kept_variance`` of it (a multiple of 16, hnswlib's fast path) and its candidates are re-ranked by exact
distance on the full vectors. Vectors without such structure keep all their dimensions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

FIT_ROWS = 100_000  # principal components are fitted on at most this many rows (evenly spaced): plenty for 256-D


@dataclass(frozen=True)
class Projection:
    """x -> (x - mean) @ basis: the first principal components, or all dimensions unchanged (basis None)."""

    mean: np.ndarray  # float32 [D]
    basis: np.ndarray | None  # float32 [D, d]

    @staticmethod
    def fit(vectors: np.ndarray, kept_variance: float) -> Projection:
        """The fewest leading components (a multiple of 16) holding ``kept_variance`` of the variance."""
        full = vectors.shape[1]
        sample = vectors[:: max(1, len(vectors) // FIT_ROWS)]
        mean = sample.mean(axis=0, dtype=np.float64)
        _, singular, components = np.linalg.svd(sample - mean, full_matrices=False)
        share = np.cumsum(singular**2) / max(float((singular**2).sum()), 1e-30)
        dim = -(-(int(np.searchsorted(share, kept_variance)) + 1) // 16) * 16
        if dim >= full:
            return Projection(np.zeros(full, np.float32), None)
        return Projection(mean.astype(np.float32), np.ascontiguousarray(components[:dim].T, np.float32))

    @property
    def dim(self) -> int:
        return len(self.mean) if self.basis is None else self.basis.shape[1]

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, np.float32)
        return vectors if self.basis is None else np.ascontiguousarray((vectors - self.mean) @ self.basis)

    def to_bytes(self) -> bytes:
        """[d + 1, D] float32: the mean, then the basis transposed (just the mean when nothing is reduced)."""
        rows = self.mean[None] if self.basis is None else np.concatenate([self.mean[None], self.basis.T])
        buffer = io.BytesIO()
        np.save(buffer, rows.astype(np.float32), allow_pickle=False)
        return buffer.getvalue()

    @staticmethod
    def from_bytes(data: bytes, dim: int) -> Projection:
        rows = np.load(io.BytesIO(data), allow_pickle=False)
        if rows.ndim != 2 or rows.shape[1] != dim or rows.dtype != np.float32:
            raise ValueError(f"projection of shape {rows.shape}, expected [d + 1, {dim}]")
        return Projection(rows[0], None if len(rows) == 1 else np.ascontiguousarray(rows[1:].T))
