"""Durable, private file writing: write aside, flush to disk, then rename into place.

A crash at any moment leaves either the old file or the complete new one, never a
half-written file under the final name. Files that can hold biometric data (recordings,
galleries, their indexes and exports, calibration files) are created readable by their
owner alone (0600; folders 0700), whatever the process's umask.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def make_private(path: str | Path) -> None:
    """Make an existing file readable and writable by its owner alone."""
    os.chmod(path, PRIVATE_FILE)


def open_private(path: str | Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` a file for writing with mode 0600 (an existing file is made 0600 too)."""
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0), PRIVATE_FILE)
    try:
        make_private(path)
    except OSError:
        os.close(fd)
        raise
    return fd


def create_private(path: str | Path) -> BinaryIO:
    """A binary file object writing ``path`` (created or truncated), private (0600)."""
    return os.fdopen(open_private(path), "wb")


def private_dir(path: str | Path) -> Path:
    """Make a folder (and its parents) for private files; a folder this creates is 0700."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def commit(partial: Path, final: Path) -> None:
    """fsync ``partial``, rename it to ``final``, fsync the folder so the rename itself survives a power cut."""
    fd = os.open(partial, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, final)
    if hasattr(os, "O_DIRECTORY"):  # POSIX; Windows has no directory handles to sync
        dir_fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_bytes(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically; ``private`` files are created 0600."""
    partial = partial_path(path)
    if private:
        with create_private(partial) as stream:
            stream.write(data)
    else:
        partial.write_bytes(data)
    commit(partial, path)
