"""The durable half of the gallery: identities and their embeddings in SQLite (WAL).

Why SQLite in WAL mode with ``synchronous=FULL``: an enroll returns only after its transaction is
on disk, so a crash (power cut, SIGKILL) at any later moment keeps it, and a crash before the commit
leaves the previous state; readers in other processes see committed data while one writer works, and
writers in several processes take turns (``BEGIN IMMEDIATE``). The search index is derived from this
store and can always be rebuilt from it. Every write bumps ``generation`` in the same transaction.

Why every read is checked: a damaged page, a bad meta value or a vector of the wrong length must be one
clear error naming the gallery (``FormatError``), never a traceback; so must a gallery that cannot be
written (``InputError`` saying it is read-only). A gallery that this process may not write is opened
read-only: ``mode=ro`` where its write-ahead log exists (reading the log needs its ``-shm``, which SQLite
makes or finds beside it), else ``immutable=1``, which makes no file at all (a read-only folder allows
none) at the price of no locking: a writer starting meanwhile is not seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, GaitwatchError, InputError
from stream.gallery.channel_tables import ChannelTables
from stream.gallery.records import (
    META_TYPES,
    Identity,
    Origin,
    TrackMeans,
    check_meta_value,
    check_model,
    find_identity,
    group_track_means,
    guarded,
    model_binding,
    new_vectors,
    parse_json,
    stored_integers,
    stored_vectors,
)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's transaction to end
ORIGINS = """
CREATE TABLE IF NOT EXISTS origins (
    origin TEXT PRIMARY KEY,
    identity INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE
);
"""  # where imported identities came from (a later table: galleries made before it lack it until an import)
# Embeddings of another identity channel (silhouettes), each channel bound to its own model (meta
# ``channel.<name>``). A later table too: galleries made before it lack it until a channel's first enroll.
CHANNEL_TABLE = """
CREATE TABLE IF NOT EXISTS channel_embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    identity INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    source TEXT NOT NULL,
    track TEXT,
    t_start REAL,
    t_end REAL,
    created REAL NOT NULL
);
"""
CHANNEL_INDEX = "CREATE INDEX IF NOT EXISTS channel_embeddings_by_identity ON channel_embeddings(channel, identity);"
SCHEMA = (
    """
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
    + ORIGINS
    + CHANNEL_TABLE
    + CHANNEL_INDEX
)


class GalleryStore(ChannelTables):
    """Identities and embeddings of one model (its card's sha256, D and metric), durable in SQLite."""

    def __init__(
        self, path: str | Path, model: dict | None = None, create: bool = False, writable: bool | None = None
    ) -> None:
        """Open ``path``; with ``create``, make it for ``model`` (a model card) if it does not exist.

        ``writable``: True refuses a gallery this process may not write (file or folder read-only), False
        opens it for reading only, None (the default) writes where it may and reads elsewhere."""
        self.path = Path(path)
        self.where = str(self.path)  # how messages name it (a PostgreSQL store's is its URL, without password)
        if not create and not self.path.is_file():
            raise InputError(f"{self.path}: no gallery here (make one with: gaitwatch gallery create {self.path})")
        if create and self.path.exists():
            raise InputError(f"{self.path}: already exists; open it instead of creating it")
        if create:
            _create(self.path, model)
        may_write = os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
        if writable and not may_write:
            raise self.read_only_error()
        self.readonly = not may_write if writable is None else not writable
        self.db = self._connect(may_write)
        try:
            self.meta = self._read_meta()
        except GaitwatchError:
            self.db.close()
            raise
        self.dim = int(self.meta["dim"])
        self.written: int | None = None  # the generation this connection's last write committed

    @guarded
    def _connect(self, may_write: bool) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri()
        if may_write:
            db = _sqlite(uri + "?mode=rw")  # never creates a file: a mistyped name stays an error
            if self.readonly:
                db.execute("PRAGMA query_only=ON")
            else:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            return db
        if not Path(f"{self.path}-wal").exists():
            return _sqlite(uri + "?immutable=1")
        db = _sqlite(uri + "?mode=ro")  # a log to read: SQLite needs its -shm beside it (found or made)
        try:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.OperationalError:
            db.close()
            raise InputError(
                f"{self.path}: cannot be read here: its write-ahead log {self.path.name}-wal needs write access "
                f"to {self.path.parent} (open it once where it can be written, which folds the log in)"
            ) from None
        return db

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        """What ``guarded`` turns into ``failure``: SQLite's errors, and stored text that is not UTF-8."""
        return (sqlite3.Error, UnicodeDecodeError)

    def prepare(self) -> None:
        """Nothing before a call (``guarded``): a file needs no reconnecting."""

    def failure(self, err: sqlite3.Error | UnicodeDecodeError) -> GaitwatchError:
        """An SQLite error as one line naming the gallery: read-only, busy, or damaged (or the disk failed)."""
        if isinstance(err, UnicodeDecodeError):
            return FormatError(self.path, "", f"damaged: stored text that is not UTF-8 ({err})")
        code, text = getattr(err, "sqlite_errorname", "") or "", str(err)
        if code.startswith("SQLITE_READONLY") or "readonly" in text:
            return self.read_only_error()
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
            return InputError(f"{self.path}: busy: another process held it for {BUSY_TIMEOUT_S:.0f} s; try again")
        if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
            return FormatError(self.path, "", f"damaged or not a gallery (SQLite: {text})")
        return FormatError(self.path, "", f"not readable as a gallery (SQLite: {text})")

    def read_only_error(self) -> InputError:
        return InputError(
            f"{self.path}: the gallery is read-only here (no write permission for it or its folder "
            f"{self.path.parent}); nothing was changed"
        )

    @guarded
    def _read_meta(self) -> dict:
        try:
            rows = self.db.execute("SELECT key, value FROM meta").fetchall()
        except sqlite3.OperationalError as err:
            if "no such table" not in str(err):
                raise
            raise FormatError(self.path, "meta table", "missing: this SQLite file is not a gaitwatch gallery") from None
        meta = {key: self._json(value, f"meta {key}") for key, value in rows}
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise FormatError(self.path, "schema_version", f"{meta.get('schema_version')}, expected {SCHEMA_VERSION}")
        for key in META_TYPES:
            self._check_meta(key, meta.get(key))
        for key in ("dim", "f"):
            if meta[key] < 1:
                raise FormatError(self.path, f"meta {key}", f"{meta[key]}, expected a positive count")
        return meta

    def _check_meta(self, key: str, value: object) -> None:
        check_meta_value(self.where, key, value)

    def _json(self, value, where: str):
        return parse_json(self.where, value, where)

    # --- transactions -------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        """All or nothing, one writer at a time; InputError at once where the gallery is read-only."""
        if self.readonly:
            raise self.read_only_error()
        return _Transaction(self)

    def _bump(self) -> None:
        self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        self.written = self.generation()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Several reads that see one committed state (a read transaction; in WAL mode writers go on meanwhile)."""
        if self.db.in_transaction:
            yield
            return
        try:
            self.db.execute("BEGIN")
        except sqlite3.Error as err:
            raise self.failure(err) from None
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # the error that ended the reads is the one to tell
                self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error as err:
            raise self.failure(err) from None

    @guarded
    def generation(self) -> int:
        """The count of writes ever committed to this gallery, as stored now (every write adds one)."""
        raw = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        value = self._json(raw, "meta generation")
        self._check_meta("generation", value)
        return value

    # --- model binding ------------------------------------------------------------------------

    def check_model(self, card: dict) -> None:
        """Refuse embeddings or queries from any model other than the one this gallery was filled with."""
        check_model(self.where, self.meta, card)

    # --- identities -----------------------------------------------------------------------------

    @guarded
    def add_identity(
        self, name: str, attributes: dict | None = None, anonymous: bool = False, origin: str | None = None
    ) -> int:
        """A new identity; ``origin`` records where an imported one came from (see ``origins``)."""
        _check_name(name, self.path)
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO identities (name, attributes, created, anonymous) VALUES (?, ?, ?, ?)",
                (name, json.dumps(attributes or {}), time.time(), int(anonymous)),
            )
            if origin is not None:
                self.db.execute(ORIGINS)
                self.db.execute("INSERT INTO origins VALUES (?, ?)", (origin, cursor.lastrowid))
            self._bump()
        return int(cursor.lastrowid)

    @guarded
    def identity(self, ref: int | str) -> Identity:
        """The one identity ``ref`` names (``find_identity``)."""
        return find_identity(
            self.where,
            ref,
            lambda number: self._identities("WHERE i.id = ?", (number,)),
            lambda name: self._identities("WHERE i.name = ?", (name,)),
        )

    @guarded
    def identities(self, counted: bool = True) -> list[Identity]:
        """Every identity; ``counted=False`` leaves ``embeddings`` 0 and reads no embedding (5x faster)."""
        return self._identities("", (), counted)

    def _identities(self, where: str, args: tuple, counted: bool = True) -> list[Identity]:
        count = "(SELECT COUNT(*) FROM embeddings e WHERE e.identity = i.id)" if counted else "0"
        query = f"SELECT i.id, i.name, i.attributes, i.created, i.anonymous, {count} FROM identities i {where}"
        return [self._identity_row(row) for row in self.db.execute(query + " ORDER BY i.id", args)]

    @guarded
    def add_anonymous(self, attributes: dict | None = None) -> tuple[int, str]:
        """A new anonymous identity named ``anonymous-N``, N one more than any such name the gallery holds, chosen
        inside the write transaction: never a name in use, even after a removal or with two nodes enrolling."""
        with self.transaction():
            highest = self.db.execute(
                "SELECT MAX(CAST(SUBSTR(name, 11) AS INTEGER)) FROM identities WHERE name GLOB 'anonymous-[0-9]*'"
            ).fetchone()[0]
            name = f"anonymous-{(highest or 0) + 1}"
            return self.add_identity(name, attributes, anonymous=True), name

    def _identity_row(self, row: tuple) -> Identity:
        number, name, attributes, created, anonymous, count = row
        where = f"identity {number}"
        parsed = self._json(attributes, f"{where} attributes")
        if not isinstance(parsed, dict):
            raise FormatError(self.path, f"{where} attributes", f"{attributes!r}, expected a JSON object")
        if not isinstance(name, str):
            raise FormatError(self.path, f"{where} name", f"{name!r}, expected text")
        if not isinstance(created, (int, float)) or not 0 <= created < 1e11 or not isinstance(anonymous, int):
            raise FormatError(self.path, where, f"created {created!r}, anonymous {anonymous!r}: bad values")
        return Identity(number, name, parsed, float(created), bool(anonymous), count)

    @guarded
    def sources(self, identity: int) -> list[tuple]:
        """Per (source, track) of an identity's embeddings: source, track, count, first start, last end."""
        rows = self.db.execute(
            "SELECT source, track, COUNT(*), MIN(t_start), MAX(t_end) FROM embeddings WHERE identity = ? "
            "GROUP BY source, track ORDER BY source, track",
            (identity,),
        ).fetchall()
        for source, track, _, start, end in rows:
            texts = isinstance(source, str) and (track is None or isinstance(track, str))
            if not texts or not all(t is None or isinstance(t, (int, float)) for t in (start, end)):
                raise FormatError(self.path, f"identity {identity} embeddings", "a source, track or time of bad type")
        return rows

    def key(self) -> str:
        """This gallery's own mark in the origins of the identities it exports (from its creation time)."""
        return hashlib.sha256(json.dumps(self.meta["created"]).encode()).hexdigest()[:16]

    @guarded
    def origins(self) -> dict[int, str]:
        """Per identity, where it came from: the origin recorded when it was imported, else this gallery's
        key and its id. An identity exported, imported and exported again keeps its first origin, so an
        import can tell who is here already however the export reached it."""
        recorded: dict[int, str] = {}
        if self._has_table("origins"):
            recorded = {who: origin for origin, who in self.db.execute("SELECT origin, identity FROM origins")}
        key = self.key()
        return {
            identity: str(recorded.get(identity, f"{key}/{identity}"))
            for (identity,) in self.db.execute("SELECT id FROM identities")
        }

    @guarded
    def update_attributes(self, identity: int, attributes: dict) -> None:
        """Merge ``attributes`` into an identity's (a key given again takes the new value)."""
        with self.transaction():
            rows = self._identities("WHERE i.id = ?", (identity,))
            if not rows:
                raise InputError(f"{self.path}: no identity {identity}")
            merged = {**rows[0].attributes, **attributes}
            self.db.execute("UPDATE identities SET attributes = ? WHERE id = ?", (json.dumps(merged), identity))
            self._bump()

    @guarded
    def rename(self, identity: int, name: str) -> None:
        _check_name(name, self.path)
        with self.transaction():
            # a name a person gave: no longer anonymous (calibrate site now counts it as a different person)
            if (
                self.db.execute("UPDATE identities SET name = ?, anonymous = 0 WHERE id = ?", (name, identity)).rowcount
                != 1
            ):
                raise InputError(f"{self.path}: no identity {identity}")
            self._bump()

    @guarded
    def remove_identity(self, identity: int) -> int:
        """Delete an identity and its embeddings; returns how many embeddings went with it."""
        with self.transaction():
            count = self.db.execute("SELECT COUNT(*) FROM embeddings WHERE identity = ?", (identity,)).fetchone()[0]
            if self.db.execute("DELETE FROM identities WHERE id = ?", (identity,)).rowcount != 1:
                raise InputError(f"{self.path}: no identity {identity}")
            self._bump()
        return int(count)

    def _has_table(self, name: str) -> bool:
        """Whether the gallery holds table ``name`` (one added later: galleries made before it lack it)."""
        return bool(
            self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        )

    @guarded
    def merge(self, source: int, into: int) -> int:
        """Move every embedding of ``source`` to ``into`` and delete ``source``, in one transaction; returns how
        many embeddings moved. Why: one person enrolled twice (an anonymous track later known, two names for one
        walker) becomes one identity without encoding anything again; its channel embeddings (silhouettes) move
        too. ``into`` keeps its name and attributes; where ``source`` was imported, its origin now names ``into``
        (a later import still finds it here)."""
        if source == into:
            raise InputError(f"{self.path}: cannot merge identity {source} into itself")
        with self.transaction():
            found = {row[0] for row in self.db.execute("SELECT id FROM identities WHERE id IN (?, ?)", (source, into))}
            for identity in (source, into):
                if identity not in found:
                    raise InputError(f"{self.path}: no identity {identity}")
            moved = self.db.execute("UPDATE embeddings SET identity = ? WHERE identity = ?", (into, source)).rowcount
            for table in ("origins", "channel_embeddings"):
                if self._has_table(table):
                    self.db.execute(f"UPDATE {table} SET identity = ? WHERE identity = ?", (into, source))
            self.db.execute("DELETE FROM identities WHERE id = ?", (source,))
            self._bump()
        return int(moved)

    # --- embeddings -------------------------------------------------------------------------------

    @guarded
    def add_embeddings(self, identity: int, vectors: np.ndarray, origins: list[Origin]) -> list[int]:
        """Append embeddings [n, D] of one identity in one transaction; returns their ids once committed."""
        vectors = new_vectors(self.path, vectors, origins, self.dim)
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

    @guarded
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
            ids = self._integers([r[0] for r in rows], "embedding ids")
            owners = self._integers([r[1] for r in rows], "embedding identities")
            yield ids, owners, self._vectors(ids, [r[2] for r in rows])
            last = int(ids[-1])

    def _integers(self, values: list, what: str) -> np.ndarray:
        return stored_integers(self.where, values, what)

    def _vectors(self, ids: np.ndarray, blobs: list) -> np.ndarray:
        return stored_vectors(self.where, ids, blobs, self.dim)

    @guarded
    def enrolled_rows(self, identity: int) -> tuple[np.ndarray, list[Origin]]:
        """An identity's embeddings [n, D] with their origins (windows included), in id order: a copy's source."""
        rows = self.db.execute(
            "SELECT id, vector, source, track, t_start, t_end, window FROM embeddings WHERE identity = ? ORDER BY id",
            (identity,),
        ).fetchall()
        ids = self._integers([r[0] for r in rows], "embedding ids")
        vectors = self._vectors(ids, [r[1] for r in rows]) if rows else np.zeros((0, self.dim), np.float32)
        f = int(self.meta["f"])
        origins = [
            Origin(r[2], r[3], r[4], r[5], None if r[6] is None else _window_array(self._window(r[0], r[6], f), f))
            for r in rows
        ]
        return vectors, origins

    @guarded
    def ids_and_owners(self) -> tuple[np.ndarray, np.ndarray]:
        """Every embedding id (sorted) and its identity, without the vectors."""
        rows = self.db.execute("SELECT id, identity FROM embeddings ORDER BY id").fetchall()
        return self._integers([r[0] for r in rows], "embedding ids"), self._integers(
            [r[1] for r in rows], "embedding identities"
        )

    @guarded
    def track_means(self, identity: int | None = None) -> TrackMeans:
        """The mean of every enrolled track (or of one identity's), reading every embedding of them."""
        where, args = ("WHERE identity = ?", (identity,)) if identity is not None else ("", ())
        cursor = self.db.execute(
            f"SELECT id, identity, source, track, vector FROM embeddings {where} ORDER BY id", args
        )
        return group_track_means(self._chunks(iter(lambda: cursor.fetchmany(65536), []), self._vectors), self.dim)

    def _chunks(self, batches: Iterable[list], vectors: Callable) -> Iterator[tuple]:
        """Batches of rows (id, identity, source, track, vector) checked, as ``group_track_means`` takes them."""
        for chunk in batches:
            ids = self._integers([r[0] for r in chunk], "embedding ids")
            who = self._integers([r[1] for r in chunk], "embedding identities")
            yield ids, who, [r[1:4] for r in chunk], vectors(ids, [r[4] for r in chunk])

    @guarded
    def track_summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per enrolled track, by label: its label, identity and count (see ``TrackMeans``), reading no vector."""
        rows = self.db.execute(
            "SELECT MAX(id), identity, COUNT(*) FROM embeddings GROUP BY identity, source, track ORDER BY 1"
        ).fetchall()
        labels = np.fromiter((r[0] for r in rows), np.int64, len(rows))  # ids and counts: integers by SQLite's rules
        counts = np.fromiter((r[2] for r in rows), np.int64, len(rows))
        return labels, self._integers([r[1] for r in rows], "embedding identities"), counts

    # --- other channels (silhouettes): the dialect hooks of ChannelTables ----------------------------------

    def _has_channel_table(self) -> bool:
        return self._has_table("channel_embeddings")

    def _make_channel_table(self) -> None:
        self.db.execute(CHANNEL_TABLE)
        self.db.execute(CHANNEL_INDEX)

    def _insert_channel_row(self, row: tuple) -> int:
        query = (
            "INSERT INTO channel_embeddings (channel, identity, vector, source, track, t_start, t_end, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        return int(self.db.execute(query, row).lastrowid)

    def _channel_written(self, identity: int | None) -> None:
        self._bump()

    @guarded
    def rebind(self, model: dict, encode) -> int:
        """Re-embed every stored window with another model (``encode``: windows -> embeddings) and bind to it.

        One transaction: either every embedding is replaced and the gallery names the new model, or
        nothing changes. Embeddings stored without their window cannot be re-embedded: InputError. Other
        channels are bound to their own models and stay as they are."""
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
                windows = np.frombuffer(b"".join(self._window(*r, f) for r in part), np.float32)
                vectors = np.asarray(encode(windows.reshape(len(part), f, 20, 3)), np.float32)
                self.db.executemany(
                    "UPDATE embeddings SET vector = ? WHERE id = ?",
                    [(v.tobytes(), r[0]) for v, r in zip(vectors, part, strict=True)],
                )
            binding = model_binding(model)
            self.db.executemany(
                "UPDATE meta SET value = ? WHERE key = ?", [(json.dumps(v), k) for k, v in binding.items()]
            )
            self._bump()
        self.meta = self._read_meta()
        self.dim = dim
        return len(rows)

    def _window(self, number: int, blob, f: int) -> bytes:
        size = f * 20 * 3 * 4
        if not isinstance(blob, bytes) or len(blob) != size:
            raise FormatError(self.path, f"embedding {number}", f"stored window is not {f} frames of 20 joints")
        return blob

    @guarded
    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        self.db.close()


def _window_array(blob: bytes, f: int) -> np.ndarray:
    return np.frombuffer(blob, np.float32).reshape(f, 20, 3)


def _check_name(name: str, path: Path) -> None:
    """A name a person can be told and found by: some visible text."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{path}: an identity's name must be some text, got {name!r}")


def _sqlite(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)


def _create(path: Path, model: dict | None) -> None:
    """Make an empty gallery aside and rename it into place: a crash leaves no half-made gallery."""
    if model is None:
        raise InputError("creating a gallery needs the model card of the encoder that will fill it")
    meta = {"schema_version": SCHEMA_VERSION, **model_binding(model), "created": time.time(), "generation": 0}
    if not path.parent.is_dir():
        raise InputError(f"{path}: cannot create a gallery there, folder {path.parent} does not exist")
    partial = atomic.partial_path(path)
    os.close(atomic.open_private(partial))  # empty and 0600: SQLite keeps the mode, and gives it to -wal and -shm
    db = sqlite3.connect(partial)
    try:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        db.commit()
    finally:
        db.close()
    atomic.commit(partial, path)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time, all or nothing; nested ones join
    the outermost."""

    def __init__(self, store: GalleryStore) -> None:
        self.store = store
        self.db = store.db
        self.depth = 0

    def __enter__(self) -> _Transaction:
        if not self.db.in_transaction:
            self._run("BEGIN IMMEDIATE")
            self.depth = 1
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if self.depth:
            self._run("ROLLBACK" if kind else "COMMIT")

    def _run(self, statement: str) -> None:
        try:
            self.db.execute(statement)
        except sqlite3.Error as err:
            raise self.store.failure(err) from None
