"""Nearest-row search by Euclidean distance: exact when small, HNSW (hnswlib) when large.

Why derived: the SQLite store is the truth; an index can be thrown away and rebuilt from it at any time.
Two kinds are kept: the track means the node decides on (``track_index``) and, only where something calls
``Gallery.search``, every embedding (``open_index`` below). Rows are labelled by ids from the store, so the
index of one process can be reconciled with a store that other processes wrote: by label, on open.

Why the graph holds a reduced copy: see ``projection``; the graph's ``RERANK`` best candidates are re-ranked
by exact distance on the full vectors kept in memory. Measured on 200,000 embeddings shaped like the model's:
the same recall as a full-dimension graph at the same ef, 3x faster per query, 5x faster to build
(``benchmarks/gallery_scale.md``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.gallery import index_files
from stream.gallery.projection import Projection
from stream.gallery.rows import Rows
from stream.gallery.rwlock import ReadWriteLock
from stream.gallery.store import GalleryStore

EXACT_LIMIT = 20_000  # up to this many rows, brute force is exact and fast enough
HNSW_M = 32  # measured on 200k real embeddings: better recall than 16 at the same latency, 48 no better
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128  # recall@1 0.993 at 1M model-shaped embeddings, p50 0.62 ms (benchmarks/gallery_scale.md)
KEPT_VARIANCE = 0.95  # share of the rows' variance the graph's principal components keep
RERANK = 32  # graph candidates re-ranked by exact distance per query (at least k)
EXACT_BLOCK = 1 << 24  # float32 scores computed at once by exact search (64 MB)


@dataclass(frozen=True)
class Neighbours:
    """Per query: row ids, their identities and Euclidean distances, nearest first (may be < k)."""

    ids: np.ndarray
    identities: np.ndarray
    distances: np.ndarray


class EmbeddingIndex:
    """Rows (id, owner identity, count, vector) searchable by Euclidean distance; many readers, one writer.

    ``count`` is how many embeddings a row stands for (a track mean's windows; 1 for an embedding): with the
    id it tells whether a saved row still equals the store's. hnswlib's ``add_items`` and ``mark_deleted``
    must not run during ``knn_query``: every change takes the write lock, every search the read lock."""

    def __init__(
        self,
        dim: int,
        exact_limit: int = EXACT_LIMIT,
        ef_search: int = HNSW_EF_SEARCH,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        kept_variance: float = KEPT_VARIANCE,
        rerank: int = RERANK,
    ) -> None:
        self.dim = dim
        self.exact_limit = exact_limit
        self.ef_search = ef_search
        self.m, self.ef_construction = m, ef_construction
        self.kept_variance, self.rerank = kept_variance, rerank
        self.lock = ReadWriteLock()
        self._ids = Rows(np.int64)  # sorted row ids
        self._owners = Rows(np.int64)
        self._counts = Rows(np.int64)
        self._vectors = Rows(np.float32, dim)  # full vectors: exact search, and re-ranking HNSW's candidates
        self.hnsw = None
        self.projection: Projection | None = None  # what the graph holds, once HNSW
        self._norms: np.ndarray | None = None  # squared norms of the rows, for exact search; None after a change
        self.dirty = False  # changed since it was loaded or saved
        self.building: threading.Thread | None = None  # a graph being made while searches go on exactly

    @property
    def ids(self) -> np.ndarray:
        return self._ids.view()

    @property
    def owners(self) -> np.ndarray:
        return self._owners.view()

    @property
    def counts(self) -> np.ndarray:
        return self._counts.view()

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors.view()

    # --- changing -------------------------------------------------------------------------------

    def add(
        self,
        ids: np.ndarray,
        owners: np.ndarray,
        vectors: np.ndarray,
        counts: np.ndarray | None = None,
        graph: bool = True,
    ) -> None:
        """Add rows; a row whose id is here already replaces it where its count differs, else is skipped (so
        adding what a concurrent first read already took is harmless). ``graph=False`` defers the graph
        (opening: a saved one may be adopted, else ``build`` makes it)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        counts = np.ones(len(ids), np.int64) if counts is None else np.asarray(counts, np.int64)
        with self.lock.writing():
            self._add(ids, np.asarray(owners, np.int64), np.asarray(vectors, np.float32), counts, graph)

    def replace_identity(self, identity: int, ids: np.ndarray, vectors: np.ndarray, counts: np.ndarray) -> None:
        """Make ``identity``'s rows exactly these (rows of it not among ``ids`` are dropped)."""
        ids = np.asarray(ids, np.int64)
        with self.lock.writing():
            stale = self.owners == identity
            stale[stale] = ~np.isin(self.ids[stale], ids)
            if stale.any():
                self._keep(~stale)
            self._add(ids, np.full(len(ids), identity, np.int64), np.asarray(vectors, np.float32), counts, True)

    def remove_identity(self, identity: int) -> None:
        with self.lock.writing():
            mine = self.owners == identity
            if mine.any():
                self._keep(~mine)

    def keep(self, mask: np.ndarray) -> None:
        """Keep the rows where ``mask`` is set (before a graph is adopted or built)."""
        with self.lock.writing():
            self._keep(np.asarray(mask, bool))

    def read_rows(self, n: int, read: Callable[[str, np.ndarray], bool]) -> bool:
        """Fill an empty index with ``n`` rows read straight into its arrays: ``read(name, array)`` fills "ids"
        (sorted), "owners", "counts" and "vectors" in place and says whether it could (a million saved track
        means are a gigabyte: read once, copied never). False leaves the index unusable: make another."""
        with self.lock.writing():
            parts = {"ids": self._ids, "owners": self._owners, "counts": self._counts, "vectors": self._vectors}
            if not all(read(name, rows.extend(n)) for name, rows in parts.items()):
                return False
            self._norms = None
            return n < 2 or bool(np.all(np.diff(self.ids) > 0))

    def build(self) -> None:
        """Make the graph over the rows held, where they are too many for exact search."""
        with self.lock.writing():
            self._build_if_large()

    def build_in_background(self, then: Callable[[], None] | None = None) -> None:
        """``build`` in a thread: searches go on exactly meanwhile (a node starts at once, slower per decision
        until the graph is adopted). Rows changed while it builds are added to it when it is adopted; ``then``
        runs after (saving it)."""
        with self.lock.reading():
            if self.hnsw is not None or self.building is not None or len(self.ids) <= self.exact_limit:
                return
            ids, vectors = self.ids.copy(), self.vectors.copy()

        def make() -> None:
            graph, projection = self._new_graph(ids, vectors)
            with self.lock.writing():
                self.building = None
                at = np.searchsorted(self.ids, ids)
                inside = at < len(self.ids)
                inside[inside] = self.ids[at[inside]] == ids[inside]
                moved = ids[inside][np.any(self.vectors[at[inside]] != vectors[inside], axis=1)]
                self.adopt_unlocked(graph, projection, ids, moved)
                self.dirty = True
            if then is not None:
                then()

        self.building = threading.Thread(target=make, name="gaitwatch-index-build", daemon=True)
        self.building.start()

    def adopt(self, graph, projection: Projection, graph_ids: np.ndarray, changed: np.ndarray | None = None) -> bool:
        """Take over a loaded HNSW graph (over ``projection``) whose live labels are ``graph_ids``, made to hold
        exactly the rows here: rows it lacks (or holds with other vectors: ``changed``) are added, labels
        without a row marked deleted. Returns whether it had to change."""
        with self.lock.writing():
            return self.adopt_unlocked(graph, projection, graph_ids, changed)

    def adopt_unlocked(self, graph, projection: Projection, graph_ids: np.ndarray, changed: np.ndarray | None) -> bool:
        """``adopt``, the write lock held by the caller."""
        self.hnsw, self.projection = graph, projection
        missing = ~np.isin(self.ids, graph_ids)
        if changed is not None:
            missing |= np.isin(self.ids, changed)
        stale = graph_ids[~np.isin(graph_ids, self.ids)]
        for label in stale:
            graph.mark_deleted(int(label))
        if missing.any():
            self._hnsw_add(self.ids[missing], self.vectors[missing])
        self.dirty = self.dirty or bool(missing.any() or len(stale))
        return bool(missing.any() or len(stale))

    def _add(self, ids: np.ndarray, owners: np.ndarray, vectors: np.ndarray, counts: np.ndarray, graph: bool) -> None:
        if len(ids) == 0:
            return
        vectors = vectors.reshape(len(ids), self.dim)
        at = np.searchsorted(self.ids, ids)
        present = at < len(self.ids)
        present[present] = self.ids[at[present]] == ids[present]
        changed = present.copy()
        changed[present] = self.counts[at[present]] != counts[present]
        if changed.any():  # the same track with windows added by another process: its mean moved
            self._vectors.view()[at[changed]] = vectors[changed]
            self._counts.view()[at[changed]] = counts[changed]
        new = ~present
        if not present.any():  # all new (an index read from the store): no masked copy of every vector
            self._append(ids, owners, counts, vectors)
        elif new.any():
            self._append(ids[new], owners[new], counts[new], vectors[new])
        if changed.any() or new.any():
            self.dirty, self._norms = True, None
            if graph and self.hnsw is not None:
                touched = changed | new
                self._hnsw_add(ids[touched], vectors[touched])
            elif graph:
                self._build_if_large()

    def _append(self, ids: np.ndarray, owners: np.ndarray, counts: np.ndarray, vectors: np.ndarray) -> None:
        unordered = bool(np.any(np.diff(ids) <= 0)) or (len(self.ids) > 0 and ids[0] <= self.ids[-1])
        self._ids.append(ids)
        self._owners.append(owners)
        self._counts.append(counts)
        self._vectors.append(vectors)
        if unordered:  # rows another process committed earlier, read later: keep ids sorted (O(n), rare)
            order = np.argsort(self.ids, kind="stable")
            for rows in (self._ids, self._owners, self._counts, self._vectors):
                rows.reorder(order)

    def _keep(self, mask: np.ndarray) -> None:
        if mask.all():
            return
        if self.hnsw is not None:
            for label in self.ids[~mask]:
                self.hnsw.mark_deleted(int(label))
        for rows in (self._ids, self._owners, self._counts, self._vectors):
            rows.keep(mask)
        self.dirty, self._norms = True, None

    def _build_if_large(self) -> None:
        if len(self._ids) > self.exact_limit and self.building is None:  # a graph being built takes changes later
            self.hnsw, self.projection = self._new_graph(self.ids, self.vectors)
            self.dirty = True

    def _new_graph(self, ids: np.ndarray, vectors: np.ndarray):
        """(an HNSW graph over ``vectors`` labelled ``ids``, the projection it holds them in)."""
        import hnswlib

        projection = Projection.fit(vectors, self.kept_variance)
        graph = hnswlib.Index(space="l2", dim=projection.dim)
        graph.init_index(max_elements=max(1024, 2 * len(ids)), M=self.m, ef_construction=self.ef_construction)
        # Inserted in a seeded random order, not the store's: rows arrive identity by identity, and a good model
        # makes each identity's tracks a tight cluster far from the rest. Inserted together, such a cluster's
        # links to the rest of the graph are pruned away as its own members fill each other's neighbour lists,
        # and no search reaches it (seen on the bundled CMU walks: one walk's 30 tracks never found at ef 128).
        # Interleaved, each cluster's first members link to the others while their lists still have room.
        order = np.random.default_rng(0).permutation(len(ids))
        for start in range(0, len(ids), 100_000):  # projected in chunks: no reduced copy of everything at once
            part = order[start : start + 100_000]
            graph.add_items(projection(vectors[part]), ids[part])
        return graph, projection

    def _hnsw_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self.hnsw.get_current_count() + len(ids)
        if needed > self.hnsw.get_max_elements():
            self.hnsw.resize_index(max(needed, 2 * self.hnsw.get_max_elements()))
        self.hnsw.add_items(self.projection(vectors), ids)

    # --- searching ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: np.ndarray, k: int) -> list[Neighbours]:
        """The k nearest rows of each query (fewer when fewer exist), with exact distances."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        with self.lock.reading():
            k = min(k, len(self.ids))
            if k == 0:
                empty = Neighbours(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
                return [empty for _ in queries]
            candidates = min(max(k, self.rerank), len(self.ids))
            positions = self._graph_candidates(queries, candidates) if self.hnsw is not None else None
            if positions is None:
                positions = self._exact_candidates(queries, candidates)
            return self._rerank(queries, positions, k)

    def _graph_candidates(self, queries: np.ndarray, candidates: int) -> np.ndarray | None:
        """Row positions of the graph's nearest candidates; None where the graph cannot give that many (hnswlib
        raises when fewer than k are reachable, as with many deleted labels): exact search then answers."""
        ef = max(self.ef_search, candidates)
        reduced = self.projection(queries)
        while True:
            self.hnsw.set_ef(ef)
            try:
                labels, _ = self.hnsw.knn_query(reduced, k=candidates)
            except RuntimeError:
                if ef >= self.hnsw.get_current_count():  # as wide as the graph, deleted labels included
                    return None
                ef *= 2
                continue
            # hnswlib labels are uint64: searching int64 ids with them would convert all ids per query (O(n))
            return np.searchsorted(self.ids, labels.astype(np.int64))

    def _exact_candidates(self, queries: np.ndarray, candidates: int) -> np.ndarray:
        """The ``candidates`` nearest rows by |v|^2 - 2 q.v in float32 (exact distances come in ``_rerank``)."""
        vectors = self.vectors
        if candidates >= len(vectors):
            return np.tile(np.arange(len(vectors)), (len(queries), 1))
        if self._norms is None:  # once per change, not per search (readers racing here compute the same)
            self._norms = np.einsum("nd,nd->n", vectors, vectors)
        norms = self._norms
        block = max(1, EXACT_BLOCK // len(vectors))
        out = np.empty((len(queries), candidates), np.int64)
        for start in range(0, len(queries), block):
            scores = norms[None, :] - 2 * queries[start : start + block] @ vectors.T
            # the candidates-th smallest score, then the rows up to it: twice as fast as argpartition
            bounds = np.partition(scores, candidates - 1, axis=1)[:, candidates - 1]
            for row, (score, bound) in enumerate(zip(scores, bounds, strict=True)):
                out[start + row] = np.flatnonzero(score <= bound)[:candidates]
        return out

    def _rerank(self, queries: np.ndarray, positions: np.ndarray, k: int) -> list[Neighbours]:
        """The k nearest of each query's candidate rows, by exact distance on the full vectors."""
        block = max(1, EXACT_BLOCK // (positions.shape[1] * self.dim))
        results = []
        for start in range(0, len(queries), block):
            rows = positions[start : start + block]
            differences = self.vectors[rows] - queries[start : start + block, None, :]
            squared = np.einsum("qcd,qcd->qc", differences, differences)
            order = np.argsort(squared, axis=1, kind="stable")[:, :k]
            best = np.take_along_axis(rows, order, axis=1)
            distances = np.sqrt(np.take_along_axis(squared, order, axis=1))
            results += [Neighbours(self.ids[b], self.owners[b], d) for b, d in zip(best, distances, strict=True)]
        return results

    # --- saving -------------------------------------------------------------------------------

    def save(self, store_path: Path, stem: str, state: dict, rows: bool) -> None:
        """Save the graph (where HNSW) and, with ``rows``, every row too (else just the graph's ids: the rows
        come from the store on open); nothing when there is nothing to save."""
        with self.lock.reading():
            if self.hnsw is None and not rows:
                return
            arrays = {"ids": self.ids}
            if rows:
                arrays |= {"owners": self.owners, "counts": self.counts, "vectors": self.vectors}
            state = {**state, "dim": self.dim, "rows": len(self.ids)}
            index_files.save(store_path, stem, state, arrays, self.hnsw, self.projection)
            self.dirty = False


def nearest_identities(index: EmbeddingIndex, queries: np.ndarray, k: int, oversample: int) -> list[list[tuple]]:
    """Per query, the k nearest identities as (identity, distance, row id), each scored by its nearest row.

    ``k * oversample`` rows are fetched, and more (4x) for a query whose nearest rows were crowded by fewer
    than k identities, until k are found or every row was seen."""
    fetch = k * oversample
    results: list[list[tuple] | None] = [None] * len(queries)
    pending = np.arange(len(queries))
    while len(pending):
        found = index.search(queries[pending], fetch)
        retry = []
        for q, neighbours in zip(pending, found, strict=True):
            best = _per_identity(neighbours, k)
            if len(best) < k and len(neighbours.ids) == fetch:
                retry.append(q)
            else:
                results[q] = best
        pending = np.asarray(retry, np.int64)
        fetch *= 4
    return results  # type: ignore[return-value]


def _per_identity(neighbours: Neighbours, k: int) -> list[tuple]:
    seen: dict[int, tuple] = {}
    for row, owner, distance in zip(neighbours.ids, neighbours.identities, neighbours.distances, strict=True):
        if int(owner) not in seen:
            seen[int(owner)] = (int(owner), float(distance), int(row))
            if len(seen) == k:
                break
    return list(seen.values())


HNSW_STEM = "hnsw"  # the embeddings' index files: <gallery>.hnsw.*


def open_index(store: GalleryStore, exact_limit: int = EXACT_LIMIT) -> tuple[EmbeddingIndex, str]:
    """The index of every embedding of ``store``, and how it was obtained: "built", "loaded" (a saved graph
    that held exactly the store) or "caught up" (a saved graph reconciled with the store by id: ids it lacks
    added, ids the store lost marked deleted, so it equals the store whichever process saved last)."""
    index = EmbeddingIndex(store.dim, exact_limit)
    for ids, owners, vectors in store.embeddings():
        index.add(ids, owners, vectors, graph=False)
    loaded = _saved_graph(store, len(index)) if len(index) > exact_limit else None
    if loaded is None:
        index.build()
        return index, "built"
    caught_up = index.adopt(*loaded)
    index.dirty = caught_up
    return index, "caught up" if caught_up else "loaded"


def _saved_graph(store: GalleryStore, rows: int) -> tuple[object, Projection, np.ndarray] | None:
    """The saved graph, its projection and live ids; None when there is none, or it is damaged, or it is
    mostly deleted labels (then a fresh build is smaller and faster)."""
    with index_files.reading(store.path, HNSW_STEM, store.meta["model_sha256"], store.dim, store.key()) as saved:
        loaded = saved.graph() if saved is not None else None
        ids = saved.array("ids") if loaded is not None else None
    if loaded is None or ids is None or ids.ndim != 1 or loaded[0].get_current_count() > 2 * rows:
        return None
    return loaded[0], loaded[1], ids.astype(np.int64)


def save_index(index: EmbeddingIndex, store: GalleryStore) -> None:
    """Save the graph of every embedding with its ids (an exact index saves nothing: the store is read in moments)."""
    index.save(store.path, HNSW_STEM, {"model_sha256": store.meta["model_sha256"], "gallery": store.key()}, rows=False)
