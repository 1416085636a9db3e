"""Strict reader of NTU RGB+D ``.skeleton`` files: Kinect v2 skeletons as whitespace-separated text.

Why: NTU RGB+D (60 and 120) is the de-facto exchange format for Kinect v2
skeleton recordings, so reading it gives gaitwatch a large body of labelled
Kinect v2 data. Its file names carry the labels (``SsssCcccPpppRrrrAaaa``:
setup, camera, performer, replication, action).

The format, as written by the dataset's authors and read by their
``Matlab/read_skeleton_file.m``; one record per line (the wrapped records
below are one line each)::

    <frameCount>
    per frame:   <bodyCount>
    per body:    <bodyID> <clipedEdges> <handLeftConfidence> <handLeftState> <handRightConfidence>
                 <handRightState> <isRestricted> <leanX> <leanY> <trackingState>
                 <jointCount>                                   (25, Kinect SDK 2.0 JointType order)
    per joint:   <x> <y> <z> <depthX> <depthY> <colorX> <colorY>
                 <orientationW> <orientationX> <orientationY> <orientationZ> <trackingState>

x, y, z are camera space in metres; a joint's tracking state is 0 (not
tracked), 1 (inferred) or 2 (tracked) and becomes confidence 0, 0.5 or 1. The
files carry no timestamps: frames are placed at the Kinect's nominal 30 Hz.

How: the file is split into lines once; a small walk over the count and body
lines finds where each body's 25 joint lines start, and all joint lines of the
file are then parsed in one ``np.loadtxt`` call. Only when that bulk parse
fails are the joint lines checked one by one, to say exactly which line is
wrong and why. Every malformed input raises ``FormatError`` naming the file, the
(1-based) line and what was expected; the first problem in file order wins.
Non-finite values are refused in x, y, z only; the other columns (image
coordinates, orientation) are not used here and need only be numbers, since
the Kinect SDK's coordinate mapper may mark points it cannot map with a
non-finite sentinel; x, y, z must also lie within ``MAX_ABS_METRES``. A tracking
state is read as a number, so "2.0" counts as 2. Counts and body ids longer than
``_MAX_DIGITS`` are refused before ``int()`` (which refuses over 4,300 digits itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from sensors.errors import FormatError
from sensors.formats._io import checked, read_bytes
from sensors.layouts import KINECT_V2
from sensors.recording import MAX_ABS_METRES, Recording

SUFFIX = ".skeleton"
RATE_HZ = 30.0
SENSOR_ID = "ntu-rgbd"
NUM_JOINTS = 25
BODY_FIELDS = (
    "bodyID",
    "clipedEdges",
    "handLeftConfidence",
    "handLeftState",
    "handRightConfidence",
    "handRightState",
    "isRestricted",
    "leanX",
    "leanY",
    "trackingState",
)
JOINT_FIELDS = (
    "x",
    "y",
    "z",
    "depthX",
    "depthY",
    "colorX",
    "colorY",
    "orientationW",
    "orientationX",
    "orientationY",
    "orientationZ",
    "trackingState",
)
STATE_CONFIDENCE = np.array([0.0, 0.5, 1.0], np.float32)
"""Confidence for joint tracking state 0 (not tracked), 1 (inferred), 2 (tracked)."""

NAME_FIELDS = ("setup", "camera", "performer", "replication", "action")
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_UINT = re.compile(r"\d+")
_INT = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE)
_BODY_INT_FIELDS = (1, 2, 3, 4, 5, 6, 9)
_BODY_FLOAT_FIELDS = (7, 8)
_MAX_TRACK_ID = 2**63 - 1
_MAX_DIGITS = 19  # 2**63 - 1 has 19 digits


class _Malformed(Exception):
    """A problem at a 0-based line index; the reader turns it into a ``FormatError``."""

    def __init__(self, index: int, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


@dataclass
class _Structure:
    """What the walk over count and body lines found, up to where it stopped."""

    num_frames: int = 0
    body_counts: list[int] = field(default_factory=list)
    track_ids: list[int] = field(default_factory=list)
    joint_starts: list[int] = field(default_factory=list)  # 0-based line index of each body's first joint line


def parse_sample_name(name: str | Path) -> dict[str, int] | None:
    """Labels from a standard NTU file name ``SsssCcccPpppRrrrAaaa[.skeleton]``; None if it is not one."""
    stem = Path(name).name
    if stem.endswith(SUFFIX):
        stem = stem[: -len(SUFFIX)]
    match = _NAME.fullmatch(stem)
    if match is None:
        return None
    return dict(zip(NAME_FIELDS, (int(g) for g in match.groups()), strict=True))


def read_ntu_skeleton(path: str | Path) -> Recording:
    """Read an NTU RGB+D ``.skeleton`` file as a Kinect v2 recording at 30 Hz; malformed input raises FormatError."""
    path = Path(path)
    lines = _read_lines(path)
    structure = _Structure()
    try:
        try:
            _walk(lines, structure)
            structural = None
        except _Malformed as err:
            structural = err  # joint lines before it may hold an earlier problem: check them first
        joints, confidence = _parse_joints(lines, structure.joint_starts)
        if structural is not None:
            raise structural
    except _Malformed as err:
        raise FormatError(path, f"line {err.index + 1}", err.problem) from None
    return checked(_recording(path, structure, joints, confidence), path)


def _read_lines(path: Path) -> list[str]:
    """The file's lines without line ends, trailing blank lines dropped; an empty file is an error."""
    data = read_bytes(path)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FormatError(path, f"line {line}", f"byte 0x{data[err.start]:02x} is not ASCII text") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise FormatError(path, "line 1", "empty file: expected the frame count")
    return lines


def _walk(lines: list[str], s: _Structure) -> None:
    """Check the frame, body and joint count lines and body lines; note where each joint block starts."""
    s.num_frames = _count(lines, 0, "the frame count")
    i = 1
    for f in range(s.num_frames):
        if i >= len(lines):
            raise _Malformed(i, f"file ends after {f} of {s.num_frames} frames: frame {f} (counting from 0) is missing")
        n_bodies = _count(lines, i, f"the body count of frame {f}")
        i += 1
        for b in range(n_bodies):
            s.track_ids.append(_body_line(lines, _need(lines, i, f, s.num_frames, f"the body line of body {b}")))
            i += 1
            joint_count = _count(lines, _need(lines, i, f, s.num_frames, f"the joint count of body {b}"), "joint count")
            if joint_count != NUM_JOINTS:
                raise _Malformed(i, f"joint count {joint_count}, expected {NUM_JOINTS} (Kinect v2)")
            i += 1
            if i + NUM_JOINTS > len(lines):
                what = f"joint line {len(lines) - i + 1} of {NUM_JOINTS} of body {b}"
                raise _ends_inside(len(lines), f, s.num_frames, what)
            s.joint_starts.append(i)
            i += NUM_JOINTS
        s.body_counts.append(n_bodies)
    extra = next((k for k in range(i, len(lines)) if lines[k].strip()), None)
    if extra is not None:
        raise _Malformed(extra, f"unexpected content after the last of {s.num_frames} frames: {_preview(lines[extra])}")


def _need(lines: list[str], i: int, frame: int, num_frames: int, what: str) -> int:
    """``i`` if line ``i`` exists, else the error for a file that ends inside ``frame``."""
    if i >= len(lines):
        raise _ends_inside(i, frame, num_frames, what)
    return i


def _ends_inside(i: int, frame: int, num_frames: int, what: str) -> _Malformed:
    """The error for a file that ends at line index ``i``, inside ``frame``."""
    return _Malformed(i, f"file ends inside frame {frame} (counting from 0) of {num_frames}: expected {what}")


def _count(lines: list[str], i: int, what: str) -> int:
    """The non-negative integer alone on line ``i``."""
    tokens = lines[i].split()
    if len(tokens) != 1 or not _UINT.fullmatch(tokens[0]):
        raise _Malformed(i, f"expected {what} (one non-negative integer), found {_preview(lines[i])}")
    if len(tokens[0]) > _MAX_DIGITS:
        raise _Malformed(i, f"{what}: a {len(tokens[0])}-digit number, expected at most {_MAX_DIGITS} digits")
    return int(tokens[0])


def _body_line(lines: list[str], i: int) -> int:
    """Check a body line's 10 values; return its bodyID (the track id)."""
    tokens = lines[i].split()
    if len(tokens) != len(BODY_FIELDS):
        raise _Malformed(
            i, f"expected a body line of {len(BODY_FIELDS)} values ({' '.join(BODY_FIELDS)}), found {len(tokens)}"
        )
    if not _UINT.fullmatch(tokens[0]):
        raise _Malformed(i, f"bodyID {_preview(tokens[0])} is not a non-negative integer")
    body_id = int(tokens[0]) if len(tokens[0]) <= _MAX_DIGITS else _MAX_TRACK_ID + 1
    if body_id > _MAX_TRACK_ID:
        raise _Malformed(i, f"bodyID {body_id} does not fit a signed 64-bit track id")
    for k in _BODY_INT_FIELDS:
        if not _INT.fullmatch(tokens[k]):
            raise _Malformed(i, f"{BODY_FIELDS[k]} {_preview(tokens[k])} is not an integer")
    for k in _BODY_FLOAT_FIELDS:
        if not _NUMBER.fullmatch(tokens[k]):
            raise _Malformed(i, f"{BODY_FIELDS[k]} {_preview(tokens[k])} is not a number")
    return body_id


def _parse_joints(lines: list[str], starts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """All joint blocks at once: positions float32 [B, 25, 3] and confidence float32 [B, 25]."""
    if not starts:
        return np.zeros((0, NUM_JOINTS, 3), np.float32), np.zeros((0, NUM_JOINTS), np.float32)
    joint_lines = list(chain.from_iterable(lines[s : s + NUM_JOINTS] for s in starts))
    try:
        values = np.loadtxt(joint_lines, dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        values = None
    if values is None or values.shape != (len(joint_lines), len(JOINT_FIELDS)):
        _check_joint_lines(lines, starts)
        raise _Malformed(starts[0], "joint lines could not be read as numbers")  # not reached for known problems
    values = values.reshape(len(starts), NUM_JOINTS, len(JOINT_FIELDS))
    xyz = values[..., :3]
    state = values[..., 11]
    bad_position = ~(np.abs(xyz) <= MAX_ABS_METRES).all(axis=-1)  # NaN, inf and what float32 would make inf
    bad_state = ~np.isin(state, (0, 1, 2))
    if bad_position.any() or bad_state.any():
        b, j = (int(v) for v in np.argwhere(bad_position | bad_state)[0])
        if bad_position[b, j]:
            problem = f"position {values[b, j, :3]} is not finite or beyond ±{MAX_ABS_METRES:g} m"
        else:
            problem = f"tracking state {state[b, j]:g}, expected 0 (not tracked), 1 (inferred) or 2 (tracked)"
        raise _Malformed(starts[b] + j, f"{_joint_name(j)}: {problem}")
    return xyz.astype(np.float32), STATE_CONFIDENCE[state.astype(np.int64)]


def _check_joint_lines(lines: list[str], starts: list[int]) -> None:
    """Slow path: find the first joint line that is not 12 numbers and say why."""
    for start in starts:
        for j in range(NUM_JOINTS):
            tokens = lines[start + j].split()
            if len(tokens) != len(JOINT_FIELDS):
                raise _Malformed(
                    start + j,
                    f"{_joint_name(j)}: expected a joint line of {len(JOINT_FIELDS)} numbers "
                    f"({' '.join(JOINT_FIELDS)}), found {len(tokens)} values",
                )
            for name, token in zip(JOINT_FIELDS, tokens, strict=True):
                if not _NUMBER.fullmatch(token):
                    raise _Malformed(start + j, f"{_joint_name(j)}: {name} {_preview(token)} is not a number")


def _joint_name(j: int) -> str:
    return f"joint {j} ({KINECT_V2.joints[j]})"


def _preview(text: str, limit: int = 40) -> str:
    """A short quoted rendering of offending text for messages."""
    text = text.strip()
    if not text:
        return "an empty line"
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _recording(path: Path, s: _Structure, joints: np.ndarray, confidence: np.ndarray) -> Recording:
    """Assemble the Recording: 30 Hz times, bodyIDs as track ids, labels from the file name."""
    n = s.num_frames
    labels = parse_sample_name(path)
    metadata: dict = {"dataset": "ntu-rgbd", **(labels or {})}
    if labels:
        metadata["person"] = f"P{labels['performer']:03d}"  # the label key every reader shares
    metadata["source"] = str(path)
    sensor_id = f"{SENSOR_ID}-C{labels['camera']:03d}" if labels else SENSOR_ID
    return Recording(
        layout=KINECT_V2,
        t=np.arange(n, dtype=np.float64) / RATE_HZ,
        seq=np.arange(n, dtype=np.int64),
        body_offsets=np.concatenate([[0], np.cumsum(s.body_counts, dtype=np.int64)]).astype(np.int64),
        track_ids=np.array(s.track_ids, dtype=np.int64),
        joints=joints,
        confidence=confidence,
        sensor_id=sensor_id,
        rate_hz=RATE_HZ,
        units="m",
        metadata=metadata,
    )
