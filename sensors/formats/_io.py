"""Reading a user's file safely: regular files only, bounded reads, and the one-line error every reader gives.

Why: a reader handed a FIFO would wait forever, ``/dev/zero`` never ends, and a sparse
file or a zip bomb can ask for gigabytes; so anything but a regular file is refused
before it is read, text files and zip members are read up to a limit, and every
recording a reader returns passes ``Recording.problem`` before it leaves.
"""

from __future__ import annotations

import lzma
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from sensors.errors import FormatError, InputError
from sensors.recording import Recording

MAX_TEXT_BYTES = 64 * 2**20
"""Largest text file (KGBD walk, NTU skeleton, ASF/AMC) read; the largest known are a few MB."""
MAX_ZIP_RATIO = 200
"""Largest unpacked/packed size ratio of a zip member over 1 MiB: skeleton text packs about 5x, bombs 1000x."""
_ZIP_PIECE = 2**20
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
)
"""What ``zipfile`` raises on a damaged, encrypted or unsupported zip (its own errors are not one class)."""
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def is_regular(path: str | Path) -> bool:
    """True for a regular file (through symlinks); False for anything else, missing or unreadable."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def require_regular(path: Path) -> None:
    """Refuse, before opening it, a path that is not a regular file (opening a FIFO blocks; a device never ends)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        raise FormatError(path, "", f"cannot read ({getattr(err, 'strerror', None) or err})") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: {kind_of(mode)}, not a regular file; refusing to read it")


def open_regular(path: Path) -> BinaryIO:
    """A regular file opened for reading; checked again on the open file, so a swapped path cannot block."""
    require_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise FormatError(path, "", f"cannot read ({err.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{path}: {kind_of(mode)}, not a regular file; refusing to read it")
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """A regular file's bytes, refused beyond ``limit`` without reading more than ``limit + 1`` bytes."""
    with open_regular(path) as stream:
        if os.fstat(stream.fileno()).st_size > limit:
            raise FormatError(path, "", f"larger than {limit:,} bytes, the most this format is read to")
        try:
            data = stream.read(limit + 1)  # bounded too: the file may grow while it is read
        except OSError as err:
            raise FormatError(path, "", f"cannot read ({err.strerror})") from None
    if len(data) > limit:
        raise FormatError(path, "", f"larger than {limit:,} bytes, the most this format is read to")
    return data


def open_zip(path: Path) -> zipfile.ZipFile:
    """A zip's directory; anything ``zipfile`` cannot open (though it looks like a zip) is a ``FormatError``."""
    require_regular(path)
    try:
        return zipfile.ZipFile(path)
    except ZIP_ERRORS as err:
        raise FormatError(path, "", f"not a readable zip ({err})") from None


def read_member(archive: zipfile.ZipFile, name: str, source: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """One zip member's bytes, refused when its declared size or packing ratio is a bomb's; at most ``limit`` read."""
    info = archive.getinfo(name)
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > limit:
        raise FormatError(source, "", f"unpacks to {info.file_size:,} bytes, more than the {limit:,} read")
    if info.file_size > 2**20 and ratio > MAX_ZIP_RATIO:
        raise FormatError(source, "", f"packed {ratio:.0f} to 1, beyond {MAX_ZIP_RATIO} to 1 (a zip bomb?)")
    parts, size = [], 0
    try:
        with archive.open(info) as member:  # zipfile stops at the declared size and checks the CRC there
            while size <= limit and (part := member.read(_ZIP_PIECE)):  # small pieces: one call unpacks no more
                parts.append(part)
                size += len(part)
    except ZIP_ERRORS as err:
        raise FormatError(source, "", f"cannot read from the zip ({err})") from None
    if size > limit:
        raise FormatError(source, "", f"unpacks to more than {limit:,} bytes")
    return b"".join(parts)


def checked(recording: Recording, source: str | Path) -> Recording:
    """``recording`` if its values are valid, else the ``FormatError`` naming where in ``source`` and what."""
    problem = recording.problem()
    if problem is not None:
        raise FormatError(source, *problem)
    return recording
