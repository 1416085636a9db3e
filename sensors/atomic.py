"""Durable file replacement: write aside, flush to disk, then rename into place.

A crash at any moment leaves either the old file or the complete new one, never a
half-written file under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


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


def write_bytes(path: Path, data: bytes) -> None:
    partial = partial_path(path)
    partial.write_bytes(data)
    commit(partial, path)
