"""The index the node decides on: the mean of every enrolled track, exact when few, HNSW when many.

Why track means: a live track's pooled embedding is compared with enrolled tracks' means, like with like
(``stream/matcher.py``). Why its own index, opened with the gallery: it is what every decision searches, and
at a million tracks neither a brute-force search per decision nor a rebuild per open is affordable.

Kept equal to the store: after an enroll the identity's tracks are read again from the store (their labels,
counts and means replace its rows: idempotent, so a concurrent first read never doubles one), a removal drops
its rows. Saved beside the gallery (``<gallery>.tracks.*``, see ``index_files``) with every row and the store
generation its rows equal, where this process knows it (no other process wrote since it last read). On open a
saved index of the current generation is taken as it is, reading no embedding; otherwise it is reconciled
with the store's per-track labels and counts (one query, no vectors): rows the store no longer has are
dropped, tracks it lacks or holds with other counts or another identity (a merge) are read from the store.
A missing, damaged or other model's index is rebuilt from every embedding.

How a pooled embedding is scored against a track mean is the gallery's metric (``engines.track_distance``): the
Euclidean distance, searched by the index itself; or, for a model with the body shape, the embedding distance
and the z-scored bone lengths fused with statistics of the enrolled track means, which the index cannot search:
every track mean is scored up to ``EXACT_LIMIT`` of them, and above that the identities the index finds nearest
(``FUSED_CANDIDATES``) are re-scored. The statistics are fitted again when the number of track means changes,
or after ``REFIT_AFTER_S`` (other processes' changes that keep the number reach it then).
"""

from __future__ import annotations

import time

import numpy as np

from engines.track_distance import EUCLIDEAN, TrackDistance, impostor_scale
from stream.gallery import index_files
from stream.gallery.index import EmbeddingIndex, nearest_identities
from stream.gallery.store import GalleryStore, TrackMeans

STEM = "tracks"
# Up to this many track means, exact search. A batch of 64 pooled queries, benchmarks/decision_scale.py's shaped
# means on 2 quiet CPUs: exact 2.3 ms at 2,000 means, 4.1 at 5,000, 8.1 at 10,000, 15.6 at 20,000; HNSW 2.3 to
# 3.4 ms at those sizes, with exact search's answers (its table: recall@1 1.000 from 10,000 to 1,000,000).
EXACT_LIMIT = 5_000
OVERSAMPLE = 4  # track means fetched per identity asked for: a person has few enrolled tracks
PER_IDENTITY_READS = 50  # reconcile by reading identities one by one when at most 1 in this many tracks moved
FUSED_CANDIDATES = 32  # identities re-scored with the body shape above EXACT_LIMIT: the right one may be 6th without
REFIT_AFTER_S = 30.0  # the body-shape statistics are fitted again after this long (or when the row count changes)


class TrackIndex:
    def __init__(self, index: EmbeddingIndex, source: str, synced: int | None, metric: str = EUCLIDEAN) -> None:
        self.index = index
        self.source = source  # "built", "loaded" or "caught up": for stats and tests
        self.synced = synced  # the store generation the rows equal, where known
        self.metric = metric  # the gallery's model's (``engines.track_distance``)
        self._fitted: tuple[int, float, TrackDistance] | None = None  # (rows, when, distance)

    @classmethod
    def open(cls, store: GalleryStore, exact_limit: int | None = None, background: bool = False) -> TrackIndex:
        """The index of ``store``'s track means; with ``background``, a graph that must be built from scratch is
        built in a thread while searches go on exactly (a node starts at once), and saved when done."""
        exact_limit = EXACT_LIMIT if exact_limit is None else exact_limit
        index = EmbeddingIndex(store.dim, exact_limit)
        with index_files.reading(store.path, STEM, store.meta["model_sha256"], store.dim, store.key()) as saved:
            rows = saved.state.get("rows") if saved is not None else None
            if isinstance(rows, int) and not index.read_rows(rows, saved.read_into):
                rows, index = None, EmbeddingIndex(store.dim, exact_limit)
            graph = saved.graph() if rows is not None and saved.has("graph") else None
            saved_generation = saved.generation if rows is not None else None
        graph_labels = index.ids.copy()
        fresh = None
        with store.reading():  # the generation and every read below: one state of the store
            generation = store.generation()
            if rows is None:
                source, fresh = "built", store.track_means()
            elif saved_generation == generation:
                source = "loaded"
            else:
                source, kept, fresh = "caught up", *reconcile(store, index)
                index.keep(kept)
        if fresh is not None:
            index.add(fresh.labels, fresh.owners, fresh.means, fresh.counts, graph=False)
        index.dirty = source != "loaded" and len(index) > 0  # and wherever a graph is adopted with changes or built
        tracks = cls(index, source, generation, store.meta["metric"])
        save = source == "built" and not store.readonly  # minutes of building at a million tracks: kept
        if graph is not None and len(index) > exact_limit and graph[0].get_current_count() <= 2 * len(index):
            index.adopt(*graph, graph_labels, changed=None if fresh is None else fresh.labels)
        elif background:
            index.build_in_background(then=(lambda: tracks.save(store)) if save else None)
        else:
            index.build()
        if save and index.hnsw is not None:
            tracks.save(store)
        return tracks

    def __len__(self) -> int:
        return len(self.index)

    def refresh(self, store: GalleryStore, identity: int, written: int | None) -> None:
        """After a committed enroll of ``identity`` (``written``: the generation it committed): its rows become
        its tracks as the store holds them now."""
        fresh = store.track_means(identity)
        self.index.replace_identity(identity, fresh.labels, fresh.means, fresh.counts)
        self.wrote(written)

    def remove_identity(self, identity: int, written: int | None) -> None:
        self.index.remove_identity(identity)
        self.wrote(written)

    def wrote(self, written: int | None) -> None:
        """This process committed generation ``written`` and the rows already show it (set after them: a save
        reading the generation first never pairs a newer generation with older rows)."""
        self.synced = written if self.synced is not None and written == self.synced + 1 else None

    def nearest(self, pooled: np.ndarray, k: int) -> list[list[tuple]]:
        """Per pooled embedding [B, D], the k nearest identities as (identity, distance, track label), each
        scored by its nearest track mean."""
        queries = np.asarray(pooled, np.float32).reshape(-1, self.index.dim)
        if self.metric == EUCLIDEAN:
            return nearest_identities(self.index, queries, k, OVERSAMPLE)
        distance = self.distance()
        found = None
        if len(self.index) > self.index.exact_limit:
            found = nearest_identities(self.index, queries, max(k, FUSED_CANDIDATES), OVERSAMPLE)
        with self.index.lock.reading():
            ids, owners, vectors = self.index.ids, self.index.owners, self.index.vectors
            if found is None:  # every track mean, the batch at once
                return _nearest_identities_of_all(distance(queries, vectors), owners, ids, k)
            out = []
            for query, candidates in zip(queries, found, strict=True):
                rows = np.isin(owners, [c[0] for c in candidates])
                out += _nearest_identities_of_all(distance(query[None], vectors[rows]), owners[rows], ids[rows], k)
        return out

    def distance(self) -> TrackDistance:
        """The gallery's distance between track means, fitted on the rows as they are (kept ``REFIT_AFTER_S`` while
        their number holds)."""
        now = time.monotonic()
        fitted = self._fitted
        if fitted is None or fitted[0] != len(self.index) or now - fitted[1] > REFIT_AFTER_S:
            with self.index.lock.reading():
                distance = TrackDistance.fit(self.metric, self.index.vectors, self.index.owners)
                fitted = self._fitted = (len(self.index), now, distance)
        return fitted[2]

    def impostor_scale(self) -> float | None:
        """The median distance, in the gallery's metric, between track means of different identities: the skeleton
        channel's label-free unit (``stream.fusion``)."""
        distance = self.distance() if self.metric != EUCLIDEAN else None
        with self.index.lock.reading():
            if distance is None:
                return impostor_scale(self.index.vectors, self.index.owners)
            return distance.impostor_scale(self.index.vectors, self.index.owners)

    def save(self, store: GalleryStore) -> None:
        state = {"model_sha256": store.meta["model_sha256"], "gallery": store.key(), "generation": self.synced}
        self.index.save(store.path, STEM, state, rows=True)


def _nearest_identities_of_all(scores: np.ndarray, owners: np.ndarray, labels: np.ndarray, k: int) -> list[list]:
    """Per row of scores [B, T], the k identities with the lowest score of any of their rows, as (identity, score,
    row label): each identity's lowest found once for the batch (rows grouped by identity), the row label looked
    up for the k chosen only."""
    if scores.shape[1] == 0:
        return [[] for _ in scores]
    order = np.argsort(owners, kind="stable")
    grouped = owners[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    ends = np.r_[starts[1:], len(order)]
    best = np.minimum.reduceat(scores[:, order], starts, axis=1)  # [B, identities]
    chosen = np.argsort(best, axis=1, kind="stable")[:, :k]
    out = []
    for row, picks in zip(scores, chosen, strict=True):
        found = []
        for j in picks:
            members = order[starts[j] : ends[j]]
            nearest = members[np.argmin(row[members])]
            found.append((int(grouped[starts[j]]), float(row[nearest]), int(labels[nearest])))
        out.append(found)
    return out


def reconcile(store: GalleryStore, index: EmbeddingIndex) -> tuple[np.ndarray, TrackMeans]:
    """(which of the saved rows the store still holds as they are, the store's other tracks read from it)."""
    held = TrackMeans(index.ids, index.owners, index.counts, np.zeros((len(index.ids), 0), np.float32))
    return reconcile_rows(store.track_summary(), store.track_means, held, store.dim)


def reconcile_rows(summary: tuple, read, held: TrackMeans, dim: int) -> tuple[np.ndarray, TrackMeans]:
    """``reconcile`` for any rows: ``summary`` is the store's (labels, identities, counts) per track, ``read(who)``
    its track means (of one identity, or of all with None), ``held`` the rows in memory (their means unused)."""
    labels, owners, counts = summary
    at = np.searchsorted(labels, held.labels)
    kept = np.zeros(len(held.labels), bool)
    inside = at < len(labels)
    same = (labels[at[inside]] == held.labels[inside]) & (counts[at[inside]] == held.counts[inside])
    kept[inside] = same & (owners[at[inside]] == held.owners[inside])  # a merge moves a track to another identity
    missing = ~np.isin(labels, held.labels[kept])
    if missing.sum() * PER_IDENTITY_READS > len(labels):
        fresh = read(None)
    else:
        fresh = _concat([read(int(who)) for who in np.unique(owners[missing])], dim)
    return kept, _subset(fresh, np.isin(fresh.labels, labels[missing]))


def _subset(rows: TrackMeans, mask: np.ndarray) -> TrackMeans:
    return TrackMeans(rows.labels[mask], rows.owners[mask], rows.counts[mask], rows.means[mask])


def _concat(parts: list[TrackMeans], dim: int) -> TrackMeans:
    if not parts:
        return _empty(dim)
    merged = TrackMeans(*(np.concatenate([getattr(p, key) for p in parts]) for key in TrackMeans.__dataclass_fields__))
    return _subset(merged, np.argsort(merged.labels))


def _empty(dim: int) -> TrackMeans:
    none = np.zeros(0, np.int64)
    return TrackMeans(none, none, none, np.zeros((0, dim), np.float32))
