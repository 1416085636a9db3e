"""Reading a user's file, with the one-line error every reader gives when it cannot."""

from __future__ import annotations

from pathlib import Path

from sensors.errors import FormatError


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise FormatError(path, "", f"cannot read ({err.strerror})") from None
