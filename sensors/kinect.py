"""Kinect v2 through pykinect2 (Windows): body frames with tracking ids, 25 joints, confidences, sensor time.

What it uses of pykinect2, and nothing else (``tests/fake_pykinect2`` fakes exactly this on Linux):

- ``PyKinectRuntime.PyKinectRuntime(PyKinectV2.FrameSourceTypes_Body)``, its ``max_body_count``,
  ``has_new_body_frame()``, ``get_last_body_frame()`` and ``close()``;
- a body frame's ``bodies`` (each with ``is_tracked``, ``tracking_id`` and ``joints[j].Position.x/y/z``
  and ``joints[j].TrackingState``) and ``relative_time`` (the sensor's clock, in 100 ns ticks);
- ``PyKinectV2.JointType_Count`` and the ``TrackingState_*`` constants.

Joints are camera space (metres, y up) in the SDK's JointType order (``sensors.layouts.KINECT_V2``);
a joint's tracking state becomes its confidence: tracked 1, inferred 0.5, not tracked 0 (as for
NTU RGB+D, recorded with the same sensor). The pykinect2 release on PyPI does not run on 64-bit
Python 3: install it from the upstream sources as the README says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from sensors.errors import InputError
from sensors.frame import Frame
from sensors.layouts import KINECT_V2

TICKS_PER_SECOND = 10_000_000  # relative_time is in 100 ns units


def _pykinect2():
    try:
        from pykinect2 import PyKinectRuntime, PyKinectV2
    except ImportError as err:
        raise InputError(
            f"pykinect2 cannot be imported ({err}): it runs on Windows with the Kinect for Windows SDK 2.0; "
            "install it from the upstream sources (README, 'Kinect v2')"
        ) from None
    return PyKinectRuntime, PyKinectV2


class KinectV2Source:
    live = True

    def __init__(self, sensor_id: str = "kinect", poll_s: float = 0.002) -> None:
        self.sensor_id = sensor_id
        self.poll_s = poll_s
        self.frames_read = 0
        self._stop = threading.Event()
        runtime, v2 = _pykinect2()
        self._v2 = v2
        try:
            self.runtime = runtime.PyKinectRuntime(v2.FrameSourceTypes_Body)
        except Exception as err:  # COM errors when no sensor or SDK: name them once
            raise InputError(f"Kinect v2: cannot open the sensor ({err})") from None
        self._confidence = np.zeros(8, np.float32)
        self._confidence[v2.TrackingState_Inferred] = 0.5
        self._confidence[v2.TrackingState_Tracked] = 1.0

    def stop(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[Frame]:
        try:
            while not self._stop.is_set():
                if not self.runtime.has_new_body_frame():
                    time.sleep(self.poll_s)
                    continue
                data = self.runtime.get_last_body_frame()
                if data is None:
                    continue
                yield self._frame(data)
        finally:
            self.runtime.close()

    def _frame(self, data) -> Frame:
        count = self._v2.JointType_Count
        tracked = [body for body in data.bodies[: self.runtime.max_body_count] if body.is_tracked]
        joints = np.zeros((len(tracked), count, 3), np.float32)
        states = np.zeros((len(tracked), count), np.int64)
        for b, body in enumerate(tracked):
            for j in range(count):
                joint = body.joints[j]
                joints[b, j] = (joint.Position.x, joint.Position.y, joint.Position.z)
                states[b, j] = joint.TrackingState
        frame = Frame(
            self.sensor_id,
            self.frames_read,
            float(data.relative_time) / TICKS_PER_SECOND,
            KINECT_V2,
            np.array([int(body.tracking_id) for body in tracked], np.int64),
            joints,
            self._confidence[np.clip(states, 0, 7)],
        )
        self.frames_read += 1
        return frame
