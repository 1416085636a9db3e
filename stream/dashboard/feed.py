"""The dashboard's subscriber: a thread reading the node's events into the live picture and every page's queue.

Why a thread of its own: ZeroMQ's socket is read as fast as events come, whatever the pages do (their queues
never block it, ``clients``); malformed messages from a rogue publisher are counted and skipped by the
subscriber library (``stream.subscriber``); a node that restarts is reconnected to by ZeroMQ itself, and its
restart is seen in its sequence numbers.
"""

from __future__ import annotations

import logging
import threading
import time

from stream.dashboard.clients import Clients
from stream.dashboard.live import LiveState
from stream.subscriber import Subscriber

BATCH = 256  # events read at most before the pages are handed what changed
log = logging.getLogger("gaitwatch.dashboard")


class Feed:
    """Reads ``subscriber`` (made by the caller, so a bad endpoint is said at start; used only by this thread)."""

    def __init__(self, subscriber: Subscriber, state: LiveState, clients: Clients) -> None:
        self.subscriber = subscriber
        self.state = state
        self.clients = clients
        self.events = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gaitwatch-dashboard-feed", daemon=True)

    def start(self) -> Feed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.subscriber.close()

    def _run(self) -> None:
        malformed = 0
        while not self._stop.is_set():
            changes: list[dict] = []
            event = self.subscriber.receive(0.2)
            read = 0
            while event is not None:
                changes += self.state.apply(event, time.time())
                read += 1
                if read >= BATCH:
                    break
                event = self.subscriber.receive(0)
            self.events += read
            if read or self.subscriber.malformed != malformed:  # one record, coalesced per page
                malformed = self.subscriber.malformed
                changes.append(self.state.count(self.subscriber))
            self.clients.offer(changes)
