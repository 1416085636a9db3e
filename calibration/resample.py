"""Resampling skeleton sequences to the model's frame rate (CMU 120 Hz, video 25 Hz, models 30 Hz).

Linear interpolation per track on a regular time grid; never across a gap longer
than ``max_gap_s`` (a lost track is not invented) and never beyond a track's ends.
Confidence takes the weaker of the two neighbouring samples. Gait motion lies well
below the Nyquist frequency of any of these rates, so no anti-alias filter is applied.
"""

from __future__ import annotations

import numpy as np

from sensors.errors import InputError
from sensors.recording import Recording

DEFAULT_MAX_GAP_S = 0.2


def resample_sequence(
    t: np.ndarray,
    joints: np.ndarray,
    confidence: np.ndarray,
    grid: np.ndarray,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate one body's samples (t increasing) at the grid times it covers.

    Returns (kept grid indices, joints [n, J, 3], confidence [n, J]).
    """
    if len(t) == 0:
        return np.zeros(0, np.int64), joints[:0], confidence[:0]
    if np.any(np.diff(t) <= 0):
        raise InputError("sample times must increase strictly")
    if len(t) == 1:
        idx = np.flatnonzero(grid == t[0])
        return idx, joints[[0] * len(idx)], confidence[[0] * len(idx)]
    lo = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 2)
    hi = lo + 1
    w = (grid - t[lo]) / (t[hi] - t[lo])
    on_sample = (w == 0) | (w == 1)
    keep = (grid >= t[0]) & (grid <= t[-1]) & (on_sample | (t[hi] - t[lo] <= max_gap_s))
    idx = np.flatnonzero(keep)
    lo, hi, w = lo[idx], hi[idx], w[idx].astype(np.float32)
    out_joints = joints[lo] * (1 - w)[:, None, None] + joints[hi] * w[:, None, None]
    weaker = np.minimum(confidence[lo], confidence[hi])
    out_conf = np.where((w == 0)[:, None], confidence[lo], np.where((w == 1)[:, None], confidence[hi], weaker))
    return idx, out_joints.astype(np.float32), out_conf.astype(np.float32)


def resample(recording: Recording, rate_hz: float, max_gap_s: float = DEFAULT_MAX_GAP_S) -> Recording:
    """The recording on a regular grid at ``rate_hz`` starting at its first frame, track by track."""
    if not rate_hz > 0:
        raise InputError(f"rate must be positive, got {rate_hz}")
    if recording.num_frames == 0:
        return recording
    t0 = float(recording.t[0])
    n = int(np.floor((float(recording.t[-1]) - t0) * rate_hz + 1e-9)) + 1
    grid = t0 + np.arange(n, dtype=np.float64) / rate_hz
    frame_idx = [np.zeros(0, np.int64)]
    tracks = [np.zeros(0, np.int64)]
    joints = [np.zeros((0, *recording.joints.shape[1:]), np.float32)]
    confs = [np.zeros((0, recording.joints.shape[1]), np.float32)]
    for track in recording.unique_tracks():
        t, j, c = recording.track(int(track))
        idx, jj, cc = resample_sequence(t, j, c, grid, max_gap_s)
        frame_idx.append(idx)
        tracks.append(np.full(len(idx), track, np.int64))
        joints.append(jj)
        confs.append(cc)
    frame_idx = np.concatenate(frame_idx)
    order = np.lexsort((np.concatenate(tracks), frame_idx))
    counts = np.bincount(frame_idx, minlength=n)
    return Recording(
        layout=recording.layout,
        t=grid,
        seq=np.arange(n, dtype=np.int64),
        body_offsets=np.concatenate([[0], np.cumsum(counts)]),
        track_ids=np.concatenate(tracks)[order],
        joints=np.concatenate(joints)[order],
        confidence=np.concatenate(confs)[order],
        sensor_id=recording.sensor_id,
        rate_hz=float(rate_hz),
        units=recording.units,
        metadata=dict(recording.metadata),
    )
