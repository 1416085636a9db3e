"""Per track, a ring of the last f canonical frames at the model's rate, emitting a window every stride frames.

Why resample here: a sensor delivers frames at its own rate and with jitter (a Kinect at ~30 Hz, a
video at 25 Hz, a replayed CMU trial at 120 Hz), while the encoder was trained at one rate; each
incoming frame is placed on the model's time grid by linear interpolation with the previous one,
as ``calibration.resample`` does offline. A gap longer than ``max_gap_s`` or a missing (NaN) joint
restarts the ring: a window never spans a gap or holds an invented joint.
"""

from __future__ import annotations

import math

import numpy as np


class WindowRing:
    def __init__(self, f: int, rate_hz: float, stride: int, max_gap_s: float = 0.2) -> None:
        self.f, self.period, self.stride, self.max_gap_s = f, 1.0 / rate_hz, stride, max_gap_s
        self._frames = np.zeros((2 * f, 20, 3), np.float32)  # doubled: a window is always one slice
        self._filled = 0  # grid frames in the ring since the last restart (capped at f)
        self._since_emit = 0
        self._origin, self._ticks = math.nan, 0  # the grid: origin + ticks * period is the next time to fill
        self._last_t = math.nan
        self._last: np.ndarray | None = None
        self._head = 0
        self.restarts = 0

    def push(self, t: float, joints: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
        """Add one frame (canonical joints [20, 3], metres); returns the windows it completes with their spans."""
        if not np.isfinite(joints).all():
            self._restart()
            return []
        if self._last is None or t - self._last_t > self.max_gap_s or t <= self._last_t:
            if self._last is not None:
                self._restart()
            self._last, self._last_t, self._origin, self._ticks = joints, t, t, 0
        out = []
        while (grid_t := self._origin + self._ticks * self.period) <= t + 1e-6 * self.period:
            span = t - self._last_t
            w = 1.0 if span <= 0 else (grid_t - self._last_t) / span
            frame = joints if w > 1.0 - 1e-6 else self._last + np.float32(w) * (joints - self._last)
            window = self._append(frame)
            if window is not None:
                out.append((window, grid_t - (self.f - 1) * self.period, grid_t))
            self._ticks += 1
        self._last, self._last_t = joints, t
        return out

    def _append(self, frame: np.ndarray) -> np.ndarray | None:
        f = self.f
        slot = self._head % f
        self._frames[slot] = frame
        self._frames[slot + f] = frame
        self._head += 1
        self._filled = min(self._filled + 1, f)
        self._since_emit += 1
        if self._filled == f and self._since_emit >= self.stride:
            self._since_emit = 0
            start = self._head % f
            return self._frames[start : start + f].copy()
        return None

    def _restart(self) -> None:
        self.restarts += 1
        self._filled = self._since_emit = 0
        self._last, self._last_t = None, math.nan
