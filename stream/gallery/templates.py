"""Per enrolled track, the mean of its embeddings: what a live track's pooled embedding is compared with.

Why kept in memory and updated in place: the matcher asks for the nearest track means on every
decision, and enrollments (anonymous ones from the live node included) arrive between decisions;
re-reading every embedding from SQLite after each enroll would cost O(gallery) per enroll. Sums and
counts are kept in float64 so that many small updates do not drift from a fresh computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.gallery.rwlock import ReadWriteLock

TrackKey = tuple[int, str, str | None]  # identity, source, track


class TrackTemplates:
    def __init__(self, dim: int, keys: list[TrackKey], sums: np.ndarray, counts: np.ndarray) -> None:
        self.dim = dim
        self.lock = ReadWriteLock()
        self._rows: dict[TrackKey, int] = {key: row for row, key in enumerate(keys)}
        self._owners = np.asarray([key[0] for key in keys], np.int64)
        self._sums = np.asarray(sums, np.float64).reshape(len(keys), dim)
        self._counts = np.asarray(counts, np.int64)
        self._means = (self._sums / np.maximum(self._counts, 1)[:, None]).astype(np.float32)
        self._grouped: _Grouped | None = None  # derived from the above; dropped on every change

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, identity: int, keys: list[tuple[str, str | None]], vectors: np.ndarray) -> None:
        """Fold newly enrolled embeddings of ``identity`` (one (source, track) per vector) into their tracks."""
        vectors = np.asarray(vectors, np.float64).reshape(-1, self.dim)
        with self.lock.writing():
            new_keys = [key for key in dict.fromkeys((identity, *k) for k in keys) if key not in self._rows]
            if new_keys:
                start = len(self._rows)
                self._rows.update({key: start + i for i, key in enumerate(new_keys)})
                self._owners = np.concatenate([self._owners, np.full(len(new_keys), identity, np.int64)])
                self._sums = np.concatenate([self._sums, np.zeros((len(new_keys), self.dim))])
                self._counts = np.concatenate([self._counts, np.zeros(len(new_keys), np.int64)])
                self._means = np.concatenate([self._means, np.zeros((len(new_keys), self.dim), np.float32)])
            rows = np.fromiter((self._rows[(identity, *k)] for k in keys), np.int64, len(keys))
            np.add.at(self._sums, rows, vectors)
            np.add.at(self._counts, rows, 1)
            touched = np.unique(rows)
            self._means[touched] = (self._sums[touched] / self._counts[touched, None]).astype(np.float32)
            self._grouped = None

    def remove_identity(self, identity: int) -> None:
        with self.lock.writing():
            keep = self._owners != identity
            kept_keys = [key for key, row in sorted(self._rows.items(), key=lambda item: item[1]) if keep[row]]
            self._rows = {key: row for row, key in enumerate(kept_keys)}
            self._owners, self._sums = self._owners[keep], self._sums[keep]
            self._counts, self._means = self._counts[keep], self._means[keep]
            self._grouped = None

    def nearest_many(self, pooled: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per pooled embedding [B, D], the k nearest identities, each with the distance of its nearest track mean."""
        queries = np.asarray(pooled, np.float64).reshape(-1, self.dim)
        grouped = self._grouped_means()
        if len(grouped.identities) == 0:
            return [[] for _ in queries]
        squared = (queries**2).sum(1)[:, None] + grouped.norms[None, :] - 2.0 * queries @ grouped.means.T
        per_identity = np.sqrt(np.maximum(np.minimum.reduceat(squared, grouped.starts, axis=1), 0.0))
        identities = grouped.identities
        k = min(k, len(identities))
        top = np.argpartition(per_identity, k - 1, axis=1)[:, :k] if k < len(identities) else None
        out = []
        for row, distances in enumerate(per_identity):
            candidates = top[row] if top is not None else np.arange(len(identities))
            ranked = candidates[np.argsort(distances[candidates], kind="stable")]
            out.append([(int(identities[i]), float(distances[i])) for i in ranked])
        return out

    def _grouped_means(self) -> _Grouped:
        """The means ordered by identity, as searches need them: built once per change, not once per search."""
        with self.lock.reading():
            grouped = self._grouped
        if grouped is None:
            with self.lock.writing():
                if self._grouped is None:
                    order = np.argsort(self._owners, kind="stable")
                    owners = self._owners[order]
                    means = self._means[order].astype(np.float64)
                    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else owners
                    self._grouped = _Grouped(means, (means**2).sum(1), starts, owners[starts])
                grouped = self._grouped
        return grouped


@dataclass(frozen=True)
class _Grouped:
    """A snapshot of the track means for searching: rows ordered by identity, never changed once made."""

    means: np.ndarray  # float64 [T, D]
    norms: np.ndarray  # [T] squared norms of the rows
    starts: np.ndarray  # first row of each identity
    identities: np.ndarray  # the identity of each run of rows
