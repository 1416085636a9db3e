"""The derived half of the gallery: nearest-embedding search, exact when small, HNSW (hnswlib) when large.

Why derived: the SQLite store is the truth; this index can be thrown away and rebuilt from it at any
time. Saved beside the store as ``<gallery>.hnsw.<token>`` (the graph, its projection and the ids it
holds, each under a name no other save uses) plus a small JSON pointer ``<gallery>.hnsw.json`` with
their checksums, replaced last, so a crash while saving leaves the previous (complete) index or the new
one. Saves and their clean-ups take turns under a lock file (``<gallery>.hnsw.lock``): several processes
may write one gallery, each saving its own view of it. So on open a saved graph is reconciled with the
store by id: ids the store has and the graph lacks are added, ids the graph has and the store lacks are
marked deleted, and the index equals the store whichever process saved last. A missing, damaged or
other model's graph is rebuilt.

Why the graph holds a reduced copy: at a million 256-D embeddings a graph search is bound by memory
traffic (each distance reads 1 KB from a random place), not arithmetic. Learned embeddings keep most of
their variance in few directions (the shipped model's: 90% in 30 of 256), so the graph is built over the
principal components that hold ``KEPT_VARIANCE`` of it (fitted on the embeddings held when the index
turns to HNSW; a multiple of 16, hnswlib's fast path), and its ``RERANK`` best candidates are re-ranked
by exact distance on the full vectors. Embeddings without such structure keep all their dimensions.
Measured on 200,000 embeddings shaped like the model's: the same recall as a full-dimension graph at the
same ef, 3x faster per query, 5x faster to build (``benchmarks/gallery_scale.md``).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors import atomic
from stream.gallery.filelock import locked
from stream.gallery.rwlock import ReadWriteLock
from stream.gallery.store import GalleryStore

EXACT_LIMIT = 20_000  # up to this many embeddings, brute force is exact and fast enough
HNSW_M = 32  # measured on 200k real embeddings: better recall than 16 at the same latency, 48 no better
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128  # recall@1 0.993 at 1M model-shaped embeddings, p50 0.62 ms (benchmarks/gallery_scale.md)
KEPT_VARIANCE = 0.95  # share of the embeddings' variance the graph's principal components keep
RERANK = 32  # graph candidates re-ranked by exact distance per query (at least k)


@dataclass(frozen=True)
class Neighbours:
    """Per query: embedding ids, their identities and Euclidean distances, nearest first (may be < k)."""

    ids: np.ndarray
    identities: np.ndarray
    distances: np.ndarray


class EmbeddingIndex:
    """All embeddings of a store, searchable by Euclidean distance; thread-safe for many readers, one writer."""

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
        self._ids = _Rows(np.int64)  # sorted embedding ids (deleted ones removed)
        self._owners = _Rows(np.int64)
        self._vectors = _Rows(np.float32, dim)  # full vectors: exact search, and re-ranking HNSW's candidates
        self.hnsw = None
        self.projection: Projection | None = None  # what the graph holds, once HNSW

    @property
    def ids(self) -> np.ndarray:
        return self._ids.view()

    @property
    def owners(self) -> np.ndarray:
        return self._owners.view()

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors.view()

    # --- building ---------------------------------------------------------------------------

    def add(self, ids: np.ndarray, owners: np.ndarray, vectors: np.ndarray, graph: bool = True) -> None:
        """Append embeddings whose ids are larger than every id already here; ``graph=False`` defers the graph
        (opening: a saved one may be adopted, else ``build`` makes it)."""
        with self.lock.writing():
            self._ids.append(ids)
            self._owners.append(owners)
            self._vectors.append(vectors)
            if not graph:
                return
            if self.hnsw is None:
                self._build_if_large()
            else:
                self._hnsw_add(np.asarray(ids), np.asarray(vectors))

    def build(self) -> None:
        """Make the graph over the rows held, where they are too many for exact search."""
        with self.lock.writing():
            self._build_if_large()

    def adopt(self, graph, projection: Projection, graph_ids: np.ndarray) -> bool:
        """Take over a loaded HNSW graph (over ``projection``) whose live labels are ``graph_ids``, made to hold
        exactly the rows here: rows it lacks are added, labels without a row marked deleted. Returns whether it
        had to change."""
        with self.lock.writing():
            self.hnsw, self.projection = graph, projection
            missing = ~np.isin(self.ids, graph_ids)
            stale = graph_ids[~np.isin(graph_ids, self.ids)]
            for label in stale:
                graph.mark_deleted(int(label))
            if missing.any():
                self._hnsw_add(self.ids[missing], self.vectors[missing])
            return bool(missing.any() or len(stale))

    def remove_identity(self, identity: int) -> None:
        with self.lock.writing():
            kept = self.owners != identity
            if self.hnsw is not None:
                for label in self.ids[~kept]:
                    self.hnsw.mark_deleted(int(label))
            self._vectors.keep(kept)
            self._ids.keep(kept)
            self._owners.keep(kept)

    def _build_if_large(self) -> None:
        if len(self._ids) > self.exact_limit:
            self._switch_to_hnsw()

    def _switch_to_hnsw(self) -> None:
        import hnswlib

        self.projection = Projection.fit(self.vectors, self.kept_variance)
        self.hnsw = hnswlib.Index(space="l2", dim=self.projection.dim)
        self.hnsw.init_index(max_elements=max(1024, 2 * len(self.ids)), M=self.m, ef_construction=self.ef_construction)
        self.hnsw.add_items(self.projection(self.vectors), self.ids)

    def _hnsw_add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self.hnsw.get_current_count() + len(ids)
        if needed > self.hnsw.get_max_elements():
            self.hnsw.resize_index(max(needed, 2 * self.hnsw.get_max_elements()))
        self.hnsw.add_items(self.projection(vectors), ids)

    # --- searching ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, queries: np.ndarray, k: int) -> list[Neighbours]:
        """The k nearest embeddings of each query (fewer when fewer exist)."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        with self.lock.reading():
            k = min(k, len(self.ids))
            if k == 0:
                empty = Neighbours(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
                return [empty for _ in queries]
            if self.hnsw is None:
                return self._exact(queries, k)
            return self._approximate(queries, k)

    def _exact(self, queries: np.ndarray, k: int) -> list[Neighbours]:
        squared = (queries**2).sum(1)[:, None] - 2 * queries @ self.vectors.T + (self.vectors**2).sum(1)[None, :]
        order = (
            np.argpartition(squared, k - 1, axis=1)[:, :k]
            if k < squared.shape[1]
            else np.tile(np.arange(squared.shape[1]), (len(queries), 1))
        )
        results = []
        for row, cand in zip(squared, order, strict=True):
            cand = cand[np.argsort(row[cand], kind="stable")]
            results.append(Neighbours(self.ids[cand], self.owners[cand], np.sqrt(np.maximum(row[cand], 0))))
        return results

    def _approximate(self, queries: np.ndarray, k: int) -> list[Neighbours]:
        candidates = min(max(k, self.rerank), len(self.ids))
        ef = max(self.ef_search, candidates)
        reduced = self.projection(queries)
        while True:
            self.hnsw.set_ef(ef)
            try:
                labels, _ = self.hnsw.knn_query(reduced, k=candidates)
                break
            except RuntimeError:  # deleted items can leave too few reachable results at this ef
                if ef >= len(self.ids) * 2:
                    raise
                ef *= 2
        # hnswlib labels are uint64: searching int64 ids with them would convert all ids per query (O(n))
        positions = np.searchsorted(self.ids, labels.astype(np.int64))  # [q, candidates]
        differences = self.vectors[positions] - queries[:, None, :]
        squared = np.einsum("qcd,qcd->qc", differences, differences)
        order = np.argsort(squared, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(positions, order, axis=1)
        distances = np.sqrt(np.take_along_axis(squared, order, axis=1))
        return [Neighbours(self.ids[best[i]], self.owners[best[i]], distances[i]) for i in range(len(queries))]

    # --- persistence --------------------------------------------------------------------------

    def save(self, store_path: Path, model_sha256: str) -> None:
        """Write the HNSW graph, its projection and its ids aside under fresh names, then replace the pointer,
        then drop every other saved file; all under the gallery's lock file, so that the saves of several
        processes take turns and none deletes a file another is writing.

        An exact index has nothing to save: it is rebuilt from the store in moments."""
        with self.lock.reading():
            if self.hnsw is None:
                return
            with locked(lock_path(store_path)):
                graph = store_path.with_name(f"{store_path.name}.hnsw.{secrets.token_hex(6)}")
                files = {
                    "graph": _save_graph(self.hnsw, graph),
                    "projection": _save_private(graph.with_name(graph.name + ".projection.npy"), self.projection),
                    "ids": _save_private(graph.with_name(graph.name + ".ids.npy"), self.ids),
                }
                state = {
                    **{key: path.name for key, (path, _) in files.items()},
                    "crc32": {path.name: crc for path, crc in files.values()},
                    "model_sha256": model_sha256,
                    "dim": self.dim,
                }
                pointer = pointer_path(store_path)
                atomic.write_bytes(pointer, json.dumps(state).encode(), private=True)
                kept = {pointer, lock_path(store_path), *(path for path, _ in files.values())}
                for old in store_path.parent.glob(f"{store_path.name}.hnsw.*"):
                    if old not in kept:
                        old.unlink(missing_ok=True)


def _save_graph(hnsw, path: Path) -> tuple[Path, int]:
    """hnswlib writes the graph into a private partial file (it keeps an existing file's mode), then it is
    committed; returns its path and CRC-32."""
    partial = atomic.partial_path(path)
    os.close(atomic.open_private(partial))
    hnsw.save_index(str(partial))
    crc = _crc32(partial)
    atomic.commit(partial, path)
    return path, crc


def _save_private(path: Path, value: Projection | np.ndarray) -> tuple[Path, int]:
    data = value.to_bytes() if isinstance(value, Projection) else _npy(value)
    atomic.write_bytes(path, data, private=True)
    return path, zlib.crc32(data)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


@dataclass(frozen=True)
class Projection:
    """x -> (x - mean) @ basis: the first principal components, or all dimensions unchanged (basis None)."""

    mean: np.ndarray  # float32 [D]
    basis: np.ndarray | None  # float32 [D, d]

    @staticmethod
    def fit(vectors: np.ndarray, kept_variance: float) -> Projection:
        """The fewest leading components (a multiple of 16) holding ``kept_variance`` of the variance."""
        full = vectors.shape[1]
        mean = vectors.mean(axis=0, dtype=np.float64)
        _, singular, components = np.linalg.svd(vectors - mean, full_matrices=False)
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


class _Rows:
    """A growable array: appends cost amortised O(rows added), not a copy of everything held."""

    def __init__(self, dtype, width: int | None = None) -> None:
        self._shape = () if width is None else (width,)
        self._data = np.zeros((0, *self._shape), dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def view(self) -> np.ndarray:
        return self._data[: self._n]

    def append(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, self._data.dtype).reshape(-1, *self._shape)
        needed = self._n + len(rows)
        if needed > len(self._data):
            grown = np.zeros((max(needed, 2 * len(self._data), 1024), *self._shape), self._data.dtype)
            grown[: self._n] = self.view()
            self._data = grown
        self._data[self._n : needed] = rows
        self._n = needed

    def keep(self, mask: np.ndarray) -> None:
        kept = self.view()[mask]
        self._data, self._n = kept.copy(), len(kept)


def pointer_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".hnsw.json")


def lock_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".hnsw.lock")


def open_index(store: GalleryStore, exact_limit: int = EXACT_LIMIT) -> tuple[EmbeddingIndex, str]:
    """The index of ``store``'s committed state, and how it was obtained: "built", "loaded" (a saved graph
    that held exactly the store) or "caught up" (a saved graph reconciled with the store by id)."""
    index = EmbeddingIndex(store.dim, exact_limit)
    for ids, owners, vectors in store.embeddings():
        index.add(ids, owners, vectors, graph=False)
    saved = _saved_graph(store, len(index)) if len(index) > exact_limit else None
    if saved is None:
        index.build()
        return index, "built"
    return index, "caught up" if index.adopt(*saved) else "loaded"


def _saved_graph(store: GalleryStore, rows: int) -> tuple[object, Projection, np.ndarray] | None:
    """The saved graph of this store's model, its projection and live ids; None when there is none, or it is
    damaged, or it is mostly deleted labels (then a fresh build is smaller and faster)."""
    with locked(lock_path(store.path), shared=True):  # no save's clean-up deletes these files while read
        state = _saved_state(store.path)
        if state is None or state["model_sha256"] != store.meta["model_sha256"] or state["dim"] != store.dim:
            return None
        loaded = _load_graph(store.path, state)
    if loaded is None or loaded[0].get_current_count() > 2 * rows:
        return None
    return loaded


def _saved_state(store_path: Path) -> dict | None:
    try:
        state = json.loads(pointer_path(store_path).read_text())
        keys = {"graph", "projection", "ids", "crc32", "model_sha256", "dim"}
        return state if isinstance(state, dict) and keys <= state.keys() else None
    except (OSError, ValueError):
        return None


def _load_graph(store_path: Path, state: dict) -> tuple[object, Projection, np.ndarray] | None:
    """A saved hnswlib graph, its projection and ids, or None when any is missing or differs from the checksum
    the pointer gives for it (then the index is rebuilt)."""
    import hnswlib

    try:
        files = {key: store_path.with_name(state[key]) for key in ("graph", "projection", "ids")}
        data = {key: files[key].read_bytes() for key in ("projection", "ids")}
        crcs = {"graph": _crc32(files["graph"]), **{key: zlib.crc32(value) for key, value in data.items()}}
        if any(state["crc32"].get(files[key].name) != crc for key, crc in crcs.items()):
            return None
        projection = Projection.from_bytes(data["projection"], state["dim"])
        ids = np.load(io.BytesIO(data["ids"]), allow_pickle=False)
        graph = hnswlib.Index(space="l2", dim=projection.dim)
        graph.load_index(str(files["graph"]), allow_replace_deleted=False)
    except (OSError, ValueError, TypeError, AttributeError, RuntimeError, EOFError):
        return None
    return graph, projection, ids.astype(np.int64)
