"""The header both of gaitwatch's binary files open with (magic, version, and a checksummed JSON object), and the
check word each of their fixed-size records ends with.

``.gwrec`` (skeletons) and ``.gwsil`` (silhouettes) start with one preamble — 8 bytes of magic, the format
version, the header's length and its CRC-32 — then the header as JSON, padded with spaces so that the
fixed-size records after it start 8-byte aligned. A wrong file is refused from its first 20 bytes and a
header longer than ``MAX_HEADER_BYTES`` is never read. What the header's fields mean is each format's own.
Each record's ``check`` is a position-weighted sum of its words (``record_checksums``) with each format's own seed.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sensors.errors import FormatError

PREAMBLE = struct.Struct("<8sIII")  # magic, version, header bytes, header CRC-32
MAX_HEADER_BYTES = 2**20
"""Largest JSON header read (a layout and labels take a few kB)."""


def header_bytes(magic: bytes, version: int, header: dict) -> bytes:
    """Preamble and JSON header, padded so that what follows starts at a multiple of 8 bytes."""
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * ((-(PREAMBLE.size + len(text))) % 8)
    return PREAMBLE.pack(magic, version, len(text), zlib.crc32(text)) + text


def read_header(stream: BinaryIO, path: Path, magic: bytes, version: int, kind: str) -> tuple[dict, int]:
    """The header's JSON object and the byte offset where records start, from a stream at the file's start;
    ``kind`` names the file in the error when the magic is another's ("a gaitwatch recording")."""
    preamble = read_bytes(stream, path, PREAMBLE.size)
    if len(preamble) < PREAMBLE.size:
        raise FormatError(
            path, "header", f"file is {len(preamble)} bytes, shorter than the {PREAMBLE.size}-byte preamble"
        )
    found, found_version, length, crc = PREAMBLE.unpack(preamble)
    if found != magic:
        raise FormatError(path, "byte 0", f"not {kind} (magic {found!r}, expected {magic!r})")
    if found_version != version:
        raise FormatError(path, "header", f"format version {found_version}, this gaitwatch reads version {version}")
    if length > MAX_HEADER_BYTES:
        raise FormatError(path, "header", f"header of {length:,} bytes, more than the {MAX_HEADER_BYTES:,} read")
    end = PREAMBLE.size + length
    text = read_bytes(stream, path, length)
    if len(text) < length:
        raise FormatError(path, "header", f"truncated inside the header ({PREAMBLE.size + len(text)} of {end} bytes)")
    if zlib.crc32(text) != crc:
        raise FormatError(path, "header", "header checksum mismatch (corrupt header)")
    try:
        header = json.loads(text)
    except RecursionError:
        raise FormatError(path, "header", "JSON nested too deeply") from None
    except ValueError as err:
        raise FormatError(path, "header", f"unreadable header JSON ({err})") from None
    if not isinstance(header, dict):
        raise FormatError(path, "header", f"expected a JSON object, found {type(header).__name__}")
    return header, end


def read_bytes(stream: BinaryIO, path: Path, size: int) -> bytes:
    """Up to ``size`` bytes (fewer at the end of the file); a failing read is one clear error naming the file."""
    try:
        return stream.read(size)
    except OSError as err:
        raise FormatError(path, "", f"cannot read ({err.strerror})") from None


def record_checksums(records: np.ndarray, seed: int) -> np.ndarray:
    """Per record, the position-weighted sum (mod 2**32) of every 32-bit word before its ``check`` and ``pad`` words
    (the record dtype's last two), plus the format's ``seed``."""
    words = records.view("<u4").reshape(len(records), records.dtype.itemsize // 4)[:, :-2]
    weights = np.arange(1, 2 * words.shape[1] + 1, 2, dtype=np.uint32)
    return np.einsum("ij,j->i", words, weights, dtype=np.uint32) + np.uint32(seed)
