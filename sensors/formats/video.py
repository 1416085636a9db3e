"""A video file as a recording: every image through MediaPipe pose (one person, VIDEO mode).

Why a reader: enrolling people from clips (``gaitwatch gallery enroll g.db walk.avi --name Ana``),
replaying them and the offline tests then go through the same pose estimation as the live camera.
Images without a person are left out, so their times leave gaps the windows never span.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sensors.formats._io import checked
from sensors.layouts import MEDIAPIPE_POSE
from sensors.recording import Recording, rate_problem

if TYPE_CHECKING:
    from sensors.rgb import Placer

SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm")


def read_video(path: Path, place: Placer | None = None) -> Recording:
    """With ``place`` (``calibration.placement.placer``) the hip-centred skeletons are put back where they stand
    in the camera's space; without, every frame stays centred on the hips."""
    from sensors.rgb import RgbPoseSource

    source = RgbPoseSource(str(path), live=False, sensor_id=path.name, place=place)
    frames = [frame for frame in source if frame.num_bodies]
    joints = np.stack([f.joints[0] for f in frames]) if frames else np.zeros((0, 33, 3), np.float32)
    confidence = np.stack([f.confidence[0] for f in frames]) if frames else np.zeros((0, 33), np.float32)
    n = len(frames)
    recording = Recording(
        layout=MEDIAPIPE_POSE,
        t=np.array([f.t for f in frames], np.float64),
        seq=np.array([f.seq for f in frames], np.int64),
        body_offsets=np.arange(n + 1, dtype=np.int64),
        track_ids=np.zeros(n, np.int64),
        joints=joints,
        confidence=confidence,
        sensor_id=path.name,
        rate_hz=source.fps if rate_problem(source.fps) is None else None,  # containers may claim any rate
        metadata={"source": str(path), "images": source.stats.estimated, "images_with_person": n},
    )
    return checked(recording, path)
