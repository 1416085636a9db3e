"""Text helpers shared by the ASF and AMC parsers: a file's lines, and checked numbers from one line."""

from __future__ import annotations

import math
from pathlib import Path

from sensors.errors import FormatError
from sensors.formats._io import read_bytes

_Line = tuple[int, list[str]]  # 1-based line number, whitespace-separated tokens


def _read_lines(path: Path) -> list[str]:
    """A regular file's lines, read up to ``MAX_TEXT_BYTES`` (latin-1: any byte is a character)."""
    return read_bytes(path).decode("latin-1").splitlines()


def _floats(path: Path, line: _Line, what: str, count: int, first: int = 1) -> tuple[float, ...]:
    """``count`` finite numbers from ``tokens[first:]`` of a line."""
    number, tokens = line
    values = tokens[first:]
    if len(values) != count:
        raise FormatError(path, f"line {number}", f"{what}: expected {count} numbers, found {len(values)}")
    try:
        out = tuple(float(v) for v in values)
    except ValueError:
        raise FormatError(path, f"line {number}", f"{what}: expected numbers, found {' '.join(values)!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise FormatError(path, f"line {number}", f"{what}: expected finite numbers, found {' '.join(values)!r}")
    return out
