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

The reader trusts nothing: the header is read from the first bytes and refused over
``framed_header.MAX_HEADER_BYTES`` (so a wrong file is refused without reading it all), its fields are
type-checked, records are read in chunks and reading stops at the first bad one (memory
follows the intact records, not the file size), and the values pass ``Recording.problem``.
NaN joints are kept: a sensor reports a joint it lost that way. Files are created 0600.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, InputError
from sensors.formats._io import checked, open_regular
from sensors.formats.framed_header import header_bytes, read_header, record_checksums
from sensors.frame import Frame
from sensors.layouts import Layout
from sensors.recording import (
    Recording,
    Truncation,
    confidence_problem,
    joint_problem,
    metadata_problem,
    rate_problem,
    time_problem,
)

MAGIC = b"\x89GWREC\r\n"
VERSION = 1
SUFFIX = ".gwrec"
_SYNC = 0x31524257  # b"WBR1"
_CHECK_SEED = 0x9E3779B9
_CHUNK_BYTES = 64 * 2**20
_BODY_FIELDS = ("track_id", "joints", "confidence")
_FIELDS = ("n_bodies", "body_index", "seq", "t", *_BODY_FIELDS)


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
    return record_checksums(records, _CHECK_SEED)


def _validate_body_data(
    layout: Layout, units: str, track_ids: np.ndarray, joints: np.ndarray, confidence: np.ndarray, where: str
) -> None:
    j = layout.num_joints
    if joints.ndim != 3 or joints.shape[1:] != (j, 3):
        raise InputError(f"{where}: joints of shape {joints.shape}, expected [bodies, {j}, 3] for layout {layout.name}")
    if confidence.shape != joints.shape[:2] or track_ids.shape != joints.shape[:1]:
        raise InputError(f"{where}: {len(track_ids)} track ids, confidence {confidence.shape}, joints {joints.shape}")
    for problem in (joint_problem(joints, units), confidence_problem(confidence)):
        if problem is not None:
            row, joint, what = problem
            raise InputError(f"{where}, body {row}, joint {joint} ({layout.joints[joint]}): {what}")
    if len(track_ids) > 0xFFFF:
        raise InputError(f"{where}: {len(track_ids)} bodies in one frame, at most 65535")


def _header_problem(sensor_id: object, rate_hz: object, units: object, metadata: object) -> str | None:
    """What the reader refuses in a header's fields; the writer refuses the same before it creates a file."""
    fields = (("sensor id", sensor_id), ("units", units))
    text = [f"{name} {value!r:.40}: expected text" for name, value in fields if not isinstance(value, str)]
    return next((p for p in (rate_problem(rate_hz), metadata_problem(metadata), *text) if p), None)


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
    An existing file is never overwritten unless ``overwrite`` is set. The file is created 0600
    (recordings are biometric data), and nothing the reader would refuse is written.
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
        self.units = units
        metadata = {} if metadata is None else metadata
        problem = _header_problem(sensor_id, rate_hz, units, metadata)
        if problem:
            raise InputError(f"{self.path}: {problem}")
        header = {
            "format": "gaitwatch-recording",
            "layout": layout.to_dict(),
            "units": units,
            "sensor_id": sensor_id,
            "nominal_rate_hz": rate_hz,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "metadata": metadata,
        }
        data = header_bytes(MAGIC, VERSION, header)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            self._fd: int | None = atomic.open_private(self.path, flags)
        except FileExistsError:
            raise InputError(f"{self.path}: already exists; refusing to overwrite a recording") from None
        except OSError as err:
            raise InputError(f"{self.path}: cannot create ({err.strerror})") from None
        try:
            self._write(data)
            os.fsync(self._fd)
        except OSError as err:
            self._abandon()
            raise InputError(f"{self.path}: cannot write ({err.strerror})") from None
        self._fsync_every_s = fsync_every_s
        self._last_sync = time.monotonic()
        self._last_t = -np.inf
        self.frames_written = 0

    def _abandon(self) -> None:
        """Close and remove the file this writer created (a header alone is no recording)."""
        os.close(self._fd)
        self._fd = None
        self.path.unlink(missing_ok=True)

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
        where = f"{self.path}, frame seq {int(seq[0])}"
        _validate_body_data(self.layout, self.units, track_ids, joints, confidence, where)
        problem = time_problem(t.astype(np.float64), self._last_t)
        if problem is not None:
            raise InputError(f"{self.path}, frame seq {int(seq[problem[0]])}: {problem[1]}")
        recs = _records(
            self.layout, np.asarray(seq), np.asarray(t), np.asarray(body_offsets), track_ids, joints, confidence
        )
        self._write(recs.tobytes())
        self.frames_written += len(seq)
        self._last_t = float(t[-1])
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
        try:
            writer.write_recording(recording)
        except BaseException:
            writer._abandon()
            raise
    atomic.commit(partial, path)


def read_gwrec(path: str | Path) -> Recording:
    """Read a ``.gwrec`` file; a torn or incomplete tail is dropped and reported in ``truncation``."""
    path = Path(path)
    with open_regular(path) as stream:
        header, layout, start = _read_header(stream, path)
        dtype = record_dtype(layout.num_joints)
        chunks, dropped, reasons = _read_records(stream, path, start, dtype)
    recs = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in _FIELDS}
    del chunks  # the columns are copies: the file's bytes need not stay in memory beside them

    starts, complete = _frame_starts(recs, path, start, dtype.itemsize)
    if complete < len(recs["seq"]):
        dropped += (len(recs["seq"]) - complete) * dtype.itemsize
        reasons.append("the last frame has only some of its bodies")
        recs = {name: column[:complete] for name, column in recs.items()}
        starts = starts[starts < complete]

    counts = recs["n_bodies"][starts].astype(np.int64)
    body_rows = recs["n_bodies"] > 0
    bodies = recs if body_rows.all() else {name: recs[name][body_rows] for name in _BODY_FIELDS}
    recording = Recording(
        layout=layout,
        t=recs["t"][starts],
        seq=recs["seq"][starts],
        body_offsets=np.concatenate([[0], np.cumsum(counts)]),
        track_ids=bodies["track_id"],
        joints=bodies["joints"],
        confidence=bodies["confidence"],
        sensor_id=header.get("sensor_id", "unknown"),
        rate_hz=header.get("nominal_rate_hz"),
        units=header.get("units", "m"),
        metadata=header.get("metadata", {}),
        truncation=Truncation(len(starts), dropped, "; ".join(reasons)) if dropped else None,
    )
    return checked(recording, path)


def _read_header(stream: BinaryIO, path: Path) -> tuple[dict, Layout, int]:
    """The JSON header, its fields type-checked, its layout and the byte offset where records start; read from
    the first bytes only."""
    header, end = read_header(stream, path, MAGIC, VERSION, "a gaitwatch recording")
    problem = _header_problem(
        header.get("sensor_id", ""), header.get("nominal_rate_hz"), header.get("units", ""), header.get("metadata", {})
    )
    if problem:
        raise FormatError(path, "header", problem)
    try:
        layout = Layout.from_dict(header.get("layout"))
    except ValueError as err:
        raise FormatError(path, "header", str(err)) from None
    return header, layout, end


def _read_records(stream: BinaryIO, path: Path, start: int, dtype: np.dtype) -> tuple[list[np.ndarray], int, list[str]]:
    """The intact records before the first bad one (in chunks), the bytes dropped after them, and why.

    Read in chunks: a bad record stops what is kept, and what follows is only counted, so memory
    follows the intact records however large (or sparse) the file is.
    """
    size = dtype.itemsize
    kept: list[np.ndarray] = []
    n, first_bad, intact_after, partial = 0, None, 0, 0
    expected = os.fstat(stream.fileno()).st_size - start  # a hint: the file may grow while it is read
    chunk = np.empty(max(1, min(_CHUNK_BYTES, max(expected + size, 2**20)) // size), dtype)
    while True:
        got = _fill(stream, path, chunk.view(np.uint8))
        recs = chunk[: got // size]
        valid = _intact(recs)
        if first_bad is not None:
            intact_after += int(valid.sum())
        elif valid.all():
            kept.append(recs)
            chunk = np.empty_like(chunk)
        else:  # keep a copy of the good part; the chunk is reused to count what follows
            k = int(np.argmin(valid))
            kept.append(recs[:k].copy())
            first_bad, intact_after = n + k, int(valid[k:].sum())
        n += len(recs)
        if got < chunk.nbytes:
            partial = got % size
            break
    reasons = [f"{partial} bytes of a partly written record"] if partial else []
    if first_bad is not None:
        if intact_after:
            reasons.append(
                f"corrupt record {first_bad} (byte {start + first_bad * size}); "
                f"{intact_after} intact records after it not read"
            )
        else:
            reasons.append(f"{n - first_bad} torn or unwritten records at the end")
    return kept, partial + (n - sum(map(len, kept))) * size, reasons


def _fill(stream: BinaryIO, path: Path, buffer: np.ndarray) -> int:
    """Read into ``buffer`` until it is full or the file ends; the number of bytes read."""
    view, got = memoryview(buffer), 0
    while got < len(view):
        try:
            n = stream.readinto(view[got:])
        except OSError as err:
            raise FormatError(path, "", f"cannot read ({err.strerror})") from None
        if not n:
            break
        got += n
    return got


def _intact(recs: np.ndarray) -> np.ndarray:
    """Whether each record has the sync word and a matching check word (checksums only where the sync matches)."""
    valid = recs["sync"] == _SYNC
    if valid.all():
        return recs["check"] == _checksums(recs)
    rows = np.flatnonzero(valid)
    valid[rows] = recs["check"][rows] == _checksums(recs[rows])
    return valid


def _frame_starts(recs: dict[str, np.ndarray], path: Path, start: int, size: int) -> tuple[np.ndarray, int]:
    """Indices of each frame's first record, and how many records form complete frames.

    A frame is ``max(n_bodies, 1)`` consecutive records numbered 0.. with one seq.
    Only the last frame may be incomplete (cut off by a crash); anything else is corruption.
    """
    total = len(recs["seq"])
    if total == 0:
        return np.zeros(0, np.int64), 0
    body_index = recs["body_index"].astype(np.int64)
    starts = np.flatnonzero(body_index == 0)
    if len(starts) == 0 or starts[0] != 0:
        raise FormatError(path, f"record 0 (byte {start})", "first record does not start a frame")
    expected = np.maximum(recs["n_bodies"][starts].astype(np.int64), 1)
    lengths = np.diff(np.append(starts, total))
    frame_of = np.repeat(np.arange(len(starts)), lengths)
    position = np.arange(total) - starts[frame_of]
    consistent = (
        (body_index == position)
        & (recs["n_bodies"] == recs["n_bodies"][starts][frame_of])
        & (recs["seq"] == recs["seq"][starts][frame_of])
    )
    wrong = np.flatnonzero((lengths != expected) | ~np.logical_and.reduceat(consistent, starts))
    if len(wrong) == 0:
        return starts, total
    if wrong[0] == len(starts) - 1 and lengths[-1] < expected[-1] and consistent[starts[-1] :].all():
        return starts[:-1], int(starts[-1])
    k = int(wrong[0])
    raise FormatError(
        path,
        f"frame {k} (record {starts[k]}, byte {start + starts[k] * size})",
        f"expected {expected[k]} body records numbered 0..{expected[k] - 1} with one seq, found {lengths[k]}",
    )
