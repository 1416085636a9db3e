"""Recorded skeletons -> model windows: canonical joints, the model's frame rate, whole f-frame windows per track.

Why here: enrollment, offline identification and the live node all feed an encoder the same way,
so the cutting rule lives in one place: frames of one track only, never across a gap in time, and
a window with a missing (NaN) joint is skipped and counted rather than encoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from calibration.mapping import to_canonical
from calibration.resample import resample
from calibration.sensor_pose import SensorPose
from sensors.recording import Recording


@dataclass
class TrackWindows:
    track: int
    labels: dict
    windows: np.ndarray  # float32 [n, f, 20, 3]
    t_start: np.ndarray  # [n] seconds
    t_end: np.ndarray
    skipped: int  # windows dropped for NaN or infinite joints


def track_windows(
    recording: Recording, f: int, rate_hz: float, stride: int | None = None, pose: SensorPose | None = None
) -> Iterator[TrackWindows]:
    """Per track, its whole windows of ``f`` frames at ``rate_hz`` (every ``stride`` frames; default f), in the
    world frame of ``pose`` where given (as the node sees a calibrated sensor's frames)."""
    stride = stride or f
    canonical = to_canonical(recording)
    if pose is not None:
        canonical = replace(canonical, joints=pose.apply(canonical.joints))
    canonical = resample(canonical, rate_hz)
    for track in canonical.unique_tracks().tolist():
        t, joints, _ = canonical.track(track)
        starts = _window_starts(t, f, stride, rate_hz)
        frames = starts[:, None] + np.arange(f)[None, :]
        windows = joints[frames.reshape(-1)].reshape(len(starts), f, *joints.shape[1:]).astype(np.float32)
        finite = np.isfinite(windows).all(axis=(1, 2, 3))  # a track shorter than f has no window at all
        yield TrackWindows(
            track=track,
            labels=canonical.track_labels(track),
            windows=windows[finite],
            t_start=t[starts][finite],
            t_end=t[starts + f - 1][finite] if len(starts) else t[starts],
            skipped=int((~finite).sum()),
        )


def _window_starts(t: np.ndarray, f: int, stride: int, rate_hz: float) -> np.ndarray:
    """First frames of windows that lie within one run of consecutive frames (no time gap)."""
    if len(t) < f:
        return np.zeros(0, np.int64)
    breaks = np.flatnonzero(np.diff(t) > 1.5 / rate_hz) + 1
    starts = []
    for begin, end in zip(np.r_[0, breaks], np.r_[breaks, len(t)], strict=True):
        if end - begin >= f:
            starts.append(np.arange(begin, end - f + 1, stride))
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)
