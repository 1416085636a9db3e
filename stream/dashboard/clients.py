"""Each open page's queue of changes: bounded, coalescing, never waited on by the feed.

Why: the feed thread reads the node's events; if a page's socket is slow (a phone on a poor network, a tab in
the background) the changes for it must pile up somewhere without slowing the feed or the other pages. So
``offer`` only ever takes a short lock: a change replaces a pending one of the same ``kind`` and ``key`` (the
newest state of a track or a publisher is all a page needs: *coalesced*), and when a page has ``LIMIT``
changes pending they are all thrown away (*dropped*, counted) and the page is sent the whole picture again
instead, once its socket is ready. Memory per page is thus bounded by ``LIMIT`` changes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

LIMIT = 1000  # changes pending per page before they are dropped for a fresh snapshot


class Client:
    """One page's pending changes; ``take`` (in the event loop) empties them, ``offer`` (any thread) adds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = LIMIT) -> None:
        self.loop = loop
        self.limit = limit
        self.wake = asyncio.Event()
        self.pending: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self.needs_snapshot = True  # the first thing a page gets
        self.dropped = 0
        self.coalesced = 0
        self.sent = 0
        self._lock = threading.Lock()
        self._signalled = True  # woken at once: the snapshot goes out without waiting for an event
        self.wake.set()
        self.closed = False

    def offer(self, changes: list[dict]) -> None:
        with self._lock:
            if self.closed:
                return
            if not self.needs_snapshot:
                for change in changes:
                    key = (change["kind"], change.get("key", ""))
                    if key in self.pending:
                        self.coalesced += 1
                        self.pending.move_to_end(key)
                    self.pending[key] = change
                if len(self.pending) > self.limit:
                    self.dropped += len(self.pending)
                    self.pending.clear()
                    self.needs_snapshot = True
            if self._signalled:
                return
            self._signalled = True
        self.loop.call_soon_threadsafe(self.wake.set)

    def take(self) -> tuple[bool, list[dict]]:
        """(whether a snapshot must go first, the changes pending), and the page is ready to be woken again."""
        with self._lock:
            snapshot, self.needs_snapshot = self.needs_snapshot, False
            changes = list(self.pending.values())
            self.pending.clear()
            self._signalled = False
            self.wake.clear()
        self.sent += len(changes)
        return snapshot, changes

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self.loop.call_soon_threadsafe(self.wake.set)

    def counts(self) -> dict:
        return {"sent": self.sent, "coalesced": self.coalesced, "dropped": self.dropped}


class Clients:
    """Every open page; ``offer`` hands changes to each (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        self.dropped_total = 0  # of pages gone: kept so the totals never go back

    def add(self, client: Client) -> None:
        with self._lock:
            self._clients.add(client)

    def remove(self, client: Client) -> None:
        client.close()
        with self._lock:
            if client in self._clients:
                self._clients.discard(client)
                self.dropped_total += client.dropped

    def offer(self, changes: list[dict]) -> None:
        if not changes:
            return
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.offer(changes)

    def counts(self) -> dict:
        with self._lock:
            clients = list(self._clients)
            gone = self.dropped_total
        return {
            "pages": len(clients),
            "dropped": gone + sum(c.dropped for c in clients),
            "coalesced": sum(c.coalesced for c in clients),
        }
