"""A sensor's pose in the shared world frame: ``world = rotation @ sensor + translation`` (metres).

The world frame follows the canonical convention (right-handed, y up, x to the left, z forward) with
the floor at y = 0. A floor fit fixes the sensor's pitch, roll and height; where it stands on the
floor and which way it faces (yaw) come from a measured placement, because nothing in one sensor's
view can tell them. With no placement, the world's origin is the floor point under the sensor and
its z axis is the sensor's viewing direction laid flat on the floor.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from calibration.floor import FloorFit

log = logging.getLogger("gaitwatch.calibration")


@dataclass(frozen=True)
class Placement:
    """Where a levelled sensor stands in the world: position on the floor and heading (about y)."""

    x_m: float = 0.0
    z_m: float = 0.0
    yaw_deg: float = 0.0

    def to_dict(self) -> dict:
        return {"x_m": self.x_m, "z_m": self.z_m, "yaw_deg": self.yaw_deg}

    @staticmethod
    def from_dict(data: dict) -> Placement:
        return Placement(float(data["x_m"]), float(data["z_m"]), float(data["yaw_deg"]))


@dataclass(frozen=True)
class SensorPose:
    rotation: np.ndarray  # float64 [3, 3], orthonormal, det +1
    translation: np.ndarray  # float64 [3]

    @staticmethod
    def identity() -> SensorPose:
        return SensorPose(np.eye(3), np.zeros(3))

    @staticmethod
    def level(floor: FloorFit) -> SensorPose:
        """World y = floor normal, world z = the sensor's view direction flattened onto the floor, origin on the
        floor below the sensor (so the sensor sits at world height ``floor.offset``)."""
        up = np.asarray(floor.normal, np.float64)
        forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
        if np.linalg.norm(forward) < 1e-3:  # looking straight down: take the sensor's x axis as the reference
            left = np.array([1.0, 0.0, 0.0]) - up[0] * up
            left /= np.linalg.norm(left)
            forward = np.cross(left, up)
        forward /= np.linalg.norm(forward)
        left = np.cross(up, forward)
        rotation = np.stack([left, up, forward])
        return SensorPose(rotation, np.array([0.0, floor.offset, 0.0]))

    def placed(self, placement: Placement) -> SensorPose:
        """This pose followed by a turn of ``yaw_deg`` about the world's up axis and a move along the floor."""
        a = math.radians(placement.yaw_deg)
        yaw = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
        return SensorPose(yaw @ self.rotation, yaw @ self.translation + np.array([placement.x_m, 0.0, placement.z_m]))

    def apply(self, joints: np.ndarray) -> np.ndarray:
        """Joints [..., 3] from the sensor's canonical frame into the world frame (float32, NaN stays NaN)."""
        r = self.rotation.astype(np.float32)
        return (joints @ r.T + self.translation.astype(np.float32)).astype(np.float32, copy=False)

    def inverse(self) -> SensorPose:
        return SensorPose(self.rotation.T, -self.rotation.T @ self.translation)

    @property
    def position(self) -> np.ndarray:
        """The sensor's own origin in world coordinates."""
        return self.translation

    def to_dict(self) -> dict:
        return {"rotation": self.rotation.round(9).tolist(), "translation": self.translation.round(9).tolist()}


class PoseLookup:
    """Sensor id -> its pose. Where some sensors are calibrated, one that is not is warned about once (logged)
    and its frames are used as sensed; shared by the node and ``gallery enroll`` so both treat it alike."""

    def __init__(self, poses: dict[str, SensorPose]) -> None:
        self.poses = poses
        self._warned: set[str] = set()

    def __call__(self, sensor_id: str) -> SensorPose | None:
        pose = self.poses.get(sensor_id)
        if pose is None and self.poses and sensor_id not in self._warned:
            self._warned.add(sensor_id)
            log.warning("sensor %r has no calibration; its frames stay as sensed", sensor_id)
        return pose
