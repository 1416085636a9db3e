"""Silhouettes -> windows per track: f aligned silhouettes of one person, never across a gap in time.

Why the same rule as skeleton windows (``stream/windows.py``, ``stream/node/ring.py``): the two channels of a
track must cover the same stretches of a walk, so a window is whole frames of one track, a gap longer than
``max_gap_s`` starts over, and with ``rate_hz`` the frames are put on the model's time grid. A silhouette
cannot be interpolated like a joint, so each grid time takes the nearest silhouette of its stretch (a camera
slower than the model repeats frames, a faster one skips some).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sensors.errors import InputError
from sensors.formats.gwsil import SilhouetteRecords
from sensors.recording import Recording

MAX_GAP_S = 0.2  # as the skeleton rings: a person unseen this long starts a new stretch


@dataclass
class SilhouetteWindows:
    track: int
    windows: np.ndarray  # uint8 [n, f, 64, 44]
    t_start: np.ndarray  # [n] seconds
    t_end: np.ndarray


def on_grid(t: np.ndarray, rate_hz: float | None, max_gap_s: float = MAX_GAP_S) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``t`` (sorted) of the frame used at each grid time, and those times; without ``rate_hz`` every
    frame as captured. The grid restarts after each gap longer than ``max_gap_s``."""
    t = np.asarray(t, np.float64)
    if rate_hz is None or len(t) == 0:
        return np.arange(len(t)), t
    period = 1.0 / rate_hz
    picks, times = [], []
    for begin, end in _runs(t, max_gap_s):
        run = t[begin:end]
        grid = run[0] + period * np.arange(int(np.floor((run[-1] - run[0]) / period + 1e-9)) + 1)
        right = np.clip(np.searchsorted(run, grid), 0, len(run) - 1)
        left = np.maximum(right - 1, 0)
        nearest = np.where(np.abs(run[right] - grid) < np.abs(run[left] - grid), right, left)
        picks.append(begin + nearest)
        times.append(grid)
    if not picks:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(picks).astype(np.int64), np.concatenate(times)


def windows_of(
    t: np.ndarray,
    silhouettes: np.ndarray,
    f: int,
    stride: int | None = None,
    rate_hz: float | None = None,
    max_gap_s: float = MAX_GAP_S,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One track's windows of ``f`` silhouettes every ``stride`` frames (default f), with their first and last
    times; ``t`` must increase."""
    t = np.asarray(t, np.float64)
    if len(t) != len(silhouettes):
        raise InputError(f"{len(t)} times for {len(silhouettes)} silhouettes")
    if np.any(np.diff(t) <= 0):
        raise InputError(f"silhouette times must increase (frame {int(np.argmin(np.diff(t) > 0)) + 1} does not)")
    stride = stride or f
    picks, times = on_grid(t, rate_hz, max_gap_s)
    step = max_gap_s if rate_hz is None else min(max_gap_s, 1.5 / rate_hz)
    starts = []
    for begin, end in _runs(times, step):
        if end - begin >= f:
            starts.append(np.arange(begin, end - f + 1, stride))
    first = np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)
    frames = picks[first[:, None] + np.arange(f)[None, :]]
    return silhouettes[frames], times[first], times[first + f - 1] if len(first) else times[first]


def track_silhouettes(
    records: SilhouetteRecords,
    recording: Recording,
    f: int,
    stride: int | None = None,
    rate_hz: float | None = None,
) -> Iterator[SilhouetteWindows]:
    """Per track of ``recording`` (the ``.gwrec`` the silhouettes belong to), its silhouette windows.

    A recording straight from a camera has no track ids yet (-1: the node's tracker associates bodies); with one
    person a frame that is one track."""
    frame_of = {int(s): i for i, s in enumerate(recording.seq)}
    track = np.full(len(records.seq), np.iinfo(np.int64).min)
    for row, (seq, body) in enumerate(zip(records.seq.tolist(), records.body_index.tolist(), strict=True)):
        frame = frame_of.get(seq)
        if frame is not None and body < recording.body_offsets[frame + 1] - recording.body_offsets[frame]:
            track[row] = recording.track_ids[recording.body_offsets[frame] + body]
    for key in np.unique(track[track != np.iinfo(np.int64).min]).tolist():
        rows = np.flatnonzero(track == key)
        rows = rows[np.argsort(records.t[rows], kind="stable")]
        windows, t_start, t_end = windows_of(records.t[rows], records.silhouettes[rows], f, stride, rate_hz)
        yield SilhouetteWindows(int(key), windows, t_start, t_end)


class SilhouetteRing:
    """Live: per track the last ``f`` silhouettes, a window every ``stride`` of them; a gap starts over."""

    def __init__(self, f: int, stride: int | None = None, max_gap_s: float = MAX_GAP_S) -> None:
        self.f, self.stride, self.max_gap_s = f, stride or f, max_gap_s
        self._frames: np.ndarray | None = None  # doubled: a window is always one slice
        self._head = self._filled = self._since_emit = 0
        self._last_t = -np.inf
        self.restarts = 0

    def push(self, t: float, silhouette: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Add one silhouette; the window it completes (uint8 [f, H, W]) with its first time, or None."""
        if self._frames is None:
            self._frames = np.zeros((2 * self.f, *silhouette.shape), np.uint8)
            self._times = np.zeros(2 * self.f)
        if t - self._last_t > self.max_gap_s or t <= self._last_t:
            if self._filled:
                self.restarts += 1
            self._filled = self._since_emit = 0
        self._last_t = t
        slot = self._head % self.f
        self._frames[slot] = self._frames[slot + self.f] = silhouette
        self._times[slot] = self._times[slot + self.f] = t
        self._head += 1
        self._filled = min(self._filled + 1, self.f)
        self._since_emit += 1
        if self._filled < self.f or self._since_emit < self.stride:
            return None
        self._since_emit = 0
        start = self._head % self.f
        return self._frames[start : start + self.f].copy(), float(self._times[start])


def _runs(t: np.ndarray, max_gap_s: float) -> list[tuple[int, int]]:
    """[begin, end) of each stretch of ``t`` without a step longer than ``max_gap_s``."""
    if len(t) == 0:
        return []
    breaks = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    return list(zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(t)].tolist(), strict=True))
