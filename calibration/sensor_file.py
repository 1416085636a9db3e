"""The sensor calibration file: one JSON file, an entry per sensor id (floor, placement, intrinsics).

Each ``gaitwatch calibrate`` step updates one part of one sensor's entry and leaves everything else
as it was; the file is replaced atomically, so a crash keeps the previous calibration whole. The node
reads the file once and turns each entry into the pose it applies to that sensor's frames.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from calibration.floor import FloorFit
from calibration.placement import Intrinsics
from calibration.sensor_pose import Placement, SensorPose
from sensors.atomic import write_bytes
from sensors.errors import InputError

FORMAT = "gaitwatch-sensor-calibration"
VERSION = 1


@dataclass
class SensorCalibration:
    floor: FloorFit | None = None
    floor_source: str | None = None  # the recording it was fitted from
    placement: Placement | None = None
    intrinsics: Intrinsics | None = None
    updated: str | None = None

    def pose(self) -> SensorPose | None:
        """Sensor frame -> world frame, or None where nothing geometric is known (frames stay as they are)."""
        if self.floor is None and self.placement is None:
            return None
        pose = SensorPose.level(self.floor) if self.floor is not None else SensorPose.identity()
        return pose.placed(self.placement) if self.placement is not None else pose

    def to_dict(self) -> dict:
        out: dict = {"updated": self.updated}
        if self.floor is not None:
            out["floor"] = {**self.floor.to_dict(), "source": self.floor_source}
        if self.placement is not None:
            out["placement"] = self.placement.to_dict()
        if self.intrinsics is not None:
            k = self.intrinsics
            out["intrinsics"] = {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy}
        pose = self.pose()
        if pose is not None:
            out["pose"] = pose.to_dict()  # derived, written for other tools; never read back
        return out

    @staticmethod
    def from_dict(data: dict) -> SensorCalibration:
        floor = data.get("floor")
        placement = data.get("placement")
        k = data.get("intrinsics")
        return SensorCalibration(
            floor=FloorFit.from_dict(floor) if floor else None,
            floor_source=floor.get("source") if floor else None,
            placement=Placement.from_dict(placement) if placement else None,
            intrinsics=Intrinsics(*(float(k[key]) for key in ("fx", "fy", "cx", "cy"))) if k else None,
            updated=data.get("updated"),
        )


@dataclass
class SensorCalibrations:
    path: Path
    sensors: dict[str, SensorCalibration] = field(default_factory=dict)

    @staticmethod
    def load(path: Path, missing_ok: bool = False) -> SensorCalibrations:
        path = Path(path)
        if not path.exists():
            if missing_ok:
                return SensorCalibrations(path)
            raise InputError(f"{path}: no such sensor calibration file")
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise InputError(f"{path}: cannot read ({err.strerror})") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a JSON file ({err})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{path}: not a gaitwatch sensor calibration file (format is not {FORMAT!r})")
        if data.get("version") != VERSION:
            found = data.get("version")
            raise InputError(f"{path}: calibration file version {found!r}, this gaitwatch reads {VERSION}")
        sensors = {}
        for sensor_id, entry in (data.get("sensors") or {}).items():
            try:
                sensors[sensor_id] = SensorCalibration.from_dict(entry)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                problem = f"{type(err).__name__}: {err}"
                raise InputError(f"{path}: sensor {sensor_id!r}: malformed entry ({problem})") from None
        return SensorCalibrations(path, sensors)

    def entry(self, sensor_id: str) -> SensorCalibration:
        return self.sensors.setdefault(sensor_id, SensorCalibration())

    def poses(self) -> dict[str, SensorPose]:
        return {sensor: pose for sensor, c in self.sensors.items() if (pose := c.pose()) is not None}

    def save(self, touched: str) -> None:
        """Write every entry, stamping ``touched`` as updated now; atomic (old file or new, never half)."""
        self.entry(touched).updated = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        data = {"format": FORMAT, "version": VERSION, "sensors": {k: v.to_dict() for k, v in self.sensors.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(self.path, (json.dumps(data, indent=1) + "\n").encode(), private=True)
