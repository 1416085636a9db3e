"""An advisory lock between processes, on a lock file beside the gallery: index saves take turns.

Why: two processes may write one gallery at once (a live node enrolling anonymous tracks while a user
runs ``gallery enroll``); SQLite serialises their transactions, but each also saves the search index
beside the store, and a save's clean-up must never delete files another save is writing. The lock is
released by the operating system when its holder dies, so a crash never leaves a gallery locked.
POSIX: ``fcntl.flock`` (shared or exclusive); Windows: ``msvcrt.locking`` (always exclusive).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensors import atomic

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold the lock of ``path``. A shared lock where the lock file can be neither made nor opened (a read-only
    folder, where nobody can save an index either) holds nothing."""
    try:  # made 0600; an existing one is used as it is (it holds no data, and may be another user's)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), atomic.PRIVATE_FILE)
    except OSError:
        if not shared:
            raise
        fd = _open_existing(path)
    if fd < 0:
        yield
        return
    try:
        _acquire(fd, shared)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _open_existing(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return -1


def _acquire(fd: int, shared: bool) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        return
    import msvcrt

    while True:
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            return
        except OSError as err:  # LK_LOCK gives up after 10 s of trying: try again, the holder will finish
            if err.errno not in (errno.EDEADLOCK, errno.EACCES):
                raise
