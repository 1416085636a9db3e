"""Other identity channels (silhouettes) in a gallery store, written once for both stores (SQLite, PostgreSQL).

Why a mixin: the two stores keep a channel's rows alike (a ``channel_embeddings`` table, the channel's model
binding in meta ``channel.<name>``), and differ only in their SQL dialect, so each store gives five hooks:
``PARAM`` (its query placeholder), ``_has_channel_table``, ``_make_channel_table``, ``_insert_channel_row``
and ``_channel_written`` (how a write is counted and announced); besides the members every store has (``db``,
``where``, ``transaction``, ``prepare``, ``driver_errors``, ``failure``, ``_json``).
"""

from __future__ import annotations

import json
import re
import time

import numpy as np

from sensors.errors import FormatError, InputError
from stream.gallery.records import (
    BINDING_KEYS,
    Origin,
    TrackMeans,
    check_meta_value,
    group_track_means,
    guarded,
    model_binding,
    new_vectors,
    stored_integers,
    stored_vectors,
)

CHANNEL_PREFIX = "channel."  # meta key of a channel's model binding: channel.<name>
CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


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


class ChannelTables:
    """The channel methods of a gallery store; the store supplies the dialect hooks named in the module's doc."""

    PARAM = "?"

    def _has_channel_table(self) -> bool:
        raise NotImplementedError

    def _make_channel_table(self) -> None:
        raise NotImplementedError

    def _insert_channel_row(self, row: tuple) -> int:
        """Insert (channel, identity, vector, source, track, t_start, t_end, created); the new row's id."""
        raise NotImplementedError

    def _channel_written(self, identity: int | None) -> None:
        """Count a channel write (and tell whoever follows the gallery), inside its transaction."""
        raise NotImplementedError

    @guarded
    def channels(self) -> dict[str, dict]:
        """Every bound channel's model binding (read now: another process may have bound one since open)."""
        rows = self.db.execute(
            f"SELECT key, value FROM meta WHERE key LIKE {self.PARAM}", (CHANNEL_PREFIX + "%",)
        ).fetchall()
        return {
            key[len(CHANNEL_PREFIX) :]: channel_binding(self.where, key[len(CHANNEL_PREFIX) :], self._json(value, key))
            for key, value in rows
        }

    @guarded
    def channel_model(self, channel: str) -> dict | None:
        """The model binding (``model_binding``) of ``channel``; None while nothing was enrolled in it."""
        check_channel(self.where, channel)
        key = CHANNEL_PREFIX + channel
        row = self.db.execute(f"SELECT value FROM meta WHERE key = {self.PARAM}", (key,)).fetchone()
        return None if row is None else channel_binding(self.where, channel, self._json(row[0], key))

    def check_channel_model(self, channel: str, card: dict) -> None:
        """Refuse ``channel`` embeddings of any model but the one the channel is bound to."""
        check_channel_model(self.where, channel, self.channel_model(channel), card)

    @guarded
    def bind_channel(self, channel: str, card: dict) -> None:
        """Bind ``channel`` to ``card``'s model (a migration's copy of a binding); refused where bound to another."""
        with self.transaction():
            if self._bind(channel, card):
                self._channel_written(None)

    def _bind(self, channel: str, card: dict) -> bool:
        """Inside a write: bind ``channel`` to ``card`` unless bound (then check it is the same model); whether it
        was bound now. The table is made here for galleries made before it."""
        binding = self.channel_model(channel)
        check_channel_model(self.where, channel, binding, card)
        if not self._has_channel_table():
            self._make_channel_table()
        if binding is None:
            self.db.execute(
                f"INSERT INTO meta VALUES ({self.PARAM}, {self.PARAM})",
                (CHANNEL_PREFIX + channel, json.dumps(model_binding(card))),
            )
        return binding is None

    @guarded
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
            if self.db.execute(f"SELECT 1 FROM identities WHERE id = {self.PARAM}", (identity,)).fetchone() is None:
                raise InputError(f"{self.where}: no identity {identity}")
            ids = [
                self._insert_channel_row((channel, identity, v.tobytes(), o.source, o.track, o.t_start, o.t_end, now))
                for v, o in zip(vectors, origins, strict=True)
            ]
            self._channel_written(identity)
        return ids

    def _channel_rows(self, channel: str, columns: str, identity: int | None, tail: str = "ORDER BY id") -> list:
        """Rows of ``channel`` (of one identity where given); none where the gallery has no such table."""
        check_channel(self.where, channel)
        if not self._has_channel_table():
            return []
        where, args = ("", (channel,)) if identity is None else (f"AND identity = {self.PARAM}", (channel, identity))
        query = f"SELECT {columns} FROM channel_embeddings WHERE channel = {self.PARAM} {where} {tail}"
        return self.db.execute(query, args).fetchall()

    def _channel_vectors(self, channel: str, binding: dict | None, ids: np.ndarray, blobs: list) -> np.ndarray:
        dim = binding["dim"] if binding is not None else 0
        blobs = [bytes(b) if isinstance(b, memoryview) else b for b in blobs]
        return stored_vectors(self.where, ids, blobs, dim, f"{channel} embedding")

    @guarded
    def channel_rows(self, channel: str, identity: int) -> tuple[np.ndarray, list[Origin]]:
        """An identity's ``channel`` embeddings [n, D] with their origins, in id order: a copy's source."""
        binding = self.channel_model(channel)
        rows = self._channel_rows(channel, "id, vector, source, track, t_start, t_end", identity)
        ids = stored_integers(self.where, [r[0] for r in rows], f"{channel} embedding ids")
        vectors = self._channel_vectors(channel, binding, ids, [r[1] for r in rows])
        return vectors, [Origin(*r[2:6]) for r in rows]

    @guarded
    def channel_track_means(self, channel: str, identity: int | None = None) -> TrackMeans:
        """The mean of every track enrolled in ``channel`` (or of one identity's), grouped as ``track_means``
        (from its embeddings: no kept sums, these galleries are small)."""
        binding = self.channel_model(channel)
        rows = self._channel_rows(channel, "id, identity, source, track, vector", identity)
        ids = stored_integers(self.where, [r[0] for r in rows], f"{channel} embedding ids")
        owners = stored_integers(self.where, [r[1] for r in rows], f"{channel} embedding identities")
        vectors = self._channel_vectors(channel, binding, ids, [r[4] for r in rows])
        chunks = [(ids, owners, [r[1:4] for r in rows], vectors)] if rows else []
        return group_track_means(chunks, binding["dim"] if binding is not None else 0)

    @guarded
    def channel_track_summary(self, channel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per track of ``channel``, by label: its label, identity and count, reading no vector."""
        rows = self._channel_rows(
            channel, "MAX(id), identity, COUNT(*)", None, "GROUP BY identity, source, track ORDER BY 1"
        )
        columns = [stored_integers(self.where, [r[i] for r in rows], f"{channel} tracks") for i in range(3)]
        return columns[0], columns[1], columns[2]

    @guarded
    def channel_counts(self, channel: str) -> dict[int, int]:
        """Per identity with ``channel`` embeddings, how many."""
        rows = self._channel_rows(channel, "identity, COUNT(*)", None, "GROUP BY identity")
        return {int(who): int(n) for who, n in rows}
