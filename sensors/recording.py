"""A recording: a whole sequence of frames from one sensor, held as flat arrays.

Bodies of all frames are stacked into one array; ``body_offsets`` says which rows
belong to which frame (bodies of frame i are rows ``body_offsets[i]:body_offsets[i+1]``).
Every file reader returns this, every writer takes it, and frames are views into it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from sensors.errors import InputError
from sensors.frame import Frame
from sensors.layouts import Layout


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
        """Track ids renumbered first_id, first_id + 1, ... (per body row) and each new id's labels."""
        old_ids, local = np.unique(self.track_ids, return_inverse=True)
        labels = {first_id + k: self.track_labels(old) for k, old in enumerate(old_ids.tolist())}
        return (first_id + local).astype(np.int64), labels

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
