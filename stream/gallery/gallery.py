"""The gallery a user works with: the durable store, its index, enrollment and identity search in one place.

One thread of a process writes (enroll, remove, rename); any number of threads search; other processes
may write the same gallery meanwhile (their changes reach this process's index when it next opens).
Every change is committed to SQLite first and only then applied to the in-memory index, so what a search
can see is always committed, and a crash never loses a returned enroll.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.gallery.index import EXACT_LIMIT, EmbeddingIndex, open_index
from stream.gallery.store import GalleryStore, Identity, Origin
from stream.gallery.templates import TrackTemplates
from stream.windows import TrackWindows

OVERSAMPLE = 16  # embeddings fetched per identity asked for, before aggregating per identity


@dataclass(frozen=True)
class Match:
    """One candidate identity for a query: its nearest embedding's Euclidean distance."""

    identity: int
    distance: float
    embedding: int  # the nearest embedding's id; -1 when matched against track means


class Gallery:
    def __init__(self, store: GalleryStore, index: EmbeddingIndex, index_source: str) -> None:
        self.store = store
        self.index = index
        self.index_source = index_source  # "built", "loaded" or "caught up": for stats and tests
        self._templates: TrackTemplates | None = None  # read on the first search_tracks, then kept up to date
        self._templates_lock = threading.Lock()  # a first read racing an enroll must not miss or double it
        self._names = {identity.id: identity.name for identity in store.identities()}

    @classmethod
    def create(cls, path: str | Path, model_card: dict) -> Gallery:
        store = GalleryStore(path, model_card, create=True)
        return cls(store, *open_index(store))

    @classmethod
    def open(
        cls,
        path: str | Path,
        model_card: dict | None = None,
        exact_limit: int = EXACT_LIMIT,
        writable: bool | None = None,
    ) -> Gallery:
        """Open a gallery; with ``model_card``, refuse it unless that model filled it. ``writable``: as for
        ``GalleryStore`` (by default read-only where this process may not write it)."""
        store = GalleryStore(path, writable=writable)
        try:
            if model_card is not None:
                store.check_model(model_card)
            return cls(store, *open_index(store, exact_limit))
        except BaseException:
            store.close()
            raise

    # --- changes (one writer) -----------------------------------------------------------------------

    def add_identity(self, name: str, attributes: dict | None = None, anonymous: bool = False) -> int:
        identity = self.store.add_identity(name, attributes, anonymous)
        self._names[identity] = name
        return identity

    def enroll(self, identity: int, vectors: np.ndarray, origins: list[Origin]) -> list[int]:
        """Store embeddings of ``identity`` (committed before this returns), then make them searchable."""
        ids = self.store.add_embeddings(identity, vectors, origins)
        self.index.add(
            np.asarray(ids, np.int64), np.full(len(ids), identity, np.int64), np.asarray(vectors, np.float32)
        )
        with self._templates_lock:
            if self._templates is not None:
                self._templates.add(identity, [(origin.source, origin.track) for origin in origins], vectors)
        return ids

    def enroll_track(
        self, identity: int, part: TrackWindows, encode, source: str, keep_windows: bool = False
    ) -> list[int]:
        """Encode one track's windows (``encode``: windows -> embeddings) and enroll them with their origins.

        Each origin names the source, the track and the window's time span; ``keep_windows`` stores the
        window too, so that ``reembed`` can encode it again with another model."""
        return self.enroll(identity, encode(part.windows), track_origins(part, source, keep_windows))

    def remove(self, identity: int) -> int:
        removed = self.store.remove_identity(identity)
        self.index.remove_identity(identity)
        with self._templates_lock:
            if self._templates is not None:
                self._templates.remove_identity(identity)
        self._names.pop(identity, None)
        return removed

    def rename(self, identity: int, name: str) -> None:
        self.store.rename(identity, name)
        self._names[identity] = name

    # --- reading (any thread) -------------------------------------------------------------------------

    def identities(self) -> list[Identity]:
        return self.store.identities()

    def name_of(self, identity: int) -> str:
        """An identity's display name, from memory (the live matcher asks on every decision)."""
        return self._names[identity]

    def search(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """Per query, the k nearest identities (each scored by its nearest embedding), nearest first."""
        queries = np.asarray(queries, np.float32).reshape(-1, self.store.dim)
        fetch = k * OVERSAMPLE
        results: list[list[Match] | None] = [None] * len(queries)
        pending = np.arange(len(queries))
        while len(pending):
            found = self.index.search(queries[pending], fetch)
            retry = []
            for q, neighbours in zip(pending, found, strict=True):
                matches = _per_identity(neighbours, k)
                exhausted = len(neighbours.ids) < fetch  # every embedding was seen
                if len(matches) < k and not exhausted:
                    retry.append(q)  # one identity crowded the others out: look further
                else:
                    results[q] = matches
            pending = np.asarray(retry, np.int64)
            fetch *= 4
        return results  # type: ignore[return-value]

    def search_tracks(self, pooled: np.ndarray, k: int = 5) -> list[Match]:
        """The k nearest identities of a pooled track embedding, each scored by its nearest enrolled *track mean*.

        A mean over a track's windows is compared with means over enrolled tracks, like with like (the
        walk level of the KGBD evaluation); single windows scatter far more than means do."""
        return self.search_tracks_many(np.asarray(pooled).reshape(1, -1), k)[0]

    def search_tracks_many(self, pooled: np.ndarray, k: int = 5) -> list[list[Match]]:
        """``search_tracks`` for a batch of pooled embeddings [B, D] (the live node decides a batch at once)."""
        if self._templates is None:
            with self._templates_lock:
                if self._templates is None:
                    self._templates = TrackTemplates(self.store.dim, *self.store.track_sums())
        return [
            [Match(identity, distance, -1) for identity, distance in row]
            for row in self._templates.nearest_many(pooled, k)
        ]

    def save_index(self) -> None:
        self.index.save(self.store.path, self.store.meta["model_sha256"])

    def close(self) -> None:
        """Save the index (where the gallery may be written) and close the store."""
        if not self.store.readonly:
            self.save_index()
        self.store.close()


def track_origins(part: TrackWindows, source: str, keep_windows: bool = False) -> list[Origin]:
    """The origin of each window of a track: the source, the track, its time span (and the window itself)."""
    return [
        Origin(source, str(part.track), float(a), float(b), w if keep_windows else None)
        for a, b, w in zip(part.t_start, part.t_end, part.windows, strict=True)
    ]


def _per_identity(neighbours, k: int) -> list[Match]:
    seen: dict[int, Match] = {}
    for eid, owner, distance in zip(neighbours.ids, neighbours.identities, neighbours.distances, strict=True):
        if int(owner) not in seen:
            seen[int(owner)] = Match(int(owner), float(distance), int(eid))
            if len(seen) == k:
                break
    return list(seen.values())
