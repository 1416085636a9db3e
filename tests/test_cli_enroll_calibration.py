"""``gallery enroll --calibration FILE --sensor-id ID``: the entry of the sensor the inputs come from applies, to
recordings and to videos alike (videos are placed with that camera's intrinsics, as the camera node places them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.sensor_file import SensorCalibrations
from engines.runtime.load import SHIPPED_SIMMC, open_encoder
from sensors.formats.gwrec import write_recording
from sensors.layouts import KINECT_V1
from sensors.recording import Recording
from stream.cli import main
from stream.gallery.store import GalleryStore
from stream.windows import track_windows

# The encoder of these tests sees the sensor's frame (SimMC): TrackCon, the default, turns every window into the
# walker's own frame, so the very turn these tests look for cannot change its embeddings, by design.
MODEL = ["--model", str(SHIPPED_SIMMC)]


def walker(sensor_id: str) -> Recording:
    """Two seconds of a synthetic walker at 30 Hz: a body swinging its limbs while it moves forward."""
    rng = np.random.default_rng(7)
    body = rng.normal(scale=0.3, size=(20, 3))
    swing = rng.normal(scale=0.1, size=(20, 3))
    t = np.arange(60) / 30
    joints = body[None] + np.sin(2 * np.pi * t)[:, None, None] * swing[None]
    joints[:, :, 2] += 1.2 * t[:, None]  # walking along the sensor's z
    return Recording.single_body(KINECT_V1, joints.astype(np.float32), 30.0, sensor_id=sensor_id)


def vectors_of(gallery: Path) -> dict[str, np.ndarray]:
    store = GalleryStore(gallery, writable=False)
    names = {i.id: i.name for i in store.identities()}
    out: dict[str, list] = {}
    for _, owners, vectors in store.embeddings():
        for owner, vector in zip(owners.tolist(), vectors, strict=True):
            out.setdefault(names[owner], []).append(vector)
    store.close()
    return {name: np.stack(rows) for name, rows in out.items()}


def expected(recording: Recording, calibration: Path, sensor_id: str) -> np.ndarray:
    """What the node would encode of this recording seen by calibrated sensor ``sensor_id``."""
    encoder = open_encoder(SHIPPED_SIMMC)
    pose = SensorCalibrations.load(calibration).sensors[sensor_id].pose()
    [part] = track_windows(recording, encoder.f, float(encoder.card["rate_hz"]), pose=pose)
    return encoder.encode(part.windows)


@pytest.fixture
def calibrated(tmp_path: Path) -> tuple[Path, Path]:
    """(a gallery, a calibration file whose only entry, ``cam``, turns the sensor by 90 degrees)."""
    calibration = tmp_path / "sensors.json"
    place = ["calibrate", "place", "--calibration", str(calibration), "--sensor-id", "cam", "--yaw", "90", "--x", "1"]
    assert main(place) == 0
    gallery = tmp_path / "g.db"
    assert main(["gallery", "create", str(gallery), *MODEL]) == 0
    return gallery, calibration


def test_a_recording_enrolled_as_a_calibrated_sensor_is_turned_into_its_world_frame(tmp_path, calibrated):
    gallery, calibration = calibrated
    recording = walker("recorder-7")  # recorded under another sensor id than the calibrated one
    path = tmp_path / "walk.gwrec"
    write_recording(path, recording)
    enroll = ["gallery", "enroll", str(gallery), str(path), *MODEL, "--name"]
    assert main([*enroll, "plain"]) == 0
    assert main([*enroll, "own-id", "--calibration", str(calibration)]) == 0  # recorder-7 has no entry: as recorded
    assert main([*enroll, "as-cam", "--calibration", str(calibration), "--sensor-id", "cam"]) == 0
    vectors = vectors_of(gallery)
    np.testing.assert_array_equal(vectors["own-id"], vectors["plain"])
    assert not np.allclose(vectors["as-cam"], vectors["plain"], atol=1e-3)  # the turn reached the encoder
    np.testing.assert_allclose(vectors["as-cam"], expected(recording, calibration, "cam"), atol=1e-5)


def test_a_video_is_placed_with_its_camera_s_intrinsics_and_calibrated(tmp_path, calibrated, monkeypatch):
    from sensors.formats import video

    gallery, calibration = calibrated
    intrinsics = ["--calibration", str(calibration), "--sensor-id", "cam", "--fov", "60", "--size", "640x480"]
    assert main(["calibrate", "intrinsics", *intrinsics]) == 0
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    placers = []

    def read_video(path: Path, place=None) -> Recording:  # MediaPipe's part: what it would give, and how it was asked
        placers.append(place)
        return walker(path.name)  # a video's own sensor id is its file name

    monkeypatch.setattr(video, "read_video", read_video)
    assert main(["gallery", "enroll", str(gallery), str(clip), *MODEL, "--name", "plain"]) == 0
    enroll = ["gallery", "enroll", str(gallery), str(clip), *MODEL, "--calibration", str(calibration)]
    assert main([*enroll, "--name", "own-id"]) == 0
    assert main([*enroll, "--name", "as-cam", "--sensor-id", "cam"]) == 0
    assert placers[0] is None and placers[1] is None and callable(placers[2])  # only the camera's entry places it
    vectors = vectors_of(gallery)
    np.testing.assert_array_equal(vectors["own-id"], vectors["plain"])
    np.testing.assert_allclose(vectors["as-cam"], expected(walker("clip.mp4"), calibration, "cam"), atol=1e-5)


def test_a_missing_video_is_one_clear_error(tmp_path, calibrated, capsys):
    gallery, calibration = calibrated
    missing = tmp_path / "gone.mp4"
    args = ["gallery", "enroll", str(gallery), str(missing), *MODEL, "--calibration", str(calibration)]
    args += ["--sensor-id", "cam"]
    assert main(args) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "gone.mp4: no such file" in line
