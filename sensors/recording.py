"""A recording: a whole sequence of frames from one sensor, held as flat arrays.

Bodies of all frames are stacked into one array; ``body_offsets`` says which rows
belong to which frame (bodies of frame i are rows ``body_offsets[i]:body_offsets[i+1]``).
Every file reader returns this, every writer takes it, and frames are views into it.

Files are untrusted, so every reader checks what it returns with ``Recording.problem``
(vectorised, a few passes over the arrays): coordinates finite or NaN (a joint the sensor
lost) and within ``MAX_ABS_METRES`` of the origin, confidences in [0, 1], frame times finite,
within ``MAX_ABS_TIME_S``, non-decreasing and spanning at most ``MAX_SPAN_S``, each track
at most once a frame, a nominal rate within bounds, and metadata a JSON object of bounded depth.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from sensors.errors import InputError
from sensors.frame import Frame
from sensors.layouts import Layout

MAX_ABS_METRES = 1e4
"""Farthest a joint may be from its sensor's origin, in metres (10 km: beyond any room, street or stadium)."""
MAX_ABS_OTHER_UNITS = 1e6
"""The same bound for coordinates in units that are not lengths (image pixels of 2D layouts)."""
METRES_PER_UNIT = {"m": 1.0, "cm": 0.01, "mm": 0.001}
MAX_ABS_TIME_S = 1e10
"""Largest capture time, seconds (Unix time until the year 2286; any sensor clock)."""
MAX_SPAN_S = 1e6
"""Longest recording, seconds (11.6 days): longer spans are corrupt times, and resampling would allocate them."""
MIN_RATE_HZ, MAX_RATE_HZ = 1e-3, 1e4
"""Nominal frame rates a recording may claim: the duration adds one period, so 1 / rate must stay small and finite."""
MAX_METADATA_DEPTH = 32
"""Deepest nesting of labels (a few levels are used); bounds any code that walks them."""


@dataclass(frozen=True)
class Truncation:
    """What a reader left out at the end of a file that stopped mid-write."""

    complete_frames: int
    dropped_bytes: int
    reason: str


@dataclass
class Recording:
    layout: Layout
    t: np.ndarray  # float64 [T] capture time, seconds
    seq: np.ndarray  # int64 [T]
    body_offsets: np.ndarray  # int64 [T + 1]
    track_ids: np.ndarray  # int64 [B]
    joints: np.ndarray  # float32 [B, J, 3]
    confidence: np.ndarray  # float32 [B, J]
    sensor_id: str = "unknown"
    rate_hz: float | None = None  # nominal frame rate
    units: str = "m"
    metadata: dict = field(default_factory=dict)  # labels (person, walk, ...) and provenance
    truncation: Truncation | None = None

    def __post_init__(self) -> None:
        n_frames, n_bodies, n_joints = len(self.t), len(self.track_ids), self.layout.num_joints
        problems = []
        if len(self.seq) != n_frames:
            problems.append(f"seq has {len(self.seq)} entries for {n_frames} frames")
        if len(self.body_offsets) != n_frames + 1 or self.body_offsets[0] != 0 or self.body_offsets[-1] != n_bodies:
            problems.append("body_offsets do not span the bodies")
        if self.joints.shape != (n_bodies, n_joints, 3):
            problems.append(f"joints shape {self.joints.shape}, expected {(n_bodies, n_joints, 3)}")
        if self.confidence.shape != (n_bodies, n_joints):
            problems.append(f"confidence shape {self.confidence.shape}, expected {(n_bodies, n_joints)}")
        if problems:
            raise ValueError("inconsistent recording: " + "; ".join(problems))

    def problem(self) -> tuple[str, str] | None:
        """The first value a valid recording cannot hold, as (where, what was expected); None when all are valid."""
        return (
            _rate_problem(self.rate_hz)
            or _metadata_problem(self.metadata)
            or _text_problem(self.sensor_id, "sensor id")
            or _text_problem(self.units, "units")
            or _time_problem(self.t, self.seq)
            or self._body_problem()
        )

    def _body_problem(self) -> tuple[str, str] | None:
        """Joints, confidences and track ids, located by frame, track and joint."""
        problem = joint_problem(self.joints, self.units) or confidence_problem(self.confidence)
        if problem is None:
            problem = _repeated_track(self.track_ids, self.body_offsets)
            if problem is not None:
                row, what = problem
                return f"frame {self._frame_of(row)}", what
            return None
        row, joint, what = problem
        name = self.layout.joints[joint]
        return f"frame {self._frame_of(row)}, track {self.track_ids[row]}, joint {joint} ({name})", what

    def _frame_of(self, row: int) -> int:
        return int(np.searchsorted(self.body_offsets, row, side="right")) - 1

    @staticmethod
    def single_body(
        layout: Layout,
        joints: np.ndarray,
        rate_hz: float,
        *,
        confidence: np.ndarray | None = None,
        track_id: int = 0,
        sensor_id: str = "unknown",
        metadata: dict | None = None,
        t0: float = 0.0,
    ) -> Recording:
        """One body in every frame, times synthesised at ``rate_hz`` (for files without timestamps)."""
        n = len(joints)
        if confidence is None:
            confidence = np.ones(joints.shape[:2], np.float32)
        return Recording(
            layout=layout,
            t=t0 + np.arange(n, dtype=np.float64) / rate_hz,
            seq=np.arange(n, dtype=np.int64),
            body_offsets=np.arange(n + 1, dtype=np.int64),
            track_ids=np.full(n, track_id, np.int64),
            joints=np.ascontiguousarray(joints, dtype=np.float32),
            confidence=np.ascontiguousarray(confidence, dtype=np.float32),
            sensor_id=sensor_id,
            rate_hz=rate_hz,
            metadata=dict(metadata or {}),
        )

    @property
    def num_frames(self) -> int:
        return len(self.t)

    @property
    def num_body_frames(self) -> int:
        return len(self.track_ids)

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        """Seconds from the first frame to one nominal period past the last."""
        if self.num_frames == 0:
            return 0.0
        period = 1.0 / self.rate_hz if self.rate_hz else 0.0
        return float(self.t[-1] - self.t[0]) + period

    @property
    def frame_index_of_body(self) -> np.ndarray:
        """For each body row, the index of its frame."""
        return np.repeat(np.arange(self.num_frames), np.diff(self.body_offsets))

    def unique_tracks(self) -> np.ndarray:
        return np.unique(self.track_ids)

    def frame(self, i: int) -> Frame:
        a, b = self.body_offsets[i], self.body_offsets[i + 1]
        return Frame(
            self.sensor_id,
            int(self.seq[i]),
            float(self.t[i]),
            self.layout,
            self.track_ids[a:b],
            self.joints[a:b],
            self.confidence[a:b],
        )

    def frames(self) -> Iterator[Frame]:
        offsets = self.body_offsets.tolist()
        seqs, times = self.seq.tolist(), self.t.tolist()
        for i in range(self.num_frames):
            a, b = offsets[i], offsets[i + 1]
            yield Frame(
                self.sensor_id,
                seqs[i],
                times[i],
                self.layout,
                self.track_ids[a:b],
                self.joints[a:b],
                self.confidence[a:b],
            )

    def track(self, track_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One track as a single-body sequence: (t [n], joints [n, J, 3], confidence [n, J])."""
        rows = np.flatnonzero(self.track_ids == track_id)
        return self.t[self.frame_index_of_body[rows]], self.joints[rows], self.confidence[rows]

    def track_labels(self, track_id: int) -> dict:
        """A track's labels: the recording's metadata, overridden by that track's own entry."""
        labels = {key: val for key, val in self.metadata.items() if key != "tracks"}
        labels.update(self.metadata.get("tracks", {}).get(str(track_id), {}))
        return labels

    def renumbered_tracks(self, first_id: int) -> tuple[np.ndarray, dict[int, dict]]:
        """Track ids renumbered first_id, first_id + 1, ... (per body row) and each new id's labels.

        Bodies without an id (negative: a pose estimator's) keep -1, so the node's tracker associates them
        as it would live; several such bodies in one frame are different people, never one track."""
        known = self.track_ids >= 0
        old_ids, local = np.unique(self.track_ids[known], return_inverse=True)
        labels = {first_id + k: self.track_labels(old) for k, old in enumerate(old_ids.tolist())}
        renumbered = np.full(len(self.track_ids), -1, np.int64)
        renumbered[known] = first_id + local
        return renumbered, labels

    def with_body_data(self, layout: Layout, joints: np.ndarray, confidence: np.ndarray, **changes) -> Recording:
        """The same frames and tracks with other per-body data (for layout mapping)."""
        return replace(self, layout=layout, joints=joints, confidence=confidence, **changes)

    @staticmethod
    def concatenate(recordings: list[Recording], *, gap_s: float = 1.0) -> Recording:
        """Play recordings one after another: times shifted to follow on, tracks renumbered apart.

        Tracks are renumbered 0, 1, 2, ... in order of appearance so that no two
        inputs share an id; each input's metadata (its labels) is kept per track
        under ``metadata["tracks"][str(new_id)]``.
        """
        if not any(r.num_frames for r in recordings):
            raise InputError("nothing to concatenate: every recording is empty")
        layout = recordings[0].layout
        for r in recordings[1:]:
            if r.layout != layout:
                raise ValueError(f"cannot concatenate layouts {layout.name} and {r.layout.name}")
        times, seqs, offsets, tracks, joints, confs = [], [], [np.zeros(1, np.int64)], [], [], []
        track_meta: dict[str, dict] = {}
        t_next, seq_next, body_base, next_track = 0.0, 0, 0, 0
        for r in recordings:
            if r.num_frames == 0:
                continue
            new_ids, labels = r.renumbered_tracks(next_track)
            track_meta.update({str(k): v for k, v in labels.items()})
            next_track += len(labels)
            times.append(r.t - r.t[0] + t_next)
            seqs.append(np.arange(r.num_frames, dtype=np.int64) + seq_next)
            offsets.append(r.body_offsets[1:] + body_base)
            tracks.append(new_ids)
            joints.append(r.joints)
            confs.append(r.confidence)
            period = 1.0 / r.rate_hz if r.rate_hz else 0.0
            t_next = float(times[-1][-1]) + period + gap_s
            seq_next += r.num_frames
            body_base += r.num_body_frames
        rates = {r.rate_hz for r in recordings}
        return Recording(
            layout=layout,
            t=np.concatenate(times),
            seq=np.concatenate(seqs),
            body_offsets=np.concatenate(offsets),
            track_ids=np.concatenate(tracks),
            joints=np.concatenate(joints),
            confidence=np.concatenate(confs),
            sensor_id=recordings[0].sensor_id,
            rate_hz=rates.pop() if len(rates) == 1 else None,
            units=recordings[0].units,
            metadata={"tracks": track_meta},
        )


def coordinate_limit(units: str) -> float:
    """Largest absolute coordinate in ``units``: ``MAX_ABS_METRES`` for lengths, ``MAX_ABS_OTHER_UNITS`` otherwise."""
    scale = METRES_PER_UNIT.get(units)
    return MAX_ABS_METRES / scale if scale else MAX_ABS_OTHER_UNITS


def joint_problem(joints: np.ndarray, units: str) -> tuple[int, int, str] | None:
    """(body row, joint, what) of the first coordinate that is infinite or too far; NaN (a lost joint) passes."""
    limit = coordinate_limit(units)
    if joints.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        if np.fmax.reduce(joints, axis=None) <= limit and np.fmin.reduce(joints, axis=None) >= -limit:
            return None
        bad = (np.abs(joints) > limit).any(axis=-1)
    if not bad.any():  # every coordinate NaN
        return None
    row, joint = (int(v) for v in np.argwhere(bad)[0])
    found = ", ".join(f"{v:g}" for v in joints[row, joint].tolist())
    return row, joint, f"coordinates ({found}) {units}: expected finite values within ±{limit:g} {units} (or NaN)"


def confidence_problem(confidence: np.ndarray) -> tuple[int, int, str] | None:
    """(body row, joint, what) of the first confidence outside [0, 1] (NaN included)."""
    if confidence.size == 0 or (confidence.min() >= 0 and confidence.max() <= 1):
        return None
    with np.errstate(invalid="ignore"):
        bad = ~((confidence >= 0) & (confidence <= 1))
    row, joint = (int(v) for v in np.argwhere(bad)[0])
    return row, joint, f"confidence {confidence[row, joint]:g} outside [0, 1]"


def time_problem(t: np.ndarray, previous: float = -math.inf) -> tuple[int, str] | None:
    """(frame, what) of the first time that is not finite, too large or before the one before it."""
    if len(t) == 0:
        return None
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(t) <= MAX_ABS_TIME_S)
        if bad.any():
            k = int(np.argmax(bad))
            return k, f"time {t[k]:g} s: expected a finite number of seconds within ±{MAX_ABS_TIME_S:g}"
        back = np.diff(t, prepend=previous) < 0
    if back.any():
        k = int(np.argmax(back))
        before = t[k - 1] if k else previous
        return k, f"time {t[k]:.9g} s is before the previous frame's {before:.9g} s: expected times in capture order"
    return None


def _time_problem(t: np.ndarray, seq: np.ndarray) -> tuple[str, str] | None:
    problem = time_problem(t)
    if problem is not None:
        k, what = problem
        return f"frame {k} (seq {seq[k]})", what
    if len(t) and t[-1] - t[0] > MAX_SPAN_S:
        return "frames", f"times span {t[-1] - t[0]:g} s: expected at most {MAX_SPAN_S:g} s in one recording"
    return None


def _repeated_track(track_ids: np.ndarray, body_offsets: np.ndarray) -> tuple[int, str] | None:
    """(body row, what) of a track id that appears twice in one frame; only frames of 2+ bodies are sorted."""
    counts = np.diff(body_offsets)
    if len(counts) == 0 or counts.max() < 2:
        return None
    rows = np.flatnonzero(np.repeat(counts > 1, counts) & (track_ids >= 0))  # negative: no id (associated later)
    frames = np.repeat(np.arange(len(counts)), counts)[rows]
    order = np.lexsort((track_ids[rows], frames))
    rows, frames = rows[order], frames[order]
    same = (frames[1:] == frames[:-1]) & (track_ids[rows[1:]] == track_ids[rows[:-1]])
    if not same.any():
        return None
    row = int(rows[1:][np.argmax(same)])
    return row, f"track id {track_ids[row]} appears twice: expected each track at most once a frame"


def rate_problem(rate_hz: object) -> str | None:
    """What is wrong with a nominal frame rate (None, unknown, is allowed)."""
    if rate_hz is None:
        return None
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float, np.floating, np.integer)):
        return f"nominal rate {rate_hz!r}: expected a number of frames per second"
    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        return f"nominal rate {rate_hz!r} Hz: expected {MIN_RATE_HZ:g} to {MAX_RATE_HZ:g} frames per second"
    return None


def _rate_problem(rate_hz: object) -> tuple[str, str] | None:
    problem = rate_problem(rate_hz)
    return None if problem is None else ("", problem)


def metadata_problem(metadata: object) -> str | None:
    """What keeps ``metadata`` from being labels: a JSON object of bounded depth, ``tracks`` an object of objects."""
    if not isinstance(metadata, dict):
        return f"metadata: expected an object of labels, found {type(metadata).__name__}"
    problem = _json_problem(metadata)
    if problem:
        return f"metadata: {problem}"
    tracks = metadata.get("tracks", {})
    if not isinstance(tracks, dict) or not all(isinstance(labels, dict) for labels in tracks.values()):
        return "metadata tracks: expected an object of per-track label objects"
    return None


def _metadata_problem(metadata: object) -> tuple[str, str] | None:
    problem = metadata_problem(metadata)
    return None if problem is None else ("", problem)


def _json_problem(value: object) -> str | None:
    """Whether ``value`` is plain JSON (string keys, finite numbers) nested at most ``MAX_METADATA_DEPTH`` deep.

    Walked with a stack, not recursion, so a deep value cannot overflow Python's stack here.
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_METADATA_DEPTH:
                return f"nested deeper than {MAX_METADATA_DEPTH} levels"
            if isinstance(item, dict):
                if not all(isinstance(key, str) for key in item):
                    return "expected text keys"
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{item} is not a JSON number"
        elif item is not None and not isinstance(item, (str, int, float)):
            return f"a {type(item).__name__} is not a JSON value"
    return None


def _text_problem(value: object, what: str) -> tuple[str, str] | None:
    if isinstance(value, str) and len(value) <= 1000:
        return None
    return "", f"{what} {str(value)[:40]!r}: expected text of at most 1000 characters"
