"""The frame model: what every sensor, file reader and replay hands downstream.

A frame holds all bodies one sensor saw at one instant as stacked NumPy arrays
(one row per body), so hot paths never touch a Python object per joint or body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sensors.layouts import Layout


class Body(NamedTuple):
    """One body of a frame: views into the frame's arrays, not copies."""

    track_id: int
    joints: np.ndarray  # float32 [J, 3], metres (pixels for 2D layouts)
    confidence: np.ndarray  # float32 [J], in [0, 1]
    layout: Layout


@dataclass(frozen=True, slots=True)
class Frame:
    """Every body one sensor saw at capture time ``t`` (seconds on the sensor's clock)."""

    sensor_id: str
    seq: int
    t: float
    layout: Layout
    track_ids: np.ndarray  # int64 [B]
    joints: np.ndarray  # float32 [B, J, 3]
    confidence: np.ndarray  # float32 [B, J]

    @property
    def num_bodies(self) -> int:
        return len(self.track_ids)

    @property
    def bodies(self) -> list[Body]:
        return [Body(int(tid), self.joints[i], self.confidence[i], self.layout) for i, tid in enumerate(self.track_ids)]
