"""One input path -> its recordings, read the way enrollment, site calibration and adaptation all need them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sensors.errors import InputError

if TYPE_CHECKING:
    from calibration.sensor_file import SensorCalibrations
    from sensors.recording import Recording
    from stream.windows import TrackWindows


def read_input(path: Path, sensor_id: str | None, calibrations: SensorCalibrations | None) -> Iterator[Recording]:
    """The recordings of one input. A video goes through MediaPipe as the camera node's frames do: placed in the
    camera's space with the intrinsics calibrated for its sensor (``sensor_id``, else the file's name), so the
    sensor's floor and placement mean the same for both; anything else is read as recorded."""
    from calibration.placement import placer_for
    from sensors.formats import iter_recordings, video

    if path.suffix.lower() not in video.SUFFIXES:
        yield from iter_recordings([path])
        return
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; expected a video")
    stored = calibrations.sensors.get(sensor_id or path.name) if calibrations is not None else None
    yield video.read_video(path, placer_for(None, None, stored.intrinsics if stored is not None else None))


def site_tracks(
    paths: list[Path],
    f: int,
    rate_hz: float,
    sensor_id: str | None,
    calibrations: SensorCalibrations | None,
    stride: int | None = None,
) -> Iterator[tuple[int, Recording, TrackWindows]]:
    """(input number, recording, track) for every track with a whole window in ``paths``, cut as the node cuts them
    (placed by the calibration of ``sensor_id``, else of each recording's own sensor); what site calibration and
    adaptation read."""
    from calibration.sensor_pose import PoseLookup
    from sensors.progress import progress
    from stream.windows import track_windows

    pose_of = PoseLookup(calibrations.poses() if calibrations is not None else {})
    for number, path in enumerate(progress(paths, "Reading the site's recordings", total=len(paths))):
        for recording in read_input(path, sensor_id, calibrations):
            pose = pose_of(sensor_id or recording.sensor_id)
            for part in track_windows(recording, f, rate_hz, stride, pose):
                if len(part.windows):
                    yield number, recording, part
