"""gaitwatch's silhouette companion file (``.gwsil``): the aligned silhouettes of a ``.gwrec``, as crash-safe.

Why a companion file and not a new ``.gwrec`` version: a ``.gwrec`` is one fixed-size record per body per
frame, which is what makes it one ``np.frombuffer`` to read; silhouettes are 2.8 kB per body and optional, so
they live beside it (``walk.gwrec`` -> ``walk.gwsil``) and every ``.gwrec`` ever written, and every reader of
it, stays as it was. A record names its frame by the ``.gwrec`` frame's ``seq`` and the body's index in it.

Layout (little-endian), like ``.gwrec``::

    magic     8 bytes  b"\\x89GWSIL\\r\\n"
    version   u32      format version (1)
    hdr_len   u32      length of the JSON header
    hdr_crc   u32      CRC-32 of the JSON header
    header    JSON     height, width, method, sensor id, created, metadata; padded to a multiple of 8
    records   one per body with a silhouette:
              sync u32 | body_index u16 | flags u16 | seq i64 | t f64 | box i32[4] |
              pixels u8[height * width] (padded to 8) | check u32 | pad u32

``box`` is the mask's x0, y0, x1, y1 in the camera image (exclusive ends), ``pixels`` the aligned silhouette
(0..255). Records are appended in one OS write per image; ``check`` (a position-weighted word sum) catches a
torn or zero-filled tail, which the reader drops and reports, as it does for ``.gwrec``. Files are 0600.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, InputError
from sensors.formats._io import open_regular
from sensors.formats.framed_header import header_bytes, read_bytes, read_header, record_checksums
from sensors.recording import Truncation, metadata_problem

MAGIC = b"\x89GWSIL\r\n"
VERSION = 1
SUFFIX = ".gwsil"
_SYNC = 0x31534C53  # b"SLS1"
_CHECK_SEED = 0x7F4A7C15
MAX_SIDE = 256  # largest silhouette side a header may declare (64 x 44 and 64 x 64 are the ones in use)
_CHUNK_BYTES = 16 * 2**20


def companion(recording: str | Path) -> Path:
    """The silhouette file that belongs to a recording: ``walk.gwrec`` -> ``walk.gwsil``."""
    return Path(recording).with_suffix(SUFFIX)


def record_dtype(height: int, width: int) -> np.dtype:
    pixels = height * width
    return np.dtype(
        [
            ("sync", "<u4"),
            ("body_index", "<u2"),
            ("flags", "<u2"),
            ("seq", "<i8"),
            ("t", "<f8"),
            ("box", "<i4", (4,)),
            ("pixels", "u1", (pixels + (-pixels) % 8,)),
            ("check", "<u4"),
            ("pad", "<u4"),
        ]
    )


def _checksums(records: np.ndarray) -> np.ndarray:
    return record_checksums(records, _CHECK_SEED)


@dataclass
class SilhouetteRecords:
    """A ``.gwsil`` read back: one row per body with a silhouette, in the order written."""

    seq: np.ndarray  # int64 [N]: the frame's seq in the companion .gwrec
    body_index: np.ndarray  # int64 [N]: the body's row in that frame
    t: np.ndarray  # float64 [N] seconds
    boxes: np.ndarray  # int32 [N, 4]
    silhouettes: np.ndarray  # uint8 [N, height, width]
    header: dict
    truncation: Truncation | None = None

    @property
    def method(self) -> str:
        return str(self.header.get("method", ""))


class SilhouetteWriter:
    """Appends silhouettes to a new ``.gwsil`` as they come; safe to kill at any moment, never overwrites."""

    def __init__(
        self,
        path: str | Path,
        *,
        method: str,
        height: int = 64,
        width: int = 44,
        sensor_id: str = "unknown",
        metadata: dict | None = None,
        overwrite: bool = False,
        fsync_every_s: float | None = 1.0,
    ) -> None:
        self.path = Path(path)
        metadata = {} if metadata is None else metadata
        problem = _header_problem(height, width, metadata)
        if problem:
            raise InputError(f"{self.path}: {problem}")
        self.height, self.width = height, width
        self._dtype = record_dtype(height, width)
        header = {
            "format": "gaitwatch-silhouettes",
            "height": height,
            "width": width,
            "method": method,
            "sensor_id": sensor_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "metadata": metadata,
        }
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            self._fd: int | None = atomic.open_private(self.path, flags)
        except FileExistsError:
            raise InputError(f"{self.path}: already exists; refusing to overwrite silhouettes") from None
        except OSError as err:
            raise InputError(f"{self.path}: cannot create ({err.strerror})") from None
        try:
            self._write(header_bytes(MAGIC, VERSION, header))
            os.fsync(self._fd)
        except OSError as err:
            self.abandon()
            raise InputError(f"{self.path}: cannot write ({err.strerror})") from None
        self._fsync_every_s = fsync_every_s
        self._last_sync = time.monotonic()
        self.written = 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def write(self, seq: int, t: float, body_index: np.ndarray, boxes: np.ndarray, silhouettes: np.ndarray) -> None:
        """One image's silhouettes (any number of bodies, none included), in one OS write."""
        if self._fd is None:
            raise InputError(f"{self.path}: writer is closed")
        silhouettes = np.asarray(silhouettes)
        n = len(silhouettes)
        if silhouettes.shape[1:] != (self.height, self.width) or silhouettes.dtype != np.uint8:
            raise InputError(
                f"{self.path}, frame seq {seq}: silhouettes {silhouettes.dtype} {silhouettes.shape}, expected uint8 "
                f"[bodies, {self.height}, {self.width}]"
            )
        body_index, boxes = np.asarray(body_index), np.asarray(boxes)
        if (
            body_index.shape != (n,)
            or boxes.shape != (n, 4)
            or (n and not 0 <= body_index.min() <= body_index.max() < 2**16)
        ):
            raise InputError(
                f"{self.path}, frame seq {seq}: {n} silhouettes, body indexes {body_index.shape}, boxes {boxes.shape}"
            )
        if n == 0:
            return
        recs = np.zeros(n, self._dtype)
        recs["sync"] = _SYNC
        recs["body_index"] = body_index
        recs["seq"] = seq
        recs["t"] = t
        recs["box"] = boxes
        recs["pixels"][:, : self.height * self.width] = silhouettes.reshape(n, -1)
        recs["check"] = _checksums(recs)
        self._write(recs.tobytes())
        self.written += n
        if self._fsync_every_s is not None and time.monotonic() - self._last_sync >= self._fsync_every_s:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def abandon(self) -> None:
        """Close and remove the file (a header alone, or a half-made whole file, is no silhouette file)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SilhouetteWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _header_problem(height: object, width: object, metadata: object) -> str | None:
    for name, side in (("height", height), ("width", width)):
        if not isinstance(side, int) or isinstance(side, bool) or not 1 <= side <= MAX_SIDE:
            return f"silhouette {name} {side!r:.20}: expected a whole number from 1 to {MAX_SIDE}"
    return metadata_problem(metadata)


def read_gwsil(path: str | Path) -> SilhouetteRecords:
    """Read a ``.gwsil``; a torn tail or a corrupt record ends what is read, and ``truncation`` says so."""
    path = Path(path)
    with open_regular(path) as stream:
        header, start = _read_header(stream, path)
        height, width = header["height"], header["width"]
        dtype = record_dtype(height, width)
        kept, dropped, reason = _read_records(stream, path, start, dtype)
    recs = np.concatenate(kept) if kept else np.zeros(0, dtype)
    return SilhouetteRecords(
        seq=recs["seq"].astype(np.int64),
        body_index=recs["body_index"].astype(np.int64),
        t=recs["t"].astype(np.float64),
        boxes=recs["box"].astype(np.int32),
        silhouettes=np.ascontiguousarray(recs["pixels"][:, : height * width]).reshape(len(recs), height, width),
        header=header,
        truncation=Truncation(len(recs), dropped, reason) if dropped else None,
    )


def _read_header(stream: BinaryIO, path: Path) -> tuple[dict, int]:
    header, end = read_header(stream, path, MAGIC, VERSION, "a gaitwatch silhouette file")
    problem = _header_problem(header.get("height"), header.get("width"), header.get("metadata", {}))
    if problem:
        raise FormatError(path, "header", problem)
    return header, end


def _read_records(stream: BinaryIO, path: Path, start: int, dtype: np.dtype) -> tuple[list[np.ndarray], int, str]:
    """The intact records before the first bad one, read in chunks (memory follows what is kept), the bytes left
    out after them, and why."""
    size = dtype.itemsize
    per_chunk = max(1, _CHUNK_BYTES // size)
    kept: list[np.ndarray] = []
    n = 0
    while True:
        data = read_bytes(stream, path, per_chunk * size)
        whole = len(data) // size
        recs = np.frombuffer(data[: whole * size], dtype)
        valid = (recs["sync"] == _SYNC) & (recs["check"] == _checksums(recs)) if whole else np.zeros(0, bool)
        if not valid.all():
            k = int(np.argmin(valid))
            kept.append(recs[:k])
            rest = len(data) - k * size + _remaining(stream)
            return kept, rest, f"corrupt or torn record {n + k} (byte {start + (n + k) * size}); the rest not read"
        kept.append(recs)
        n += whole
        if len(data) < per_chunk * size:
            partial = len(data) - whole * size
            return kept, partial, (f"{partial} bytes of a partly written record" if partial else "")


def _remaining(stream: BinaryIO) -> int:
    """Bytes after the stream's position, without reading them."""
    here = stream.tell()
    return max(0, os.fstat(stream.fileno()).st_size - here)
