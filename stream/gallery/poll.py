"""A node's view of a SQLite gallery kept current with what other processes write to the same file.

Why: a gallery file may be changed while a node runs (``gaitwatch gallery rename`` in a shell, the dashboard's
rename or merge); a PostgreSQL gallery tells its nodes by notification (``stream.gallery.follow``), SQLite
cannot. Every write bumps the stored ``generation``, so this thread reads that one value every ``PERIOD_S``
on its own read-only connection and, when another process wrote, catches the node's names, track index and
channels (silhouettes) up with the file (``Gallery.catch_up``: labels and counts, no vector read but those
that changed). The node's own single write since the last look is recognised (``store.written``) and costs
nothing.
"""

from __future__ import annotations

import logging
import threading

from sensors.errors import GaitwatchError
from stream.gallery.gallery import Gallery
from stream.gallery.store import GalleryStore

PERIOD_S = 0.5
log = logging.getLogger("gaitwatch.gallery")


class Poller:
    """Keeps ``gallery`` (opened on a SQLite file) current with other processes' writes; same use as ``Follower``."""

    def __init__(self, gallery: Gallery, period_s: float = PERIOD_S) -> None:
        if not isinstance(gallery.store, GalleryStore):
            raise TypeError("a Poller follows a SQLite gallery file")
        self.gallery = gallery
        self.period_s = period_s
        self.catch_ups = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Poller:
        """Open the read-only connection and take the generation the node holds now, before returning: a write
        made by another process right after ``start`` is then always seen as new."""
        try:
            source = GalleryStore(self.gallery.store.path, writable=False)
            seen = source.generation()
        except GaitwatchError as err:
            log.warning("gallery: not following other processes' changes: %s", err)
            return self
        self._thread = threading.Thread(
            target=self._run, args=(source, seen), name="gaitwatch-gallery-poll", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, source: GalleryStore, seen: int) -> None:
        try:
            while not self._stop.wait(self.period_s):
                seen = self._look(source, seen)
        finally:
            source.close()

    def _look(self, source: GalleryStore, seen: int) -> int:
        try:
            now = source.generation()
            if now == seen or (now == seen + 1 and now == self.gallery.store.written):
                return now  # nothing new, or this node's own one write
            self.catch_ups += 1
            return self.gallery.catch_up(source)
        except GaitwatchError as err:  # busy or damaged for a moment: the node goes on, looked at again next time
            log.warning("gallery: %s", err)
            return seen
