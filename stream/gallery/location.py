"""Where a gallery lives: a SQLite file on this machine, or a PostgreSQL database a site's nodes share.

One place decides which store a ``--gallery`` names, so every command takes either: a ``postgresql://`` URL
is the shared database (``stream.gallery.postgres``), anything else a file path (``stream.gallery.store``).
"""

from __future__ import annotations

from pathlib import Path

from stream.gallery.postgres import PostgresStore, is_url
from stream.gallery.store import GalleryStore

Location = Path | str  # a file path, or a postgresql:// URL


def gallery_location(text: str) -> Location:
    """The ``--gallery`` option's type: a URL kept as text (checked when opened: an error here would make argparse
    print it back, password and all), anything else a path."""
    return text if is_url(text) else Path(text)


def open_store(
    location: Location, model: dict | None = None, create: bool = False, writable: bool | None = None
) -> GalleryStore | PostgresStore:
    if is_url(location):
        return PostgresStore(str(location), model, create, writable)
    return GalleryStore(location, model, create, writable)
