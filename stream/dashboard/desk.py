"""Gallery changes from the dashboard, made through the store the ``gaitwatch gallery`` commands use.

Why one worker thread: a store's connection is used by one thread at a time, and changes are then made one
after another, each committed (durable) before its answer goes back, as the command line's are. The page
names identities by id, which the store checks (``store.identity``) like the command line does with ``id:N``.
``generation`` lets the server see changes made by anyone else (a shell, a node enrolling anonymous people).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sensors.errors import InputError
from stream.gallery.location import Location, open_store

LISTED = 500  # identities answered at most per list or search


class Desk:
    def __init__(self, location: Location, writable: bool) -> None:
        self.location = location
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="gaitwatch-dashboard-gallery")
        try:
            self.store = self._pool.submit(open_store, location, None, False, None if writable else False).result()
        except BaseException:
            self._pool.shutdown()
            raise
        self.writable = not self.store.readonly
        self.where = self.store.where

    async def call(self, work, *args) -> Any:
        """``work(*args)`` in the gallery's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    # --- run in the gallery's thread ---------------------------------------------------------------

    def identities(self, query: str = "") -> dict:
        """Identities whose name or id holds ``query`` (case-insensitive), and how many there are in all."""
        rows = self.store.identities()
        needle = query.strip().lower()
        found = [i for i in rows if not needle or needle in i.name.lower() or needle == str(i.id)]
        return {
            "total": len(rows),
            "matching": len(found),
            "generation": self.store.generation(),
            "identities": [
                {"id": i.id, "name": i.name, "anonymous": i.anonymous, "embeddings": i.embeddings, "created": i.created}
                for i in found[:LISTED]
            ],
        }

    def generation(self) -> int:
        return self.store.generation()

    def rename(self, identity: int, name: str) -> dict:
        found = self.store.identity(identity)
        self.store.rename(found.id, _name(name))
        return {"id": found.id, "was": found.name, "name": name.strip()}

    def enroll(self, identity: int, name: str) -> dict:
        """An anonymous track's identity (``anonymous-N``, enrolled by a node) named: a rename, refused for others."""
        found = self.store.identity(identity)
        if not found.anonymous:
            raise InputError(f"identity {found.id} ({found.name}) is not anonymous: rename it instead")
        self.store.rename(found.id, _name(name))
        return {"id": found.id, "was": found.name, "name": name.strip()}

    def merge(self, source: int, into: int) -> dict:
        gone, kept = self.store.identity(source), self.store.identity(into)
        moved = self.store.merge(gone.id, kept.id)
        return {"merged": gone.id, "merged_name": gone.name, "into": kept.id, "name": kept.name, "moved": moved}

    def remove(self, identity: int) -> dict:
        found = self.store.identity(identity)
        removed = self.store.remove_identity(found.id)
        return {"removed": found.id, "name": found.name, "embeddings": removed}

    def close(self) -> None:
        self._pool.submit(self.store.close).result()
        self._pool.shutdown()


def _name(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError("a name: some text, not empty")
    return text.strip()
