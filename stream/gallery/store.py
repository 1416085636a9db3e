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
import functools
import hashlib
import inspect
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, GaitwatchError, InputError
from stream.gallery.rows import Rows

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
CHANNEL_PREFIX = "channel."  # meta key of a channel's model binding: channel.<name>
CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
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
META_TYPES = {
    "schema_version": int,
    "model_sha256": str,
    "model_method": str,
    "model_name": str,
    "dim": int,
    "metric": str,
    "f": int,
    "created": float,
    "generation": int,
}
BINDING_KEYS = ("model_sha256", "model_method", "model_name", "dim", "metric", "f")  # a model binding (model_binding)


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


@dataclass(frozen=True)
class TrackMeans:
    """Per enrolled track (the embeddings sharing identity, source and track), ordered by label.

    The label is the track's newest embedding id: ids are never reused and only grow, so a label names one
    track, and label and count together name what it held (embeddings are added, never taken from a track
    but with its whole identity; a merge moves whole tracks to another identity, so owners are compared too)."""

    labels: np.ndarray  # int64 [T]
    owners: np.ndarray  # int64 [T], the identity
    counts: np.ndarray  # int64 [T], its embeddings
    means: np.ndarray  # float32 [T, D], their mean (summed in float64)


def guarded(errors: Callable[[], tuple[type[BaseException], ...]], prepare: str | None = None):
    """A decorator: the ``errors()`` raised inside a store method (a generator's too, while it is iterated) become
    the store's one clear error (``self.failure``); ``prepare`` names a method called first (a reconnect)."""

    def decorate(method):
        if inspect.isgeneratorfunction(method):

            @functools.wraps(method)
            def generator(self, *args, **kwargs):
                if prepare is not None:
                    getattr(self, prepare)()
                try:
                    yield from method(self, *args, **kwargs)
                except errors() as err:
                    raise self.failure(err) from None

            return generator

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            if prepare is not None:
                getattr(self, prepare)()
            try:
                return method(self, *args, **kwargs)
            except errors() as err:
                raise self.failure(err) from None

        return wrapper

    return decorate


_guarded = guarded(lambda: (sqlite3.Error, UnicodeDecodeError))


def model_binding(card: dict) -> dict:
    """What a gallery records of the model that fills it (its meta), from the model's card."""
    return {
        "model_sha256": card["file"]["sha256"],
        "model_method": card["method"],
        "model_name": card["file"]["name"],
        "dim": card["embedding_dim"],
        "metric": card["metric"],
        "f": card["f"],
    }


def check_meta_value(where: str, key: str, value: object, place: str | None = None) -> None:
    """FormatError naming ``key`` (or ``place``) unless ``value`` has the type META_TYPES gives it (a float may be
    an int)."""
    kind = META_TYPES[key]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number if kind is float else isinstance(value, kind) and not isinstance(value, bool)):
        raise FormatError(where, place or f"meta {key}", f"{value!r}, expected a {kind.__name__}")


def parse_json(where: str, value, what: str):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise FormatError(where, what, f"{value!r} is not JSON") from None


def check_model(where: str, meta: dict, card: dict) -> None:
    """Refuse embeddings or queries from any model other than the one the gallery at ``where`` was filled with."""
    sha = card["file"]["sha256"]
    if sha != meta["model_sha256"]:
        from engines.runtime.load import shipped_with_sha256  # only on this error path: no model loading

        shipped = shipped_with_sha256(meta["model_sha256"])  # a model gaitwatch shipped: its path, not a bare name
        raise InputError(
            f"{where}: filled by {meta['model_name']} (sha256 {meta['model_sha256'][:12]}...), "
            f"not by {card['file']['name']} (sha256 {sha[:12]}...); name its model with --model "
            f"{shipped or meta['model_name']}, or re-embed the gallery with "
            f"'gaitwatch gallery reembed {where} --model {card['file']['name']}'"
        )


def check_channel(where: str, channel: object) -> str:
    """``channel`` if it can name a channel (lower-case letters, digits, ``_``; a letter first); else InputError."""
    if not isinstance(channel, str) or not CHANNEL_NAME.fullmatch(channel):
        raise InputError(f"{where}: {channel!r} is not a channel name (lower-case letters, digits and _)")
    return channel


def channel_binding(where: str, channel: str, value: object) -> dict:
    """A stored channel binding (meta ``channel.<name>``, parsed) checked as the gallery's own binding is."""
    place = f"meta {CHANNEL_PREFIX}{channel}"
    if not isinstance(value, dict):
        raise FormatError(where, place, f"{value!r}, expected a model binding")
    for key in BINDING_KEYS:
        check_meta_value(where, key, value.get(key), f"{place} {key}")
    if value["dim"] < 1 or value["f"] < 1:
        raise FormatError(where, place, f"dim {value['dim']}, f {value['f']}: expected positive counts")
    return value


def check_channel_model(where: str, channel: str, binding: dict | None, card: dict) -> None:
    """Refuse ``channel`` embeddings from any model but the one the channel is bound to (None: not bound yet)."""
    sha = card["file"]["sha256"]
    if binding is not None and sha != binding["model_sha256"]:
        raise InputError(
            f"{where}: its {channel} channel was filled by {binding['model_name']} (sha256 "
            f"{binding['model_sha256'][:12]}...), not by {card['file']['name']} (sha256 {sha[:12]}...); "
            f"enroll {channel} embeddings with {binding['model_name']} (a channel keeps the model that first filled it)"
        )


def group_track_means(chunks: Iterable[tuple[np.ndarray, np.ndarray, list, np.ndarray]], dim: int) -> TrackMeans:
    """``TrackMeans`` of embeddings read in id order, in chunks of (ids, identities, their track keys
    (identity, source, track), vectors [n, dim]): summed per track in float64, the label its newest id."""
    keys: dict[tuple, int] = {}
    sums, counts, labels, owners = Rows(np.float64, dim), Rows(np.int64), Rows(np.int64), Rows(np.int64)
    for ids, who, track_keys, vectors in chunks:
        rows = np.fromiter((keys.setdefault(key, len(keys)) for key in track_keys), np.int64, len(track_keys))
        for held in (sums, counts, labels, owners):
            held.grow(len(keys))
        order = np.argsort(rows, kind="stable")  # each track's embeddings together, in id order
        rows, ids, who = rows[order], ids[order], who[order]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        ends = np.r_[starts[1:], len(rows)]
        tracks = rows[starts]
        sums.view()[tracks] += np.add.reduceat(vectors[order].astype(np.float64), starts, axis=0)
        counts.view()[tracks] += ends - starts
        labels.view()[tracks] = ids[ends - 1]
        owners.view()[tracks] = who[starts]
    total = sums.view()
    total /= np.maximum(counts.view(), 1)[:, None]
    order = np.argsort(labels.view())
    means = np.empty(total.shape, np.float32)
    for start in range(0, len(order), 65536):  # block by block: no float64 copy of every mean at once
        means[start : start + 65536] = total[order[start : start + 65536]]
    return TrackMeans(labels.view()[order], owners.view()[order], counts.view()[order], means)


def find_identity(where: str, ref: int | str, by_id, by_name) -> Identity:
    """The one identity ``ref`` names; InputError when none, or when it could name two.

    An int or ``id:N`` is an id, ``name:TEXT`` a name. Other text is a name, and also an id where it is
    written as one ("5", not "05"): where it names one identity and is the id of another, it is refused
    with how to say which, so a person named "02" (a CMU subject) is never taken for identity 2.
    ``by_id(n)`` and ``by_name(text)``: the store's identities with that id, that name."""
    text = str(ref)
    if isinstance(ref, int) or text.startswith("id:"):
        number = text.removeprefix("id:")
        if not _is_id(number):
            raise InputError(f"{where}: {text!r} is not an identity id (id:N, N a whole number)")
        return _one(where, by_id(int(number)), text)
    name = text.removeprefix("name:")
    named = by_name(name)
    if len(named) > 1:
        ids = ", ".join(f"id:{i.id}" for i in named)
        raise InputError(f"{where}: {len(named)} identities are named {name!r} ({ids}); pick one by its id")
    numbered = by_id(int(text)) if _is_id(text) else []
    if named and numbered and named[0].id != numbered[0].id:
        raise InputError(
            f"{where}: {text!r} is the name of identity {named[0].id} and the id of identity "
            f"{numbered[0].id} ({numbered[0].name!r}); say name:{text} or id:{text}"
        )
    return _one(where, named or numbered, text)


def _one(where: str, rows: list[Identity], ref: str) -> Identity:
    if not rows:
        raise InputError(f"{where}: no identity {ref!r}")
    return rows[0]


def new_vectors(where: object, vectors: np.ndarray, origins: list, dim: int) -> np.ndarray:
    """Embeddings about to be enrolled as float32 [n, dim], one origin each, every value finite; else one clear
    error naming the gallery: what both stores check before a write."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise InputError(f"{where}: embeddings of shape {list(vectors.shape)}, expected [n, {dim}]")
    if len(origins) != len(vectors):
        raise InputError(f"{len(vectors)} embeddings but {len(origins)} origins")
    if not np.isfinite(vectors).all():
        raise InputError(f"{where}: refusing embeddings with NaN or infinite values")
    return vectors


def stored_vectors(where: str, ids: np.ndarray, blobs: list, dim: int, what: str = "embedding") -> np.ndarray:
    """Stored vectors as [n, D] float32; FormatError naming the first of the wrong length or not finite (``what``
    names the row: "embedding", "silhouette embedding")."""
    size = 4 * dim
    for number, blob in zip(ids.tolist(), blobs, strict=True):
        if not isinstance(blob, bytes) or len(blob) != size:
            got = f"{len(blob)} bytes" if isinstance(blob, (bytes, str)) else type(blob).__name__
            raise FormatError(where, f"{what} {number}", f"vector of {got}, expected {size} bytes")
    vectors = np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), dim)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise FormatError(where, f"{what} {ids[~finite][0]}", "vector holds NaN or infinite values")
    return vectors


class GalleryStore:
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

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
    def identity(self, ref: int | str) -> Identity:
        """The one identity ``ref`` names (``find_identity``)."""
        return find_identity(
            self.where,
            ref,
            lambda number: self._identities("WHERE i.id = ?", (number,)),
            lambda name: self._identities("WHERE i.name = ?", (name,)),
        )

    @_guarded
    def identities(self, counted: bool = True) -> list[Identity]:
        """Every identity; ``counted=False`` leaves ``embeddings`` 0 and reads no embedding (5x faster)."""
        return self._identities("", (), counted)

    def _identities(self, where: str, args: tuple, counted: bool = True) -> list[Identity]:
        count = "(SELECT COUNT(*) FROM embeddings e WHERE e.identity = i.id)" if counted else "0"
        query = f"SELECT i.id, i.name, i.attributes, i.created, i.anonymous, {count} FROM identities i {where}"
        return [self._identity_row(row) for row in self.db.execute(query + " ORDER BY i.id", args)]

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
    def update_attributes(self, identity: int, attributes: dict) -> None:
        """Merge ``attributes`` into an identity's (a key given again takes the new value)."""
        with self.transaction():
            rows = self._identities("WHERE i.id = ?", (identity,))
            if not rows:
                raise InputError(f"{self.path}: no identity {identity}")
            merged = {**rows[0].attributes, **attributes}
            self.db.execute("UPDATE identities SET attributes = ? WHERE id = ?", (json.dumps(merged), identity))
            self._bump()

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
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

    @_guarded
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
        if not all(isinstance(v, int) for v in values):
            raise FormatError(self.path, what, "a value that is not an integer")
        return np.asarray(values, np.int64).reshape(len(values))

    def _vectors(self, ids: np.ndarray, blobs: list) -> np.ndarray:
        return stored_vectors(self.where, ids, blobs, self.dim)

    @_guarded
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

    @_guarded
    def ids_and_owners(self) -> tuple[np.ndarray, np.ndarray]:
        """Every embedding id (sorted) and its identity, without the vectors."""
        rows = self.db.execute("SELECT id, identity FROM embeddings ORDER BY id").fetchall()
        return self._integers([r[0] for r in rows], "embedding ids"), self._integers(
            [r[1] for r in rows], "embedding identities"
        )

    @_guarded
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

    @_guarded
    def track_summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per enrolled track, by label: its label, identity and count (see ``TrackMeans``), reading no vector."""
        rows = self.db.execute(
            "SELECT MAX(id), identity, COUNT(*) FROM embeddings GROUP BY identity, source, track ORDER BY 1"
        ).fetchall()
        labels = np.fromiter((r[0] for r in rows), np.int64, len(rows))  # ids and counts: integers by SQLite's rules
        counts = np.fromiter((r[2] for r in rows), np.int64, len(rows))
        return labels, self._integers([r[1] for r in rows], "embedding identities"), counts

    # --- other channels (silhouettes), each bound to its own model ---------------------------------------

    @_guarded
    def channels(self) -> dict[str, dict]:
        """Every bound channel's model binding (read now: another process may have bound one since open)."""
        rows = self.db.execute("SELECT key, value FROM meta WHERE key LIKE ?", (CHANNEL_PREFIX + "%",)).fetchall()
        return {
            key[len(CHANNEL_PREFIX) :]: channel_binding(self.where, key[len(CHANNEL_PREFIX) :], self._json(value, key))
            for key, value in rows
        }

    @_guarded
    def channel_model(self, channel: str) -> dict | None:
        """The model binding (``model_binding``) of ``channel``; None while nothing was enrolled in it."""
        check_channel(self.where, channel)
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (CHANNEL_PREFIX + channel,)).fetchone()
        return (
            None if row is None else channel_binding(self.where, channel, self._json(row[0], CHANNEL_PREFIX + channel))
        )

    def check_channel_model(self, channel: str, card: dict) -> None:
        """Refuse ``channel`` embeddings of any model but the one the channel is bound to."""
        check_channel_model(self.where, channel, self.channel_model(channel), card)

    @_guarded
    def bind_channel(self, channel: str, card: dict) -> None:
        """Bind ``channel`` to ``card``'s model (a migration's copy of a binding); refused where bound to another."""
        with self.transaction():
            if self._bind(channel, card):
                self._bump()

    def _bind(self, channel: str, card: dict) -> bool:
        """Inside a write: bind ``channel`` to ``card`` unless bound (then check it is the same model); whether it
        was bound now. The table is made here for galleries made before it."""
        binding = self.channel_model(channel)
        check_channel_model(self.where, channel, binding, card)
        if not self._has_table("channel_embeddings"):
            self.db.execute(CHANNEL_TABLE)
            self.db.execute(CHANNEL_INDEX)
        if binding is None:
            self.db.execute(
                "INSERT INTO meta VALUES (?, ?)", (CHANNEL_PREFIX + channel, json.dumps(model_binding(card)))
            )
        return binding is None

    @_guarded
    def add_channel_embeddings(
        self, channel: str, identity: int, vectors: np.ndarray, origins: list[Origin], card: dict
    ) -> list[int]:
        """Append ``channel`` embeddings [n, D] of one identity in one transaction, binding the channel to
        ``card``'s model on its first enroll (in the same transaction); their ids once committed. Origins' windows
        are not kept (a channel is not re-embedded)."""
        check_channel(self.where, channel)
        vectors = new_vectors(self.where, vectors, origins, int(card["embedding_dim"]))
        now = time.time()
        with self.transaction():
            self._bind(channel, card)
            if self.db.execute("SELECT 1 FROM identities WHERE id = ?", (identity,)).fetchone() is None:
                raise InputError(f"{self.where}: no identity {identity}")
            ids = [
                int(
                    self.db.execute(
                        "INSERT INTO channel_embeddings (channel, identity, vector, source, track, t_start, t_end, "
                        "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (channel, identity, v.tobytes(), o.source, o.track, o.t_start, o.t_end, now),
                    ).lastrowid
                )
                for v, o in zip(vectors, origins, strict=True)
            ]
            self._bump()
        return ids

    def _channel_rows(self, channel: str, columns: str, identity: int | None, tail: str = "ORDER BY id") -> list:
        """Rows of ``channel`` (of one identity where given); none where the gallery has no such table."""
        check_channel(self.where, channel)
        if not self._has_table("channel_embeddings"):
            return []
        where, args = ("AND identity = ?", (channel, identity)) if identity is not None else ("", (channel,))
        return self.db.execute(
            f"SELECT {columns} FROM channel_embeddings WHERE channel = ? {where} {tail}", args
        ).fetchall()

    def _channel_vectors(self, channel: str, binding: dict | None) -> Callable[[np.ndarray, list], np.ndarray]:
        dim = binding["dim"] if binding is not None else 0
        return lambda ids, blobs: stored_vectors(self.where, ids, blobs, dim, f"{channel} embedding")

    @_guarded
    def channel_rows(self, channel: str, identity: int) -> tuple[np.ndarray, list[Origin]]:
        """An identity's ``channel`` embeddings [n, D] with their origins, in id order: a copy's source."""
        binding = self.channel_model(channel)
        rows = self._channel_rows(channel, "id, vector, source, track, t_start, t_end", identity)
        ids = self._integers([r[0] for r in rows], f"{channel} embedding ids")
        vectors = self._channel_vectors(channel, binding)(ids, [r[1] for r in rows])
        return vectors, [Origin(*r[2:6]) for r in rows]

    @_guarded
    def channel_track_means(self, channel: str, identity: int | None = None) -> TrackMeans:
        """The mean of every track enrolled in ``channel`` (or of one identity's), grouped as ``track_means``."""
        binding = self.channel_model(channel)
        dim = binding["dim"] if binding is not None else 0
        rows = self._channel_rows(channel, "id, identity, source, track, vector", identity)
        return group_track_means(self._chunks([rows] if rows else [], self._channel_vectors(channel, binding)), dim)

    @_guarded
    def channel_track_summary(self, channel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per track of ``channel``, by label: its label, identity and count, reading no vector."""
        rows = self._channel_rows(
            channel, "MAX(id), identity, COUNT(*)", None, "GROUP BY identity, source, track ORDER BY 1"
        )
        columns = [self._integers([r[i] for r in rows], f"{channel} tracks") for i in range(3)]
        return columns[0], columns[1], columns[2]

    @_guarded
    def channel_counts(self, channel: str) -> dict[int, int]:
        """Per identity with ``channel`` embeddings, how many."""
        rows = self._channel_rows(channel, "identity, COUNT(*)", None, "GROUP BY identity")
        return {int(who): int(n) for who, n in rows}

    @_guarded
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

    @_guarded
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


def _is_id(text: str) -> bool:
    """Written as an id: digits without a leading zero, within SQLite's integers (checked before any conversion:
    Python refuses to convert over 4,300 digits, SQLite to bind over 2**63 - 1)."""
    return text.isascii() and text.isdigit() and len(text) <= 19 and text == str(int(text)) and int(text) < 2**63


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
