"""A scripted stand-in for pykinect2.PyKinectRuntime: plays ``SCRIPT`` (set by the test) as body frames.

``SCRIPT`` is a list of (relative_time in 100 ns ticks, [(tracking_id, joints [25, 3], states [25]), ...]).
Like the real runtime, it holds max_body_count (6) body slots per frame, untracked ones included.
"""

from __future__ import annotations

from types import SimpleNamespace

SCRIPT: list = []
OPENED: list = []  # every runtime made, so a test can check it was closed


class PyKinectRuntime:
    max_body_count = 6

    def __init__(self, frame_source_types: int) -> None:
        if frame_source_types != 0x20:
            raise ValueError("the fake plays body frames only")
        self._next = 0
        self.closed = False
        OPENED.append(self)

    def has_new_body_frame(self) -> bool:
        return self._next < len(SCRIPT)

    def get_last_body_frame(self):
        relative_time, bodies = SCRIPT[self._next]
        self._next += 1
        slots = [_body(*body) for body in bodies]
        slots += [SimpleNamespace(is_tracked=False, tracking_id=0, joints=[]) for _ in range(6 - len(slots))]
        return SimpleNamespace(bodies=slots, relative_time=relative_time, floor_clip_plane=None)

    def close(self) -> None:
        self.closed = True


def _body(tracking_id: int, joints, states):
    points = [
        SimpleNamespace(Position=SimpleNamespace(x=float(x), y=float(y), z=float(z)), TrackingState=int(s))
        for (x, y, z), s in zip(joints, states, strict=True)
    ]
    return SimpleNamespace(is_tracked=True, tracking_id=tracking_id, joints=points)
