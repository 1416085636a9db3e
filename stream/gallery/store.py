"""The durable half of the gallery: identities and their embeddings in SQLite (WAL).

Why SQLite in WAL mode with ``synchronous=FULL``: an enroll returns only after its transaction is
on disk, so a crash (power cut, SIGKILL) at any later moment keeps it, and a crash before the commit
leaves the previous state; readers in other processes see committed data while one writer works.
The search index is derived from this store and can always be rebuilt from it.

Every write bumps ``generation`` in the same transaction, so an index saved beside the store knows
exactly which state it reflects (``deletions`` says whether it can catch up by appending alone).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, InputError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    identity INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    source TEXT NOT NULL,
    track TEXT,
    t_start REAL,
    t_end REAL,
    window BLOB,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS embeddings_by_identity ON embeddings(identity);
"""


@dataclass(frozen=True)
class Identity:
    id: int
    name: str
    attributes: dict
    created: float
    anonymous: bool
    embeddings: int = 0


@dataclass(frozen=True)
class Origin:
    """Where an embedding came from: a file or sensor, a track in it, a time span; optionally its window."""

    source: str
    track: str | None = None
    t_start: float | None = None
    t_end: float | None = None
    window: np.ndarray | None = None  # float32 [f, 20, 3], kept so the gallery can be re-embedded


class GalleryStore:
    """Identities and embeddings of one model (its card's sha256, D and metric), durable in SQLite."""

    def __init__(self, path: str | Path, model: dict | None = None, create: bool = False) -> None:
        """Open ``path``; with ``create``, make it for ``model`` (a model card) if it does not exist."""
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise InputError(f"{self.path}: no gallery here (make one with: gaitwatch gallery create {self.path})")
        if create and self.path.exists():
            raise InputError(f"{self.path}: already exists; open it instead of creating it")
        if create:
            _create(self.path, model)
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.meta = self._read_meta()
        except sqlite3.DatabaseError as err:
            raise FormatError(self.path, "database", f"not a readable gallery ({err})") from None
        self.dim = int(self.meta["dim"])

    def _read_meta(self) -> dict:
        try:
            rows = self.db.execute("SELECT key, value FROM meta").fetchall()
        except sqlite3.OperationalError:
            raise FormatError(self.path, "meta table", "missing: this SQLite file is not a gaitwatch gallery") from None
        meta = {key: json.loads(value) for key, value in rows}
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise FormatError(self.path, "schema_version", f"{meta.get('schema_version')}, expected {SCHEMA_VERSION}")
        return meta

    # --- transactions -------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def _bump(self, deletion: bool = False) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        if deletion:
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'deletions'")

    def counters(self) -> tuple[int, int]:
        """(generation, deletions) as committed now: what an index must have seen to be current."""
        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'deletions')"))
        return int(rows["generation"]), int(rows["deletions"])

    # --- model binding ------------------------------------------------------------------------

    def check_model(self, card: dict) -> None:
        """Refuse embeddings or queries from any model other than the one this gallery was filled with."""
        sha = card["file"]["sha256"]
        if sha != self.meta["model_sha256"]:
            raise InputError(
                f"{self.path}: filled by {self.meta['model_name']} (sha256 {self.meta['model_sha256'][:12]}...), "
                f"not by {card['file']['name']} (sha256 {sha[:12]}...); re-embed the gallery with "
                f"'gaitwatch gallery reembed {self.path} --model {card['file']['name']}'"
            )

    # --- identities -----------------------------------------------------------------------------

    def add_identity(self, name: str, attributes: dict | None = None, anonymous: bool = False) -> int:
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO identities (name, attributes, created, anonymous) VALUES (?, ?, ?, ?)",
                (name, json.dumps(attributes or {}), time.time(), int(anonymous)),
            )
            self._bump()
        return int(cursor.lastrowid)

    def identity(self, ref: int | str) -> Identity:
        """An identity by unique name, else by id; InputError naming what was not found.

        Names win over ids, so a person named "02" (a CMU subject) is found by that name."""
        rows = [] if isinstance(ref, int) else self._identities("WHERE i.name = ?", (str(ref),))
        if not rows and str(ref).isdigit():
            rows = self._identities("WHERE i.id = ?", (int(ref),))
        if not rows:
            raise InputError(f"{self.path}: no identity {ref!r}")
        if len(rows) > 1:
            raise InputError(f"{self.path}: {len(rows)} identities are named {ref!r}; use the id")
        return rows[0]

    def identities(self) -> list[Identity]:
        return self._identities("", ())

    def _identities(self, where: str, args: tuple) -> list[Identity]:
        query = (
            "SELECT i.id, i.name, i.attributes, i.created, i.anonymous, "
            "(SELECT COUNT(*) FROM embeddings e WHERE e.identity = i.id) FROM identities i "
            f"{where} ORDER BY i.id"
        )
        return [
            Identity(row[0], row[1], json.loads(row[2]), row[3], bool(row[4]), row[5])
            for row in self.db.execute(query, args)
        ]

    def update_attributes(self, identity: int, attributes: dict) -> None:
        """Merge ``attributes`` into an identity's (a key given again takes the new value)."""
        with self.transaction():
            row = self.db.execute("SELECT attributes FROM identities WHERE id = ?", (identity,)).fetchone()
            if row is None:
                raise InputError(f"{self.path}: no identity {identity}")
            merged = {**json.loads(row[0]), **attributes}
            self.db.execute("UPDATE identities SET attributes = ? WHERE id = ?", (json.dumps(merged), identity))
            self._bump()

    def rename(self, identity: int, name: str) -> None:
        with self.transaction():
            if self.db.execute("UPDATE identities SET name = ? WHERE id = ?", (name, identity)).rowcount != 1:
                raise InputError(f"{self.path}: no identity {identity}")
            self._bump()

    def remove_identity(self, identity: int) -> int:
        """Delete an identity and its embeddings; returns how many embeddings went with it."""
        with self.transaction():
            count = self.db.execute("SELECT COUNT(*) FROM embeddings WHERE identity = ?", (identity,)).fetchone()[0]
            if self.db.execute("DELETE FROM identities WHERE id = ?", (identity,)).rowcount != 1:
                raise InputError(f"{self.path}: no identity {identity}")
            self._bump(deletion=True)
        return int(count)

    # --- embeddings -------------------------------------------------------------------------------

    def add_embeddings(self, identity: int, vectors: np.ndarray, origins: list[Origin]) -> list[int]:
        """Append embeddings [n, D] of one identity in one transaction; returns their ids once committed."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InputError(f"{self.path}: embeddings of shape {list(vectors.shape)}, expected [n, {self.dim}]")
        if len(origins) != len(vectors):
            raise InputError(f"{len(vectors)} embeddings but {len(origins)} origins")
        if not np.isfinite(vectors).all():
            raise InputError(f"{self.path}: refusing embeddings with NaN or infinite values")
        now = time.time()
        ids = []
        with self.transaction():
            if self.db.execute("SELECT 1 FROM identities WHERE id = ?", (identity,)).fetchone() is None:
                raise InputError(f"{self.path}: no identity {identity}")
            for vector, origin in zip(vectors, origins, strict=True):
                window = None if origin.window is None else np.asarray(origin.window, np.float32).tobytes()
                cursor = self.db.execute(
                    "INSERT INTO embeddings (identity, vector, source, track, t_start, t_end, window, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        identity,
                        vector.tobytes(),
                        origin.source,
                        origin.track,
                        origin.t_start,
                        origin.t_end,
                        window,
                        now,
                    ),
                )
                ids.append(int(cursor.lastrowid))
            self._bump()
        return ids

    def embeddings(
        self, after_id: int = 0, chunk: int = 100_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(embedding ids, identity ids, vectors [n, D]) in id order, in chunks, from ``after_id`` on."""
        last = after_id
        while True:
            rows = self.db.execute(
                "SELECT id, identity, vector FROM embeddings WHERE id > ? ORDER BY id LIMIT ?", (last, chunk)
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            owners = np.fromiter((r[1] for r in rows), np.int64, len(rows))
            vectors = np.frombuffer(b"".join(r[2] for r in rows), np.float32).reshape(len(rows), self.dim)
            yield ids, owners, vectors
            last = int(ids[-1])

    def ids_and_owners(self, up_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every embedding id (sorted) and its identity, without the vectors."""
        limit = up_to if up_to is not None else 2**62
        rows = self.db.execute("SELECT id, identity FROM embeddings WHERE id <= ? ORDER BY id", (limit,)).fetchall()
        table = np.array(rows, np.int64).reshape(-1, 2)
        return table[:, 0].copy(), table[:, 1].copy()

    def track_sums(self) -> tuple[list[tuple[int, str, str | None]], np.ndarray, np.ndarray]:
        """Per enrolled track: its key (identity, source, track), the float64 sum of its embeddings, their count."""
        keys, sums, counts = [], [], []
        rows = self.db.execute(
            "SELECT identity, source, track, vector FROM embeddings ORDER BY identity, source, track, id"
        )
        for identity, source, track, blob in rows:
            key = (identity, source, track)
            if not keys or keys[-1] != key:
                keys.append(key), sums.append(np.zeros(self.dim)), counts.append(0)
            sums[-1] += np.frombuffer(blob, np.float32)
            counts[-1] += 1
        return keys, np.asarray(sums, np.float64).reshape(len(keys), self.dim), np.asarray(counts, np.int64)

    def rebind(self, model: dict, encode) -> int:
        """Re-embed every stored window with another model (``encode``: windows -> embeddings) and bind to it.

        One transaction: either every embedding is replaced and the gallery names the new model, or
        nothing changes. Embeddings stored without their window cannot be re-embedded: InputError."""
        missing = self.db.execute("SELECT COUNT(*) FROM embeddings WHERE window IS NULL").fetchone()[0]
        if missing:
            raise InputError(
                f"{self.path}: {missing} embeddings were enrolled without their windows (enroll with "
                "--keep-windows to allow re-embedding); enroll those people again from their files instead"
            )
        f = int(model["f"])
        dim = int(model["embedding_dim"])
        with self.transaction():
            rows = self.db.execute("SELECT id, window FROM embeddings ORDER BY id").fetchall()
            for start in range(0, len(rows), 4096):
                part = rows[start : start + 4096]
                windows = np.frombuffer(b"".join(r[1] for r in part), np.float32).reshape(len(part), f, 20, 3)
                vectors = np.asarray(encode(windows), np.float32)
                self.db.executemany(
                    "UPDATE embeddings SET vector = ? WHERE id = ?",
                    [(v.tobytes(), r[0]) for v, r in zip(vectors, part, strict=True)],
                )
            binding = {
                "model_sha256": model["file"]["sha256"],
                "model_method": model["method"],
                "model_name": model["file"]["name"],
                "dim": dim,
                "metric": model["metric"],
                "f": f,
            }
            self.db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?", [(json.dumps(v), k) for k, v in binding.items()]
            )
            self._bump(deletion=True)  # every vector changed: a saved index must be rebuilt
        self.meta = self._read_meta()
        self.dim = dim
        return len(rows)

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self.db.close()


def _create(path: Path, model: dict | None) -> None:
    """Make an empty gallery aside and rename it into place: a crash leaves no half-made gallery."""
    if model is None:
        raise InputError("creating a gallery needs the model card of the encoder that will fill it")
    meta = {
        "schema_version": SCHEMA_VERSION,
        "model_sha256": model["file"]["sha256"],
        "model_method": model["method"],
        "model_name": model["file"]["name"],
        "dim": model["embedding_dim"],
        "metric": model["metric"],
        "f": model["f"],
        "created": time.time(),
        "generation": 0,
        "deletions": 0,
    }
    if not path.parent.is_dir():
        raise InputError(f"{path}: cannot create a gallery there, folder {path.parent} does not exist")
    partial = atomic.partial_path(path)
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial)
    try:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        db.commit()
    finally:
        db.close()
    atomic.commit(partial, path)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time, all or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.depth = 0

    def __enter__(self) -> _Transaction:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.depth = 1
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if self.depth:
            self.db.execute("ROLLBACK" if kind else "COMMIT")
