"""The index of another identity channel (silhouettes): the mean of every track enrolled in it, searched exactly.

Why exact numpy search and no graph: a silhouette gallery is small (people enrolled on a site's cameras, tens to
a few thousand tracks), and a silhouette embedding is wide (SelfGait: 1,504 values), so one matrix product per
batch of queries answers at once and nothing is built, saved or reconciled on disk; the store is read at open.
Why immutable snapshots: searches run on any thread while one writer (an enroll, a replica's change) swaps in
new rows, so a search reads one consistent snapshot without a lock.
"""

from __future__ import annotations

import functools

import numpy as np

from engines.track_distance import impostor_scale
from sensors.errors import InputError
from stream.gallery.store import TrackMeans

SILHOUETTE = "silhouette"  # the channel of silhouette embeddings (a SelfGait encoder's)


class _Snapshot:
    """One state of a channel's track means, with what every search needs of it computed once."""

    def __init__(self, rows: TrackMeans) -> None:
        self.rows = rows
        self.means = rows.means.astype(np.float64)
        self.norms = (self.means**2).sum(axis=1)
        self.order = np.argsort(rows.owners, kind="stable")  # each identity's tracks together
        owners = rows.owners[self.order]
        self.starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else np.zeros(0, np.int64)
        self.who = owners[self.starts]

    @functools.cached_property
    def impostor_scale(self) -> float | None:
        return impostor_scale(self.means, self.rows.owners)


class ChannelIndex:
    """Exact search over one channel's track means: per query the nearest identities by their nearest track mean."""

    def __init__(self, channel: str, rows: TrackMeans) -> None:
        self.channel = channel
        self.dim = rows.means.shape[1]
        self._snapshot = _Snapshot(rows)

    def __len__(self) -> int:
        return len(self._snapshot.rows.labels)

    @property
    def rows(self) -> TrackMeans:
        """The track means held now (labels, identities, counts, means), by label."""
        return self._snapshot.rows

    def identities(self) -> set[int]:
        return set(self._snapshot.who.tolist())

    def nearest(self, pooled: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Per pooled embedding [B, D], up to ``k`` identities as (identity, Euclidean distance of its nearest
        track mean), nearest first; an empty list per query while the channel holds nothing."""
        queries = np.asarray(pooled, np.float64)
        queries = queries.reshape(1, -1) if queries.ndim == 1 else queries
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InputError(
                f"{self.channel} queries of shape {list(np.shape(pooled))}, expected [B, {self.dim}] (the channel's D)"
            )
        snap = self._snapshot
        if not len(snap.who) or k < 1:
            return [[] for _ in queries]
        distances = _distances(queries, (queries**2).sum(axis=1), snap.means, snap.norms)
        best = np.minimum.reduceat(distances[:, snap.order], snap.starts, axis=1)  # [B, identities]
        found = []
        for row in best:
            top = np.argsort(row, kind="stable")[:k]
            found.append([(int(snap.who[i]), float(row[i])) for i in top])
        return found

    def impostor_scale(self) -> float | None:
        """The median Euclidean distance between track means of different identities (``impostor_scale``): a unit
        for this channel's distances that needs no labels (its model's distances have a scale of their own); None
        with fewer than two identities. Computed once per state of the index."""
        return self._snapshot.impostor_scale

    def replace_identity(self, identity: int, fresh: TrackMeans) -> None:
        """``identity``'s rows become ``fresh`` (its tracks as the store holds them now)."""
        self.update(self._snapshot.rows.owners != identity, fresh)

    def remove_identity(self, identity: int) -> None:
        self.update(self._snapshot.rows.owners != identity, _none(self.dim))

    def update(self, kept: np.ndarray, fresh: TrackMeans) -> None:
        """Keep the rows where ``kept`` holds and add ``fresh`` (rows of labels not kept): one new snapshot."""
        rows = self._snapshot.rows
        parts = [TrackMeans(rows.labels[kept], rows.owners[kept], rows.counts[kept], rows.means[kept]), fresh]
        if len(fresh.labels) and fresh.means.shape[1] != self.dim:
            raise InputError(f"{self.channel} track means of D = {fresh.means.shape[1]}, the channel's is {self.dim}")
        labels = np.concatenate([p.labels for p in parts])
        order = np.argsort(labels, kind="stable")
        self._snapshot = _Snapshot(
            TrackMeans(
                labels[order],
                np.concatenate([p.owners for p in parts])[order],
                np.concatenate([p.counts for p in parts])[order],
                np.concatenate([p.means.reshape(-1, self.dim) for p in parts]).astype(np.float32)[order],
            )
        )


def _distances(a: np.ndarray, a_norms: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] in float64 (|a|^2 + |b|^2 - 2ab, rounding below zero clipped)."""
    return np.sqrt(np.maximum(a_norms[:, None] + b_norms[None, :] - 2.0 * (a @ b.T), 0.0))


def _none(dim: int) -> TrackMeans:
    empty = np.zeros(0, np.int64)
    return TrackMeans(empty, empty, empty, np.zeros((0, dim), np.float32))
