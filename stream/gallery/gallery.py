"""The gallery a user works with: the durable store, its indexes, enrollment and identity search in one place.

One thread of a process writes (enroll, remove, rename, merge); any number of threads search; other processes
may write the same gallery meanwhile (their changes reach this process's indexes when it next opens, or at once
where a follower or poller applies them: ``take_change``, ``catch_up``).
Every change is committed to SQLite first and only then applied to the in-memory indexes, so what a search
can see is always committed, and a crash never loses a returned enroll.

Opening reads the identities and the index of enrolled track means (``tracks``: what the node's decisions
search; from its saved files where they are current), and each bound channel's track means (silhouettes:
``stream.gallery.channel``, exact, read whole: small). The index of every embedding (``index``, for ``search``)
is read or built on its first use only, and ``close`` saves only what changed.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from stream.gallery.channel import ChannelIndex
from stream.gallery.channel_tables import check_channel, check_channel_model
from stream.gallery.index import EXACT_LIMIT, EmbeddingIndex, nearest_identities, open_index, save_index
from stream.gallery.location import Location, open_store
from stream.gallery.store import GalleryStore, Identity, Origin
from stream.gallery.track_index import TrackIndex, reconcile, reconcile_rows
from stream.windows import TrackWindows

OVERSAMPLE = 16  # embeddings fetched per identity asked for, before aggregating per identity


@dataclass(frozen=True)
class Match:
    """One candidate identity for a query: its nearest embedding's Euclidean distance."""

    identity: int
    distance: float
    embedding: int  # the nearest embedding's id; -1 when matched against track means


class Gallery:
    def __init__(self, store: GalleryStore, tracks: TrackIndex, exact_limit: int | None = None) -> None:
        self.store = store
        self.tracks = tracks
        self.exact_limit = EXACT_LIMIT if exact_limit is None else exact_limit  # of the embedding index
        self._index: EmbeddingIndex | None = None  # every embedding: made on the first ``search``
        self._index_source: str | None = None
        self._index_lock = threading.Lock()  # one first read; an enroll racing it waits, then adds (idempotent)
        self._changing = threading.RLock()  # this process's writes and a replica's catching up, one at a time
        self._names = {identity.id: identity.name for identity in store.identities(counted=False)}
        self._channels: dict[str, ChannelIndex] = {}  # each bound channel's track means
        self._channel_models: dict[str, dict] = {}  # and its model binding
        self._bound_channels(store)

    @classmethod
    def create(cls, path: Location, model_card: dict, exact_limit: int | None = None) -> Gallery:
        store = open_store(path, model_card, create=True)
        return cls(store, TrackIndex.open(store, exact_limit), exact_limit)

    @classmethod
    def open(
        cls,
        path: Location,
        model_card: dict | None = None,
        exact_limit: int | None = None,
        writable: bool | None = None,
        background: bool = False,
    ) -> Gallery:
        """Open a gallery; with ``model_card``, refuse it unless that model filled it. ``writable``: as for
        ``GalleryStore`` (by default read-only where this process may not write it). ``exact_limit``: the rows
        up to which both indexes search exactly (default: each its own, 5,000 track means, 20,000 embeddings).
        ``background``: a track index graph that must be built is built while decisions search exactly (nodes)."""
        store = open_store(path, writable=writable)
        try:
            if model_card is not None:
                store.check_model(model_card)
            return cls(store, TrackIndex.open(store, exact_limit, background), exact_limit)
        except BaseException:
            store.close()
            raise

    @property
    def index(self) -> EmbeddingIndex:
        """The index of every embedding (read from the store, and a saved graph where there is one, on first use)."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    self._index, self._index_source = open_index(self.store, self.exact_limit)
        return self._index

    @property
    def index_source(self) -> str:
        """How ``index`` was obtained: "built", "loaded" or "caught up" (for stats and tests)."""
        self.index  # noqa: B018 (made on first use)
        return self._index_source  # type: ignore[return-value]

    # --- changes (one writer) -----------------------------------------------------------------------

    def add_identity(self, name: str, attributes: dict | None = None, anonymous: bool = False) -> int:
        return self._added(self.store.add_identity(name, attributes, anonymous), name)

    def add_anonymous(self, attributes: dict | None = None) -> int:
        """A new ``anonymous-N`` identity (the node's ``--enroll-after``), its number chosen by the store."""
        return self._added(*self.store.add_anonymous(attributes))

    def _added(self, identity: int, name: str) -> int:
        self._names[identity] = name
        self.tracks.wrote(self.store.written)
        return identity

    def enroll(self, identity: int, vectors: np.ndarray, origins: list[Origin]) -> list[int]:
        """Store embeddings of ``identity`` (committed before this returns), then make them searchable."""
        with self._changing:
            ids = self.store.add_embeddings(identity, vectors, origins)
            written = self.store.written
            with self._index_lock:
                if self._index is not None:
                    self._index.add(ids, np.full(len(ids), identity, np.int64), np.asarray(vectors, np.float32))
            self.tracks.refresh(self.store, identity, written)
        return ids

    def enroll_track(
        self, identity: int, part: TrackWindows, encode, source: str, keep_windows: bool = False
    ) -> list[int]:
        """Encode one track's windows (``encode``: windows -> embeddings) and enroll them with their origins.

        Each origin names the source, the track and the window's time span; ``keep_windows`` stores the
        window too, so that ``reembed`` can encode it again with another model."""
        return self.enroll(identity, encode(part.windows), track_origins(part, source, keep_windows))

    def remove(self, identity: int) -> int:
        with self._changing:
            removed = self.store.remove_identity(identity)
            written = self.store.written
            with self._index_lock:
                if self._index is not None:
                    self._index.remove_identity(identity)
            self.tracks.remove_identity(identity, written)
            self._names.pop(identity, None)
            for channel in self._channels.values():
                channel.remove_identity(identity)
        return removed

    def merge(self, source: int, into: int) -> int:
        """``source``'s embeddings become ``into``'s and ``source`` is gone (``GalleryStore.merge``); the indexes
        follow once it is committed. Returns the embeddings moved."""
        with self._changing:
            moved = self.store.merge(source, into)
            written = self.store.written
            self._drop_embedding_index()  # read again on the next search, with the new owners
            self.tracks.index.remove_identity(source)
            self.tracks.refresh(self.store, into, written)
            self._names.pop(source, None)
            for name, channel in self._channels.items():
                channel.remove_identity(source)
                channel.replace_identity(into, self.store.channel_track_means(name, into))
        return moved

    def rename(self, identity: int, name: str) -> None:
        self.store.rename(identity, name)
        self._names[identity] = name
        self.tracks.wrote(self.store.written)

    def enroll_channel(
        self, channel: str, identity: int, vectors: np.ndarray, origins: list[Origin], card: dict
    ) -> list[int]:
        """Store ``channel`` embeddings of ``identity`` made by ``card``'s model (the channel's first enroll binds
        it to that model; another model's are refused), committed before this returns; then make them searchable."""
        with self._changing:
            ids = self.store.add_channel_embeddings(channel, identity, vectors, origins, card)
            written = self.store.written
            if channel in self._channels:
                self._channels[channel].replace_identity(identity, self.store.channel_track_means(channel, identity))
            else:
                self._bound_channels(self.store)  # bound now: read whole (other processes may have filled it too)
            self.tracks.wrote(written)  # the skeleton rows still equal the store
        return ids

    # --- changes made by other processes (a PostgreSQL gallery's replica, ``stream.gallery.follow``) -------

    def take_change(self, source, identity: int, change: str | None = None) -> None:
        """Another process changed ``identity``: its name, track means and channels' track means become what
        ``source`` (a store of this gallery, not the writer's) holds now; gone from there, gone from here.
        ``change`` (the notification's kind) spares reads: "enroll" touches no channel, "channel" no skeleton row."""
        with self._changing:
            found = source.identity_or_none(identity)
            if found is None:
                self.tracks.index.remove_identity(identity)
                self._names.pop(identity, None)
                for channel in self._channels.values():
                    channel.remove_identity(identity)
            else:
                self._names[identity] = found.name  # before its rows: a decision naming it finds the name
                if change != "channel":
                    fresh = source.track_means(identity)
                    self.tracks.index.replace_identity(identity, fresh.labels, fresh.means, fresh.counts)
                if change != "enroll":
                    self._bound_channels(source)
                    for name, channel in self._channels.items():
                        channel.replace_identity(identity, source.channel_track_means(name, identity))
            self.tracks.synced = None  # a save must not claim a generation for rows it did not write
            if change != "channel":
                self._drop_embedding_index()

    def catch_up(self, source) -> int:
        """Make the track index, names and channels equal ``source``'s state as it is now (after missed
        notifications, a lost connection, or another process's writes to a SQLite file); the generation they
        equal."""
        with self._changing, source.reading():
            generation = source.generation()
            kept, fresh = reconcile(source, self.tracks.index)
            names = {identity.id: identity.name for identity in source.identities(counted=False)}
            self._names.update(names)
            self.tracks.index.keep(kept)
            self.tracks.index.add(fresh.labels, fresh.owners, fresh.means, fresh.counts)
            for gone in set(self._names) - set(names):
                self._names.pop(gone, None)
            self._bound_channels(source)
            for name, channel in self._channels.items():
                read = functools.partial(source.channel_track_means, name)
                channel.update(*reconcile_rows(source.channel_track_summary(name), read, channel.rows, channel.dim))
            self.tracks.synced = None
            self._drop_embedding_index()
        return generation

    def _bound_channels(self, source) -> None:
        """Take the channels ``source`` has bound that this gallery does not hold yet: their bindings and rows."""
        for name, binding in source.channels().items():
            if name not in self._channels:
                self._channel_models[name] = binding
                self._channels[name] = ChannelIndex(name, source.channel_track_means(name))

    def _drop_embedding_index(self) -> None:
        """The index of every embedding (``search``) is read again on its next use: a replica keeps track means."""
        with self._index_lock:
            self._index = None

    # --- reading (any thread) -------------------------------------------------------------------------

    def identities(self) -> list[Identity]:
        return self.store.identities()

    def name_of(self, identity: int) -> str:
        """An identity's display name, from memory (the live matcher asks on every decision)."""
        return self._names[identity]

    def holds(self, identity: int) -> bool:
        """Whether ``identity`` is in the gallery now (from memory: another process may have removed or merged it)."""
        return identity in self._names

    def search(self, queries: np.ndarray, k: int = 5) -> list[list[Match]]:
        """Per query, the k nearest identities (each scored by its nearest embedding), nearest first."""
        queries = np.asarray(queries, np.float32).reshape(-1, self.store.dim)
        return [[Match(*m) for m in row] for row in nearest_identities(self.index, queries, k, OVERSAMPLE)]

    def search_tracks(self, pooled: np.ndarray, k: int = 5) -> list[Match]:
        """The k nearest identities of a pooled track embedding, each scored by its nearest enrolled *track mean*.

        A mean over a track's windows is compared with means over enrolled tracks, like with like (the
        walk level of the KGBD evaluation); single windows scatter far more than means do."""
        return self.search_tracks_many(np.asarray(pooled).reshape(1, -1), k)[0]

    def search_tracks_many(self, pooled: np.ndarray, k: int = 5) -> list[list[Match]]:
        """``search_tracks`` for a batch of pooled embeddings [B, D] (the live node decides a batch at once)."""
        found = self.tracks.nearest(pooled, k)
        return [[Match(identity, distance, -1) for identity, distance, _ in row] for row in found]

    def channel_model(self, channel: str) -> dict | None:
        """The model binding of ``channel`` (``store.model_binding``), as this gallery knows it; None while unbound."""
        return self._channel_models.get(check_channel(self.store.where, channel))

    def check_channel_model(self, channel: str, card: dict) -> None:
        """Refuse ``card``'s model where ``channel`` is bound to another (one line, as ``check_model``)."""
        check_channel_model(self.store.where, channel, self.channel_model(channel), card)

    def search_channel_many(self, channel: str, pooled: np.ndarray, k: int = 5) -> list[list[Match]]:
        """``search_tracks_many`` in ``channel``: per pooled embedding [B, D] the k nearest identities, each scored
        by its nearest track mean in that channel; an empty list per query while the channel holds nothing."""
        index = self._channels.get(check_channel(self.store.where, channel))
        if index is None:
            return [[] for _ in np.atleast_2d(pooled)]
        return [[Match(identity, distance, -1) for identity, distance in row] for row in index.nearest(pooled, k)]

    def channel_identities(self, channel: str) -> set[int]:
        """The identities with track means in ``channel``."""
        index = self._channels.get(check_channel(self.store.where, channel))
        return set() if index is None else index.identities()

    def channel_scale(self, channel: str) -> float | None:
        """``ChannelIndex.impostor_scale`` of ``channel``: a label-free unit of its distances (None: under 2 people)."""
        index = self._channels.get(check_channel(self.store.where, channel))
        return None if index is None else index.impostor_scale()

    def channel_tracks(self, channel: str) -> int:
        """How many track means ``channel`` holds (stats; whether it holds any, cheaply, for the matcher)."""
        index = self._channels.get(check_channel(self.store.where, channel))
        return 0 if index is None else len(index)

    def save_index(self) -> None:
        """Save the indexes made so far, changed or not."""
        self.tracks.save(self.store)
        if self._index is not None:
            save_index(self._index, self.store)

    def close(self) -> None:
        """Save the indexes that changed since they were read (where the gallery may be written); close the store."""
        if not self.store.readonly:
            if self.tracks.index.dirty:
                self.tracks.save(self.store)
            if self._index is not None and self._index.dirty:
                save_index(self._index, self.store)
        self.store.close()


def track_origins(part: TrackWindows, source: str, keep_windows: bool = False) -> list[Origin]:
    """The origin of each window of a track: the source, the track, its time span (and the window itself)."""
    return [
        Origin(source, str(part.track), float(a), float(b), w if keep_windows else None)
        for a, b, w in zip(part.t_start, part.t_end, part.windows, strict=True)
    ]
