"""The durable half of a site's shared gallery: identities and embeddings in PostgreSQL, for many nodes at once.

The same contract and the same methods as the SQLite ``GalleryStore`` (the gallery code uses either): bound to
the model that filled it, every write committed before it returns and bumping ``generation`` in the same
transaction, writers taking turns (each write transaction locks the generation row first, as SQLite's
``BEGIN IMMEDIATE`` does), so an anonymous name or an import is chosen under that lock by one node at a time.

What differs, and why:
- Each committed write sends a notification (``CHANNEL``, delivered at commit, in commit order) naming the
  generation it made, the identity it touched and the kind of change ("enroll", "channel", "merge", ...): nodes
  keep their in-memory index replica current from it (``stream.gallery.follow``) and never query the database to
  decide.
- The mean of every enrolled track is kept in ``tracks`` (sum and count, updated in the enroll's
  transaction), so a node's start reads one row per track, not every embedding: 100,000 people load in
  seconds.
- The password never travels on the command line: a URL holding one is refused; libpq reads ``PGPASSWORD``
  or a password file (``~/.pgpass``, ``PGPASSFILE``).
- The node's saved index files (the HNSW graph) live in a private local folder, keyed by the database
  (``replica_folder``): the server holds no file of ours.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
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
    guarded,
    model_binding,
    new_vectors,
    parse_json,
    stored_vectors,
)
from stream.gallery.store import SCHEMA_VERSION, _check_name

CHANNEL = "gaitwatch_gallery"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    created DOUBLE PRECISION NOT NULL,
    anonymous BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE embeddings (
    id BIGSERIAL PRIMARY KEY,
    identity BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    vector BYTEA NOT NULL,
    source TEXT NOT NULL,
    track TEXT,
    t_start DOUBLE PRECISION,
    t_end DOUBLE PRECISION,
    "window" BYTEA,
    created DOUBLE PRECISION NOT NULL
);
CREATE INDEX embeddings_by_identity ON embeddings(identity);
CREATE TABLE origins (origin TEXT PRIMARY KEY, identity BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE);
CREATE TABLE tracks (
    identity BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    track TEXT,
    label BIGINT NOT NULL,
    count BIGINT NOT NULL,
    total BYTEA NOT NULL,
    UNIQUE NULLS NOT DISTINCT (identity, source, track)
);
CREATE INDEX tracks_by_label ON tracks(label);
"""
# Another identity channel's embeddings (silhouettes; see the SQLite store): made by ``create`` and, for galleries
# made before it, by a channel's first enroll. No kept sums as ``tracks``: these galleries are small, read whole.
CHANNEL_SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_embeddings (
    id BIGSERIAL PRIMARY KEY,
    channel TEXT NOT NULL,
    identity BIGINT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    vector BYTEA NOT NULL,
    source TEXT NOT NULL,
    track TEXT,
    t_start DOUBLE PRECISION,
    t_end DOUBLE PRECISION,
    created DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS channel_embeddings_by_identity ON channel_embeddings(channel, identity);
"""
MAX_VECTOR_CHUNK = 20_000


class DatabaseUnreachable(InputError):
    """The gallery's database cannot be reached now (down, restarting, network): worth trying again later."""


def is_url(text: str | Path) -> bool:
    return str(text).startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL as it may be shown: user, host, port and database, never a password."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def check_url(url: str) -> None:
    """InputError for a URL that is not one, or holds a password (it would show in ``ps`` and shell history)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except ProgrammingError as err:
        raise InputError(f"the gallery URL is not one PostgreSQL reads ({str(err).splitlines()[0]})") from None
    if parts.get("password"):
        raise InputError(
            "the gallery URL holds a password; give it in PGPASSWORD or a password file (~/.pgpass, PGPASSFILE) "
            "instead, never on the command line"
        )


def replica_folder() -> Path:
    """Where a node keeps its saved index files of PostgreSQL galleries (private): $GAITWATCH_REPLICA_DIR, or
    ~/.cache/gaitwatch/replicas."""
    root = os.environ.get("GAITWATCH_REPLICA_DIR") or Path.home() / ".cache" / "gaitwatch" / "replicas"
    return atomic.private_dir(Path(root))


class PostgresStore(ChannelTables):
    """Identities and embeddings of one model, durable in a PostgreSQL database shared by a site's nodes."""

    def __init__(self, url: str, model: dict | None = None, create: bool = False, writable: bool | None = None) -> None:
        check_url(url)
        self.url = url
        self.where = redacted(url)
        self.readonly = writable is False
        self.written: int | None = None
        self._closed = False
        self.db = self._connect()
        try:
            if create:
                self._create(model)
            self.meta = self._read_meta()
        except BaseException:
            self.db.close()
            raise
        self.dim = int(self.meta["dim"])
        self.path = replica_folder() / f"{hashlib.sha256(self.where.encode()).hexdigest()[:12]}-{self.key()}"

    def __str__(self) -> str:
        return self.where

    def _connect(self):
        import psycopg

        try:
            db = psycopg.connect(self.url, autocommit=True, connect_timeout=10, application_name="gaitwatch")
        except psycopg.Error as err:
            raise self.failure(err) from None
        if self.readonly:
            db.execute("SET default_transaction_read_only = on")
        return db

    PARAM = "%s"

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        """What ``guarded`` turns into ``failure``: the driver's errors, and stored text that is not UTF-8."""
        import psycopg

        return (psycopg.Error, UnicodeDecodeError)

    def prepare(self) -> None:
        """Before every guarded call: a broken connection is replaced first (``reconnect``)."""
        self.reconnect()

    def reconnect(self) -> None:
        """A new connection where the old one broke (a server restart): every call asks first, so a node's
        enrollments work again as soon as the database is back. Not outside a transaction's middle: a broken
        connection ended that transaction already."""
        if (self.db.broken or self.db.closed) and not self._closed:
            self.db = self._connect()

    def failure(self, err: BaseException) -> GaitwatchError:
        """A driver error as one line naming the gallery: unreachable, read-only, or not a gallery."""
        import psycopg

        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, UnicodeDecodeError):
            return FormatError(self.where, "", f"damaged: stored text that is not UTF-8 ({err})")
        if isinstance(err, psycopg.errors.ReadOnlySqlTransaction | psycopg.errors.InsufficientPrivilege):
            return self.read_only_error()
        if isinstance(err, psycopg.OperationalError | psycopg.InterfaceError):
            reason = f"cannot reach the gallery's database ({text}); nothing was changed"
            return DatabaseUnreachable(f"{self.where}: {reason}")
        return FormatError(self.where, "", f"not usable as a gallery (PostgreSQL: {text})")

    def read_only_error(self) -> InputError:
        return InputError(f"{self.where}: the gallery is read-only here (opened for reading, or no privilege)")

    # --- schema and meta --------------------------------------------------------------------------

    @guarded
    def _create(self, model: dict | None) -> None:
        if model is None:
            raise InputError("creating a gallery needs the model card of the encoder that will fill it")
        meta = {"schema_version": SCHEMA_VERSION, **model_binding(model), "created": time.time(), "generation": 0}
        with self.db.transaction():
            if self.db.execute("SELECT to_regclass('meta')").fetchone()[0] is not None:
                raise InputError(f"{self.where}: already holds a gallery; open it instead of creating it")
            self.db.execute(SCHEMA + CHANNEL_SCHEMA)
            with self.db.cursor() as cursor:
                cursor.executemany("INSERT INTO meta VALUES (%s, %s)", [(k, json.dumps(v)) for k, v in meta.items()])

    @guarded
    def _read_meta(self) -> dict:
        if self.db.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
            raise InputError(f"{self.where}: no gallery here (make one with: gaitwatch gallery create URL --model M)")
        meta = {key: self._json(value, f"meta {key}") for key, value in self.db.execute("SELECT key, value FROM meta")}
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise FormatError(self.where, "schema_version", f"{meta.get('schema_version')}, expected {SCHEMA_VERSION}")
        for key in META_TYPES:
            check_meta_value(self.where, key, meta.get(key))
        return meta

    def _json(self, value, where: str):
        return parse_json(self.where, value, where)

    def key(self) -> str:
        """This gallery's own mark in the origins of the identities it exports (from its creation time)."""
        return hashlib.sha256(json.dumps(self.meta["created"]).encode()).hexdigest()[:16]

    # --- transactions -------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing, one writer at a time (the generation row locked first); nested ones join the outer."""
        if self.readonly:
            raise self.read_only_error()
        import psycopg

        try:
            with self.db.transaction():
                self.db.execute("SELECT value FROM meta WHERE key = 'generation' FOR UPDATE")
                yield
        except psycopg.Error as err:
            raise self.failure(err) from None

    def _bump(self, identity: int | None, change: str) -> None:
        """Count this write and tell every node (delivered when the transaction commits)."""
        row = self.db.execute(
            "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'generation' RETURNING value"
        ).fetchone()
        self.written = int(row[0])
        message = json.dumps({"generation": self.written, "identity": identity, "change": change})
        self.db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Several reads that see one committed state (a repeatable-read transaction)."""
        if self.db.info.transaction_status != 0:  # already inside one: join it
            yield
            return
        import psycopg

        try:
            with self.db.transaction():
                self.db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield
        except psycopg.Error as err:
            raise self.failure(err) from None

    @guarded
    def generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def check_model(self, card: dict) -> None:
        check_model(self.where, self.meta, card)

    # --- identities -----------------------------------------------------------------------------

    @guarded
    def add_identity(
        self, name: str, attributes: dict | None = None, anonymous: bool = False, origin: str | None = None
    ) -> int:
        _check_name(name, self.where)
        with self.transaction():
            identity = self.db.execute(
                "INSERT INTO identities (name, attributes, created, anonymous) VALUES (%s, %s, %s, %s) RETURNING id",
                (name, json.dumps(attributes or {}), time.time(), anonymous),
            ).fetchone()[0]
            if origin is not None:
                self.db.execute("INSERT INTO origins VALUES (%s, %s)", (origin, identity))
            self._bump(identity, "add")
        return int(identity)

    @guarded
    def add_anonymous(self, attributes: dict | None = None) -> tuple[int, str]:
        """A new ``anonymous-N`` identity, N chosen under the write lock: never a name in use, whichever node asks."""
        with self.transaction():
            highest = self.db.execute(
                "SELECT MAX(CAST(SUBSTRING(name FROM 11) AS BIGINT)) FROM identities WHERE name ~ '^anonymous-[0-9]+$'"
            ).fetchone()[0]
            name = f"anonymous-{(highest or 0) + 1}"
            return self.add_identity(name, attributes, anonymous=True), name

    @guarded
    def identity(self, ref: int | str) -> Identity:
        """The one identity ``ref`` names (``find_identity``: an id, ``id:N``, ``name:TEXT`` or a name)."""
        return find_identity(
            self.where,
            ref,
            lambda number: self._identities("WHERE i.id = %s", (number,)),
            lambda name: self._identities("WHERE i.name = %s", (name,)),
        )

    @guarded
    def identity_or_none(self, identity: int) -> Identity | None:
        """Identity ``identity``, or None where there is none (removed)."""
        rows = self._identities("WHERE i.id = %s", (identity,), counted=False)
        return rows[0] if rows else None

    @guarded
    def identities(self, counted: bool = True) -> list[Identity]:
        return self._identities("", (), counted)

    def _identities(self, where: str, args: tuple, counted: bool = True) -> list[Identity]:
        count = "(SELECT COALESCE(SUM(t.count), 0) FROM tracks t WHERE t.identity = i.id)" if counted else "0"
        query = f"SELECT i.id, i.name, i.attributes, i.created, i.anonymous, {count} FROM identities i {where}"
        rows = self.db.execute(query + " ORDER BY i.id", args).fetchall()
        return [
            Identity(int(n), name, self._json(attrs, f"identity {n} attributes"), float(c), bool(a), int(k))
            for n, name, attrs, c, a, k in rows
        ]

    @guarded
    def sources(self, identity: int) -> list[tuple]:
        return self.db.execute(
            "SELECT source, track, COUNT(*), MIN(t_start), MAX(t_end) FROM embeddings WHERE identity = %s "
            "GROUP BY source, track ORDER BY source, track",
            (identity,),
        ).fetchall()

    @guarded
    def origins(self) -> dict[int, str]:
        recorded = dict((who, origin) for origin, who in self.db.execute("SELECT origin, identity FROM origins"))
        key = self.key()
        return {
            int(identity): str(recorded.get(identity, f"{key}/{identity}"))
            for (identity,) in self.db.execute("SELECT id FROM identities")
        }

    @guarded
    def update_attributes(self, identity: int, attributes: dict) -> None:
        with self.transaction():
            rows = self._identities("WHERE i.id = %s", (identity,), counted=False)
            if not rows:
                raise InputError(f"{self.where}: no identity {identity}")
            merged = {**rows[0].attributes, **attributes}
            self.db.execute("UPDATE identities SET attributes = %s WHERE id = %s", (json.dumps(merged), identity))
            self._bump(identity, "attributes")

    @guarded
    def rename(self, identity: int, name: str) -> None:
        _check_name(name, self.where)
        with self.transaction():
            # a name a person gave: no longer anonymous (as in the SQLite store)
            renamed = self.db.execute(
                "UPDATE identities SET name = %s, anonymous = false WHERE id = %s", (name, identity)
            )
            if renamed.rowcount != 1:
                raise InputError(f"{self.where}: no identity {identity}")
            self._bump(identity, "rename")

    @guarded
    def remove_identity(self, identity: int) -> int:
        with self.transaction():
            count = self.db.execute("SELECT COUNT(*) FROM embeddings WHERE identity = %s", (identity,)).fetchone()[0]
            if self.db.execute("DELETE FROM identities WHERE id = %s", (identity,)).rowcount != 1:
                raise InputError(f"{self.where}: no identity {identity}")
            self._bump(identity, "remove")
        return int(count)

    @guarded
    def merge(self, source: int, into: int) -> int:
        """As SQLite's ``merge``: ``source``'s embeddings, kept track sums, origins and channel embeddings go to
        ``into``, ``source`` is deleted, in one transaction. Two generations are counted and notified, ``source``
        (gone) then ``into`` (grown), so each node's replica takes the merge as two changes of one identity each."""
        if source == into:
            raise InputError(f"{self.where}: cannot merge identity {source} into itself")
        with self.transaction():
            rows = self.db.execute("SELECT id FROM identities WHERE id IN (%s, %s)", (source, into)).fetchall()
            found = {int(row[0]) for row in rows}
            for identity in (source, into):
                if identity not in found:
                    raise InputError(f"{self.where}: no identity {identity}")
            self._merge_tracks(source, into)
            moved = self.db.execute("UPDATE embeddings SET identity = %s WHERE identity = %s", (into, source)).rowcount
            self.db.execute("UPDATE origins SET identity = %s WHERE identity = %s", (into, source))
            if self._has_channel_table():
                self.db.execute("UPDATE channel_embeddings SET identity = %s WHERE identity = %s", (into, source))
            self.db.execute("DELETE FROM identities WHERE id = %s", (source,))
            self._bump(source, "merge")
            self._bump(into, "merge")
        return int(moved)

    def _merge_tracks(self, source: int, into: int) -> None:
        """``source``'s kept track sums become ``into``'s: added to the same (source, track) where ``into`` has it."""
        for origin, track, label, count, total in self.db.execute(
            "SELECT source, track, label, count, total FROM tracks WHERE identity = %s", (source,)
        ).fetchall():
            held = self.db.execute(
                "SELECT label, count, total FROM tracks WHERE identity = %s AND source = %s "
                "AND track IS NOT DISTINCT FROM %s",
                (into, origin, track),
            ).fetchone()
            if held is None:
                self.db.execute(
                    "UPDATE tracks SET identity = %s WHERE identity = %s AND source = %s "
                    "AND track IS NOT DISTINCT FROM %s",
                    (into, source, origin, track),
                )
                continue
            summed = np.frombuffer(bytes(total), np.float64) + np.frombuffer(bytes(held[2]), np.float64)
            self.db.execute(
                "UPDATE tracks SET label = %s, count = %s, total = %s WHERE identity = %s AND source = %s "
                "AND track IS NOT DISTINCT FROM %s",
                (max(int(label), int(held[0])), int(count) + int(held[1]), summed.tobytes(), into, origin, track),
            )

    # --- embeddings -------------------------------------------------------------------------------

    @guarded
    def add_embeddings(self, identity: int, vectors: np.ndarray, origins: list[Origin]) -> list[int]:
        """Append embeddings [n, D] of one identity and update its tracks' sums, in one transaction."""
        vectors = new_vectors(self.where, vectors, origins, self.dim)
        now = time.time()
        with self.transaction():
            if self.db.execute("SELECT 1 FROM identities WHERE id = %s", (identity,)).fetchone() is None:
                raise InputError(f"{self.where}: no identity {identity}")
            ids = []
            for vector, origin in zip(vectors, origins, strict=True):
                window = None if origin.window is None else np.asarray(origin.window, np.float32).tobytes()
                row = self.db.execute(
                    'INSERT INTO embeddings (identity, vector, source, track, t_start, t_end, "window", created) '
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
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
                ).fetchone()
                ids.append(int(row[0]))
            self._add_to_tracks(identity, vectors, origins, ids)
            self._bump(identity, "enroll")
        return ids

    def _add_to_tracks(self, identity: int, vectors: np.ndarray, origins: list[Origin], ids: list[int]) -> None:
        groups: dict[tuple, list[int]] = {}
        for row, origin in enumerate(origins):
            groups.setdefault((origin.source, origin.track), []).append(row)
        for (source, track), rows in groups.items():
            held = self.db.execute(
                "SELECT count, total FROM tracks WHERE identity = %s AND source = %s AND track IS NOT DISTINCT FROM %s",
                (identity, source, track),
            ).fetchone()
            total = vectors[rows].astype(np.float64).sum(axis=0)
            count = len(rows)
            if held is not None:
                total += np.frombuffer(held[1], np.float64)
                count += int(held[0])
            self.db.execute(
                "INSERT INTO tracks (identity, source, track, label, count, total) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (identity, source, track) DO UPDATE SET label = EXCLUDED.label, count = EXCLUDED.count, "
                "total = EXCLUDED.total",
                (identity, source, track, max(ids[r] for r in rows), count, total.tobytes()),
            )

    @guarded
    def embeddings(
        self, after_id: int = 0, chunk: int = MAX_VECTOR_CHUNK
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        last = after_id
        while True:
            rows = self.db.execute(
                "SELECT id, identity, vector FROM embeddings WHERE id > %s ORDER BY id LIMIT %s", (last, chunk)
            ).fetchall()
            if not rows:
                return
            ids = np.asarray([r[0] for r in rows], np.int64)
            owners = np.asarray([r[1] for r in rows], np.int64)
            yield ids, owners, self._vectors(ids, [bytes(r[2]) for r in rows])
            last = int(ids[-1])

    def _vectors(self, ids: np.ndarray, blobs: list[bytes]) -> np.ndarray:
        return stored_vectors(self.where, ids, blobs, self.dim)

    @guarded
    def enrolled_rows(self, identity: int) -> tuple[np.ndarray, list[Origin]]:
        """An identity's embeddings [n, D] with their origins (windows included), in id order: a copy's source."""
        rows = self.db.execute(
            'SELECT id, vector, source, track, t_start, t_end, "window" FROM embeddings WHERE identity = %s '
            "ORDER BY id",
            (identity,),
        ).fetchall()
        ids = np.asarray([r[0] for r in rows], np.int64)
        vectors = self._vectors(ids, [bytes(r[1]) for r in rows]) if rows else np.zeros((0, self.dim), np.float32)
        f = int(self.meta["f"])
        origins = []
        for number, _, source, track, start, end, window in rows:
            if window is not None and len(window) != f * 20 * 3 * 4:
                raise FormatError(self.where, f"embedding {number}", f"stored window is not {f} frames of 20 joints")
            kept = None if window is None else np.frombuffer(bytes(window), np.float32).reshape(f, 20, 3)
            origins.append(Origin(source, track, start, end, kept))
        return vectors, origins

    @guarded
    def ids_and_owners(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.db.execute("SELECT id, identity FROM embeddings ORDER BY id").fetchall()
        return np.asarray([r[0] for r in rows], np.int64), np.asarray([r[1] for r in rows], np.int64)

    @guarded
    def track_means(self, identity: int | None = None) -> TrackMeans:
        """Every enrolled track's mean (or one identity's), from the kept sums: one row per track, by label."""
        where, args = ("WHERE identity = %s", (identity,)) if identity is not None else ("", ())
        rows = self.db.execute(f"SELECT label, identity, count, total FROM tracks {where} ORDER BY label", args)
        labels, owners, counts, totals = [], [], [], []
        for label, owner, count, total in rows:
            labels.append(label)
            owners.append(owner)
            counts.append(count)
            totals.append(bytes(total))
        if len(totals) and any(len(t) != 8 * self.dim for t in totals):
            raise FormatError(self.where, "tracks", f"a track sum that is not {self.dim} float64 values")
        sums = np.frombuffer(b"".join(totals), np.float64).reshape(len(totals), self.dim)
        counts_array = np.asarray(counts, np.int64)
        means = (sums / np.maximum(counts_array, 1)[:, None]).astype(np.float32)
        return TrackMeans(np.asarray(labels, np.int64), np.asarray(owners, np.int64), counts_array, means)

    @guarded
    def track_summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.db.execute("SELECT label, identity, count FROM tracks ORDER BY label").fetchall()
        columns = [np.asarray([r[i] for r in rows], np.int64) for i in range(3)]
        return columns[0], columns[1], columns[2]

    # --- other channels (silhouettes): the dialect hooks of ChannelTables ----------------------------------

    def _has_channel_table(self) -> bool:
        """Whether the database holds ``channel_embeddings`` (galleries made before it lack it until an enroll)."""
        return self.db.execute("SELECT to_regclass('channel_embeddings')").fetchone()[0] is not None

    def _make_channel_table(self) -> None:
        self.db.execute(CHANNEL_SCHEMA)

    def _insert_channel_row(self, row: tuple) -> int:
        query = (
            "INSERT INTO channel_embeddings (channel, identity, vector, source, track, t_start, t_end, created) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
        )
        return int(self.db.execute(query, row).fetchone()[0])

    def _channel_written(self, identity: int | None) -> None:
        self._bump(identity, "channel")

    @guarded
    def rebind(self, model: dict, encode) -> int:
        """Re-embed every stored window with another model and bind to it, in one transaction (as SQLite's);
        other channels keep their own models."""
        missing = self.db.execute('SELECT COUNT(*) FROM embeddings WHERE "window" IS NULL').fetchone()[0]
        if missing:
            raise InputError(
                f"{self.where}: {missing} embeddings were enrolled without their windows (enroll with "
                "--keep-windows to allow re-embedding); enroll those people again from their files instead"
            )
        f, dim = int(model["f"]), int(model["embedding_dim"])
        with self.transaction():
            rows = self.db.execute(
                'SELECT id, identity, source, track, "window" FROM embeddings ORDER BY id'
            ).fetchall()
            self.db.execute("DELETE FROM tracks")
            self.dim = dim
            for start in range(0, len(rows), 4096):
                part = rows[start : start + 4096]
                windows = np.frombuffer(b"".join(bytes(r[4]) for r in part), np.float32).reshape(len(part), f, 20, 3)
                vectors = np.asarray(encode(windows), np.float32)
                with self.db.cursor() as cursor:
                    cursor.executemany(
                        "UPDATE embeddings SET vector = %s WHERE id = %s",
                        [(v.tobytes(), r[0]) for v, r in zip(vectors, part, strict=True)],
                    )
                for identity in sorted({r[1] for r in part}):
                    mine = [i for i, r in enumerate(part) if r[1] == identity]
                    origins = [Origin(part[i][2], part[i][3]) for i in mine]
                    self._add_to_tracks(identity, vectors[mine], origins, [part[i][0] for i in mine])
            binding = model_binding(model)
            with self.db.cursor() as cursor:
                cursor.executemany(
                    "UPDATE meta SET value = %s WHERE key = %s", [(json.dumps(v), k) for k, v in binding.items()]
                )
            self._bump(None, "rebind")
        self.meta = self._read_meta()
        return len(rows)

    @guarded
    def count(self) -> int:
        return int(self.db.execute("SELECT COALESCE(SUM(count), 0) FROM tracks").fetchone()[0])

    def close(self) -> None:
        self._closed = True
        self.db.close()
