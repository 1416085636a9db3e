"""A node's replica of a shared (PostgreSQL) gallery, kept current from the database's notifications.

Why a replica: matching must never wait on the network, so the node decides on its in-memory track index
alone; this thread keeps that index (and each channel's, silhouettes) equal to the database. Each committed
write notifies its generation, identity and kind (``stream.gallery.postgres``); the next generation in line is
applied by reading that identity's rows, anything else (a gap, a lost connection, a server restart) by catching
up with the whole store by label and count (no vector read but those that changed). While the database is
unreachable the node goes on matching on what it has, and this thread retries every ``RETRY_S`` until it can
catch up.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from sensors.errors import GaitwatchError
from stream.gallery.gallery import Gallery
from stream.gallery.postgres import CHANNEL, PostgresStore

RETRY_S = 1.0
log = logging.getLogger("gaitwatch.replica")


class Follower:
    """Keeps ``gallery`` (opened on a PostgreSQL store) current with what other processes write."""

    def __init__(self, gallery: Gallery) -> None:
        if not isinstance(gallery.store, PostgresStore):
            raise TypeError("only a PostgreSQL gallery has other writers to follow")
        self.gallery = gallery
        self.url = gallery.store.url
        self.generation = gallery.tracks.synced  # what the replica equals, where known
        self.applied = 0  # changes taken one by one
        self.catch_ups = 0  # whole-store catch-ups (a gap, a reconnect)
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gaitwatch-replica", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        warned = False  # said once per outage, not once a second
        while not self._stop.is_set():
            try:
                self._follow()
                return
            except Exception as err:  # a store's one-line error, or the driver's own on the LISTEN connection
                if self.connected.is_set() or not warned:
                    reason = err if isinstance(err, GaitwatchError) else f"{self.gallery.store.where}: {err}"
                    log.warning("gallery replica: %s; matching goes on with what this node has, retrying", reason)
                    warned = True
            finally:
                self.connected.clear()
            self._stop.wait(RETRY_S)

    def _follow(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10, application_name="gaitwatch-replica") as db:
            db.execute(f"LISTEN {CHANNEL}")  # first: nothing committed after the catch-up below is missed
            store = PostgresStore(self.url, writable=False)
            try:
                self.generation = self.gallery.catch_up(store)
                self.catch_ups += 1
                self.connected.set()
                log.info("gallery replica: following %s at generation %d", store.where, self.generation)
                while not self._stop.is_set():
                    for note in db.notifies(timeout=0.5, stop_after=64):
                        self._take(store, note.payload)
            finally:
                store.close()

    def _take(self, store: PostgresStore, payload: str) -> None:
        try:
            change = json.loads(payload)
            generation, identity, kind = int(change["generation"]), change.get("identity"), change.get("change")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("gallery replica: a notification that is not ours (%r) made it catch up", payload[:80])
            generation, identity, kind = -1, None, None
        if self.generation is not None and 0 <= generation <= self.generation:
            return  # taken already (by the catch-up that followed LISTEN)
        if identity is not None and self.generation is not None and generation == self.generation + 1:
            self.gallery.take_change(store, int(identity), kind if isinstance(kind, str) else None)
            self.generation = generation
            self.applied += 1
        else:
            self.generation = self.gallery.catch_up(store)
            self.catch_ups += 1

    def wait_connected(self, timeout_s: float) -> bool:
        """Whether the replica is following the database (it caught up once connected), within ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while not self.connected.wait(0.05):
            if time.monotonic() > end or not self._thread.is_alive():
                return False
        return True
