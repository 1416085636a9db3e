"""Sensor geometry: the floor fitted from walkers' feet, the sensor's world pose, the calibration file.

Ground truth comes from the CMU motion capture of the bundled demo (its floor is y = 0, up is y):
the walks are put in front of a virtual sensor with a known pose, and the fit must find that pose.
KGBD (a real Kinect v1) has no ground truth; there the fit must be tight and make people upright.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from calibration.floor import FloorFit, fit_floor
from calibration.mapping import to_canonical
from calibration.sensor_file import SensorCalibrations
from calibration.sensor_pose import Placement, SensorPose
from sensors.errors import InputError
from sensors.formats import iter_recordings
from sensors.layouts import CANONICAL
from sensors.recording import Recording
from stream.node.demo import demo_split
from tests.helpers import assert_one_line_error, gaitwatch, seen_by, turn


def angle_deg(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return math.degrees(math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


@pytest.fixture(scope="module")
def cmu_walks() -> list[Recording]:
    enroll, replay = demo_split()
    return [to_canonical(w) for w in enroll + replay]


def test_each_cmu_walk_finds_the_motion_capture_floor(cmu_walks):
    for walk in cmu_walks:
        fit = fit_floor([walk], walk.metadata["trial"])
        assert angle_deg(fit.normal, [0, 1, 0]) < 2.5, walk.metadata["trial"]
        # the foot joints ride above the capture floor (the origin's height): 2.5-5 cm for most subjects,
        # 6 and 11 cm for subject 38's two trials (measured)
        assert -0.12 < fit.offset < 0.0
        assert fit.rms_m < 0.02
        assert fit.method == "walk-line+body-axis"  # one straight walk: roll comes from the body axis


@pytest.mark.parametrize(("pitch", "roll", "height"), [(-25, 0, 1.6), (-10, 6, 0.8), (15, -4, 2.5)])
def test_a_tilted_sensor_is_levelled_and_its_height_found(cmu_walks, pitch, roll, height):
    reference = fit_floor(cmu_walks)  # the foot plane in the capture's own frame
    truth = SensorPose(turn(pitch, roll, 30.0), np.array([0.5, height, -1.0]))
    fit = fit_floor(seen_by(cmu_walks, truth))
    up_in_sensor = truth.rotation.T @ np.array([0.0, 1.0, 0.0])
    assert angle_deg(fit.normal, up_in_sensor) < 2.5
    assert fit.offset == pytest.approx(height + reference.offset, abs=0.03)
    levelled = SensorPose.level(fit)
    # the sensor's own frame, levelled: people stand upright again and the standing feet are at height ~0
    back = np.concatenate([levelled.apply(w.joints) for w in seen_by(cmu_walks, truth)])
    feet = back[:, [CANONICAL.index("FootLeft"), CANONICAL.index("FootRight")], 1].min(axis=1)
    assert abs(np.median(feet)) < 0.02
    spine = back[:, CANONICAL.index("ShoulderCenter")] - back[:, CANONICAL.index("HipCenter")]
    assert angle_deg(np.median(spine / np.linalg.norm(spine, axis=1, keepdims=True), axis=0), [0, 1, 0]) < 10


def test_equivariance_the_fit_turns_with_the_sensor(cmu_walks):
    walk = cmu_walks[0]
    base = fit_floor([walk])
    rotation = turn(20, 5, 40)
    moved = fit_floor([replace(walk, joints=SensorPose(rotation, np.zeros(3)).apply(walk.joints))])
    assert angle_deg(moved.normal, rotation @ np.asarray(base.normal)) < 0.05


def test_placement_puts_the_levelled_sensor_where_it_stands():
    floor = FloorFit((0.0, 1.0, 0.0), 1.2, "plane", 100, 100, 0.01, (1.0, 1.0))
    pose = SensorPose.level(floor).placed(Placement(x_m=2.0, z_m=-3.0, yaw_deg=90.0))
    np.testing.assert_allclose(pose.position, [2.0, 1.2, -3.0], atol=1e-9)
    # yaw 90: the sensor looks along world +x; a point 1 m in front of it, on its axis, is 1 m further along x
    np.testing.assert_allclose(pose.apply(np.array([0.0, 0.0, 1.0], np.float32)), [3.0, 1.2, -3.0], atol=1e-6)
    inverse = pose.inverse()
    point = np.array([[0.3, -0.2, 2.0]], np.float32)
    np.testing.assert_allclose(inverse.apply(pose.apply(point)), point, atol=1e-6)
    assert np.isnan(pose.apply(np.full((1, 3), np.nan, np.float32))).all()


def test_a_sensor_looking_straight_down_still_gets_a_proper_rotation():
    pose = SensorPose.level(FloorFit((0.0, 0.0, -1.0), 3.0, "plane", 100, 100, 0.01, (1.0, 1.0)))
    assert np.allclose(pose.rotation @ pose.rotation.T, np.eye(3)) and np.linalg.det(pose.rotation) > 0.999


def test_recordings_without_walking_feet_get_one_clear_error(cmu_walks):
    walk = cmu_walks[0]
    nan = replace(walk, joints=np.full_like(walk.joints, np.nan))
    with pytest.raises(InputError, match=r"lost\.gwrec: 0 frames show a body's head and both feet"):
        fit_floor([nan], "lost.gwrec")
    blind = replace(walk, confidence=np.zeros_like(walk.confidence))
    with pytest.raises(InputError, match="whole body in view"):
        fit_floor([blind], "blind.gwrec")


@pytest.mark.slow
def test_kgbd_floors_are_tight_and_make_people_upright(kgbd_zip: Path):
    walks = [to_canonical(r) for r in itertools.islice(iter_recordings([kgbd_zip]), 0, 822, 60)]
    for walk in walks:
        fit = fit_floor([walk], walk.metadata.get("source", "kgbd"))
        # Kinect v1 foot joints are noisy: 75-95% of lower-foot points within 3 cm (measured on these walks)
        assert fit.rms_m < 0.025 and fit.inliers > 0.7 * fit.points
        assert 0.3 < fit.offset < 2.0  # a Kinect on a table or a tripod
        levelled = SensorPose.level(fit).apply(walk.joints)
        spine = levelled[:, CANONICAL.index("ShoulderCenter")] - levelled[:, CANONICAL.index("HipCenter")]
        assert angle_deg(np.median(spine, axis=0), [0, 1, 0]) < 10


# --- the calibration file -------------------------------------------------------------------------------


def test_each_step_updates_one_sensor_and_keeps_the_rest(tmp_path: Path, cmu_walks):
    path = tmp_path / "sensors.json"
    calibrations = SensorCalibrations.load(path, missing_ok=True)
    calibrations.entry("a").floor = fit_floor(cmu_walks)
    calibrations.save("a")
    again = SensorCalibrations.load(path)
    again.entry("b").placement = Placement(1.0, 2.0, 45.0)
    again.save("b")
    final = SensorCalibrations.load(path)
    assert final.sensors["a"].floor == fit_floor(cmu_walks)
    assert final.sensors["b"].placement == Placement(1.0, 2.0, 45.0)
    poses = final.poses()
    np.testing.assert_allclose(poses["a"].rotation, SensorPose.level(fit_floor(cmu_walks)).rotation)
    assert poses["b"].position.tolist() == [1.0, 0.0, 2.0]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not a JSON file"),
        ('{"format": "something-else"}', "not a gaitwatch sensor calibration file"),
        ('{"format": "gaitwatch-sensor-calibration", "version": 9}', "version 9"),
        ('{"format": "gaitwatch-sensor-calibration", "version": 1, "sensors": {"k": {"floor": {"normal": 1}}}}', "'k'"),
    ],
)
def test_a_bad_calibration_file_is_one_error_and_left_as_it_was(tmp_path: Path, content: str, needle: str):
    path = tmp_path / "sensors.json"
    path.write_text(content)
    with pytest.raises(InputError, match=needle):
        SensorCalibrations.load(path)
    proc = gaitwatch("calibrate", "place", "--calibration", path, "--sensor-id", "k", "--x", "1", ok=False)
    assert_one_line_error(proc, str(path), needle)
    assert path.read_text() == content


def test_calibrate_commands_write_show_and_plot(tmp_path: Path, cmu_walks):
    pytest.importorskip("matplotlib", reason="the floor plot needs matplotlib")
    from sensors.formats.gwrec import write_recording

    tilted = Recording.concatenate(seen_by(cmu_walks, SensorPose(turn(-20, 0, 0), np.array([0, 1.5, 0]))))
    tilted.sensor_id = "lab-cam"
    recording = tmp_path / "lab.gwrec"
    write_recording(recording, tilted)
    path, plot = tmp_path / "sensors.json", tmp_path / "floor.png"
    out = gaitwatch("calibrate", "floor", recording, "--calibration", path, "--plot", plot).stdout
    found = re.search(r"lab-cam: sensor ([\d.]+) m above the floor, its up axis ([\d.]+) deg off", out)
    assert found, out
    assert float(found[1]) == pytest.approx(1.5 + fit_floor(cmu_walks).offset, abs=0.03)
    assert float(found[2]) == pytest.approx(20.0, abs=2.5)
    assert plot.stat().st_size > 10_000
    gaitwatch("calibrate", "place", "--calibration", path, "--sensor-id", "lab-cam", "--x", "2", "--yaw", "90")
    gaitwatch(
        "calibrate", "intrinsics", "--calibration", path, "--sensor-id", "webcam", "--fov", "60", "--size", "640x480"
    )
    data = json.loads(path.read_text())
    assert set(data["sensors"]) == {"lab-cam", "webcam"}
    assert data["sensors"]["lab-cam"]["placement"]["yaw_deg"] == 90.0 and "floor" in data["sensors"]["lab-cam"]
    assert data["sensors"]["webcam"]["intrinsics"]["cx"] == 320.0
    shown = gaitwatch("calibrate", "show", path).stdout
    assert "lab-cam:" in shown and "heading 90.0 deg" in shown and "webcam: intrinsics" in shown
    assert_one_line_error(
        gaitwatch("calibrate", "intrinsics", "--calibration", path, "--sensor-id", "w", "--fov", "60", ok=False),
        "--fov needs --size",
    )
    assert_one_line_error(
        gaitwatch("calibrate", "floor", tmp_path / "missing.gwrec", "--calibration", path, ok=False), "missing.gwrec"
    )
    video = tmp_path / "walk.avi"
    video.write_bytes(b"")
    assert_one_line_error(gaitwatch("calibrate", "floor", video, "--calibration", path, ok=False), "walk.avi", "--fov")


def test_a_calibrated_sensor_s_windows_are_the_level_sensor_s(cmu_walks):
    """What the encoders receive: with the floor calibrated, a pitched sensor's root-centred windows are
    those of a level sensor at the same spot (within the fit's degree or so)."""
    from stream.windows import track_windows

    walk = cmu_walks[0]
    tilted = seen_by([walk], SensorPose(turn(-25, 0, 0), np.array([0.0, 1.6, 0.0])))[0]
    level = SensorPose.level(fit_floor([tilted]))

    def centred(recording: Recording, pose: SensorPose | None) -> np.ndarray:
        windows = np.concatenate([p.windows for p in track_windows(recording, 6, 30.0, pose=pose)])
        return windows - windows[:, :, :1]

    expected = centred(walk, None)
    np.testing.assert_allclose(centred(tilted, level), expected, atol=0.05)
    assert np.abs(centred(tilted, None) - expected).max() > 0.2  # as sensed, the tilt is plain to see
