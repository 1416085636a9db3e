"""gaitwatch's own recording format (``.gwrec``): streamed, self-describing, crash-safe.

Layout of a file (all little-endian)::

    magic     8 bytes  b"\\x89GWREC\\r\\n"
    version   u32      format version (1)
    hdr_len   u32      length of the JSON header
    hdr_crc   u32      CRC-32 of the JSON header
    header    JSON     layout (names, parents, dims), units, sensor, nominal rate, metadata;
                       padded with spaces so that records start at a multiple of 8
    records   one fixed-size record per body per frame (an empty frame is one record
              with n_bodies = 0 and track_id = -1):
              sync u32 | n_bodies u16 | body_index u16 | seq i64 | t f64 | track_id i64 |
              joints f32[J,3] | confidence f32[J] | check u32 | pad u32

Fixed-size records make reading one ``np.frombuffer`` call. ``check`` is a
position-weighted sum of the record's words: it catches a torn or zero-filled
tail, which is what a killed writer or a power cut leaves. The writer hands each
frame to the OS in one ``write`` call as it arrives, so killing the process keeps
every frame whose write returned; the reader drops an incomplete tail and reports
it in ``Recording.truncation`` instead of failing. A corrupt record inside the file
(a bad sector, a power cut before an fsync) ends the readable part there: everything
before it is returned and the truncation report says what was skipped.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, InputError
from sensors.formats._io import read_bytes
from sensors.frame import Frame
from sensors.layouts import Layout
from sensors.recording import Recording, Truncation

MAGIC = b"\x89GWREC\r\n"
VERSION = 1
SUFFIX = ".gwrec"
_PREAMBLE = struct.Struct("<8sIII")
_SYNC = 0x31524257  # b"WBR1"
_CHECK_SEED = 0x9E3779B9


def record_dtype(num_joints: int) -> np.dtype:
    return np.dtype(
        [
            ("sync", "<u4"),
            ("n_bodies", "<u2"),
            ("body_index", "<u2"),
            ("seq", "<i8"),
            ("t", "<f8"),
            ("track_id", "<i8"),
            ("joints", "<f4", (num_joints, 3)),
            ("confidence", "<f4", (num_joints,)),
            ("check", "<u4"),
            ("pad", "<u4"),
        ]
    )


def _checksums(records: np.ndarray) -> np.ndarray:
    """Position-weighted sum (mod 2**32) of every 32-bit word before ``check``."""
    words = records.view("<u4").reshape(len(records), records.dtype.itemsize // 4)[:, :-2]
    weights = np.arange(1, 2 * words.shape[1] + 1, 2, dtype=np.uint32)
    return np.einsum("ij,j->i", words, weights, dtype=np.uint32) + np.uint32(_CHECK_SEED)


def _header_bytes(header: dict) -> bytes:
    text = json.dumps(header, sort_keys=True).encode()
    pad = (-(_PREAMBLE.size + len(text))) % 8
    text += b" " * pad
    return _PREAMBLE.pack(MAGIC, VERSION, len(text), zlib.crc32(text)) + text


def _validate_body_data(layout: Layout, track_ids: np.ndarray, joints: np.ndarray, confidence: np.ndarray, where: str):
    j = layout.num_joints
    if joints.ndim != 3 or joints.shape[1:] != (j, 3):
        raise InputError(f"{where}: joints of shape {joints.shape}, expected [bodies, {j}, 3] for layout {layout.name}")
    if confidence.shape != joints.shape[:2] or track_ids.shape != joints.shape[:1]:
        raise InputError(f"{where}: {len(track_ids)} track ids, confidence {confidence.shape}, joints {joints.shape}")
    if confidence.size and not (np.all(confidence >= 0) and np.all(confidence <= 1)):
        raise InputError(f"{where}: confidence outside [0, 1]")
    if len(track_ids) > 0xFFFF:
        raise InputError(f"{where}: {len(track_ids)} bodies in one frame, at most 65535")


def _records(
    layout: Layout,
    seq: np.ndarray,
    t: np.ndarray,
    body_offsets: np.ndarray,
    track_ids: np.ndarray,
    joints: np.ndarray,
    confidence: np.ndarray,
) -> np.ndarray:
    """Records for many frames at once: one per body, one for each empty frame."""
    counts = np.diff(body_offsets)
    per_frame = np.maximum(counts, 1)
    n = int(per_frame.sum())
    recs = np.zeros(n, record_dtype(layout.num_joints))
    first = np.concatenate([[0], np.cumsum(per_frame)[:-1]])
    frame_of = np.repeat(np.arange(len(counts)), per_frame)
    recs["sync"] = _SYNC
    recs["n_bodies"] = counts[frame_of]
    recs["body_index"] = np.arange(n) - first[frame_of]
    recs["seq"] = seq[frame_of]
    recs["t"] = t[frame_of]
    body_rows = np.repeat(counts > 0, per_frame)
    recs["track_id"] = -1
    recs["track_id"][body_rows] = track_ids
    recs["joints"][body_rows] = joints
    recs["confidence"][body_rows] = confidence
    recs["check"] = _checksums(recs)
    return recs


class RecordingWriter:
    """Appends frames to a new ``.gwrec`` file as they come; safe to kill at any moment.

    ``fsync_every_s`` bounds what a power cut (not a process kill) can lose.
    An existing file is never overwritten unless ``overwrite`` is set.
    """

    def __init__(
        self,
        path: str | Path,
        layout: Layout,
        *,
        sensor_id: str = "unknown",
        rate_hz: float | None = None,
        units: str = "m",
        metadata: dict | None = None,
        overwrite: bool = False,
        fsync_every_s: float | None = 1.0,
    ) -> None:
        self.path = Path(path)
        self.layout = layout
        self.sensor_id = sensor_id
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except FileExistsError:
            raise InputError(f"{self.path}: already exists; refusing to overwrite a recording") from None
        except OSError as err:
            raise InputError(f"{self.path}: cannot create ({err.strerror})") from None
        header = {
            "format": "gaitwatch-recording",
            "layout": layout.to_dict(),
            "units": units,
            "sensor_id": sensor_id,
            "nominal_rate_hz": rate_hz,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "metadata": metadata or {},
        }
        self._write(_header_bytes(header))
        os.fsync(self._fd)
        self._fsync_every_s = fsync_every_s
        self._last_sync = time.monotonic()
        self.frames_written = 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write_frame(self, frame: Frame) -> None:
        self.write_arrays(
            np.array([frame.seq]),
            np.array([frame.t]),
            np.array([0, frame.num_bodies]),
            frame.track_ids,
            frame.joints,
            frame.confidence,
        )

    def write_recording(self, recording: Recording, chunk_frames: int = 4096) -> None:
        if recording.layout != self.layout:
            raise InputError(f"{self.path}: recording layout {recording.layout.name}, writer layout {self.layout.name}")
        off = recording.body_offsets
        for a in range(0, recording.num_frames, chunk_frames):
            b = min(a + chunk_frames, recording.num_frames)
            self.write_arrays(
                recording.seq[a:b],
                recording.t[a:b],
                off[a : b + 1] - off[a],
                recording.track_ids[off[a] : off[b]],
                recording.joints[off[a] : off[b]],
                recording.confidence[off[a] : off[b]],
            )

    def write_arrays(self, seq, t, body_offsets, track_ids, joints, confidence) -> None:
        """Write frames given as flat arrays (the ``Recording`` layout), in one OS write."""
        if self._fd is None:
            raise InputError(f"{self.path}: writer is closed")
        seq, t, body_offsets = np.asarray(seq), np.asarray(t), np.asarray(body_offsets)
        if len(seq) == 0 or len(t) != len(seq) or len(body_offsets) != len(seq) + 1:
            raise InputError(
                f"{self.path}: {len(seq)} seq, {len(t)} times and {len(body_offsets)} offsets do not agree"
            )
        if body_offsets[0] != 0 or body_offsets[-1] != len(track_ids) or np.any(np.diff(body_offsets) < 0):
            raise InputError(
                f"{self.path}, frame seq {int(seq[0])}: body offsets do not span the {len(track_ids)} bodies"
            )
        track_ids = np.asarray(track_ids, np.int64)
        joints = np.asarray(joints, np.float32)
        confidence = np.asarray(confidence, np.float32)
        _validate_body_data(self.layout, track_ids, joints, confidence, f"{self.path}, frame seq {int(seq[0])}")
        recs = _records(
            self.layout, np.asarray(seq), np.asarray(t), np.asarray(body_offsets), track_ids, joints, confidence
        )
        self._write(recs.tobytes())
        self.frames_written += len(seq)
        if self._fsync_every_s is not None and time.monotonic() - self._last_sync >= self._fsync_every_s:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_recording(path: str | Path, recording: Recording, *, overwrite: bool = False) -> None:
    """Write a whole recording; written aside and renamed, so a crash never leaves half a file at ``path``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: already exists; refusing to overwrite a recording")
    partial = atomic.partial_path(path)
    with RecordingWriter(
        partial,
        recording.layout,
        sensor_id=recording.sensor_id,
        rate_hz=recording.rate_hz,
        units=recording.units,
        metadata=recording.metadata,
        overwrite=True,
        fsync_every_s=None,
    ) as writer:
        writer.write_recording(recording)
    atomic.commit(partial, path)


def read_header(data: bytes, path: str | Path) -> tuple[dict, int]:
    """The JSON header and the byte offset where records start."""
    if len(data) < _PREAMBLE.size:
        raise FormatError(path, "header", f"file is {len(data)} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
    magic, version, length, crc = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(path, "byte 0", f"not a gaitwatch recording (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise FormatError(path, "header", f"format version {version}, this gaitwatch reads version {VERSION}")
    end = _PREAMBLE.size + length
    if len(data) < end:
        raise FormatError(path, "header", f"truncated inside the header ({len(data)} of {end} bytes)")
    text = data[_PREAMBLE.size : end]
    if zlib.crc32(text) != crc:
        raise FormatError(path, "header", "header checksum mismatch (corrupt header)")
    try:
        header = json.loads(text)
        Layout.from_dict(header["layout"])
    except (ValueError, KeyError, TypeError) as err:
        raise FormatError(path, "header", f"unreadable header JSON ({err})") from None
    return header, end


def read_gwrec(path: str | Path) -> Recording:
    """Read a ``.gwrec`` file; a torn or incomplete tail is dropped and reported in ``truncation``."""
    path = Path(path)
    data = read_bytes(path)
    header, start = read_header(data, path)
    layout = Layout.from_dict(header["layout"])
    dtype = record_dtype(layout.num_joints)
    n = (len(data) - start) // dtype.itemsize
    recs = np.frombuffer(data, dtype, count=n, offset=start)
    dropped = len(data) - start - n * dtype.itemsize
    reasons = [f"{dropped} bytes of a partly written record"] if dropped else []

    valid = (recs["sync"] == _SYNC) & (recs["check"] == _checksums(recs))
    bad = np.flatnonzero(~valid)
    if len(bad):
        first_bad = int(bad[0])
        if valid[first_bad:].any():
            skipped = int(valid[first_bad:].sum())
            reasons.append(
                f"corrupt record {first_bad} (byte {start + first_bad * dtype.itemsize}); "
                f"{skipped} intact records after it not read"
            )
        else:
            reasons.append(f"{n - first_bad} torn or unwritten records at the end")
        dropped += (n - first_bad) * dtype.itemsize
        recs = recs[:first_bad]

    starts, complete = _frame_starts(recs, path, start, dtype.itemsize)
    if complete < len(recs):
        dropped += (len(recs) - complete) * dtype.itemsize
        reasons.append("the last frame has only some of its bodies")
        recs = recs[:complete]
        starts = starts[starts < complete]

    counts = recs["n_bodies"][starts].astype(np.int64)
    body_rows = recs["n_bodies"] > 0
    bodies = recs[body_rows] if not body_rows.all() else recs
    return Recording(
        layout=layout,
        t=recs["t"][starts].copy(),
        seq=recs["seq"][starts].copy(),
        body_offsets=np.concatenate([[0], np.cumsum(counts)]),
        track_ids=bodies["track_id"].copy(),
        joints=bodies["joints"].copy(),
        confidence=bodies["confidence"].copy(),
        sensor_id=str(header.get("sensor_id", "unknown")),
        rate_hz=header.get("nominal_rate_hz"),
        units=str(header.get("units", "m")),
        metadata=dict(header.get("metadata") or {}),
        truncation=Truncation(len(starts), dropped, "; ".join(reasons)) if dropped else None,
    )


def _frame_starts(recs: np.ndarray, path: Path, start: int, size: int) -> tuple[np.ndarray, int]:
    """Indices of each frame's first record, and how many records form complete frames.

    A frame is ``max(n_bodies, 1)`` consecutive records numbered 0.. with one seq.
    Only the last frame may be incomplete (cut off by a crash); anything else is corruption.
    """
    if len(recs) == 0:
        return np.zeros(0, np.int64), 0
    body_index = recs["body_index"].astype(np.int64)
    starts = np.flatnonzero(body_index == 0)
    if len(starts) == 0 or starts[0] != 0:
        raise FormatError(path, f"record 0 (byte {start})", "first record does not start a frame")
    expected = np.maximum(recs["n_bodies"][starts].astype(np.int64), 1)
    lengths = np.diff(np.append(starts, len(recs)))
    frame_of = np.repeat(np.arange(len(starts)), lengths)
    position = np.arange(len(recs)) - starts[frame_of]
    consistent = (
        (body_index == position)
        & (recs["n_bodies"] == recs["n_bodies"][starts][frame_of])
        & (recs["seq"] == recs["seq"][starts][frame_of])
    )
    wrong = np.flatnonzero((lengths != expected) | ~np.logical_and.reduceat(consistent, starts))
    if len(wrong) == 0:
        return starts, len(recs)
    if wrong[0] == len(starts) - 1 and lengths[-1] < expected[-1] and consistent[starts[-1] :].all():
        return starts[:-1], int(starts[-1])
    k = int(wrong[0])
    raise FormatError(
        path,
        f"frame {k} (record {starts[k]}, byte {start + starts[k] * size})",
        f"expected {expected[k]} body records numbered 0..{expected[k] - 1} with one seq, found {lengths[k]}",
    )
