"""Layouts map onto the canonical skeleton where a human body puts its joints."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.mapping import DERIVED_CONFIDENCE, MAPPINGS, mapping_for, to_canonical
from sensors.errors import InputError
from sensors.layouts import CANONICAL, KINECT_V1, KINECT_V2, LAYOUTS, MEDIAPIPE_POSE, Layout, bone_lengths
from sensors.recording import Recording

# A person standing 2.5 m in front of a Kinect v2, facing it: camera space, metres,
# y up, the person's left side at negative x (the sensor's right).
STANDING_KINECT_V2 = {
    "SpineBase": (0.00, 0.00, 2.50), "SpineMid": (0.00, 0.30, 2.50), "Neck": (0.00, 0.58, 2.50),
    "Head": (0.00, 0.72, 2.50), "ShoulderLeft": (-0.18, 0.50, 2.50), "ElbowLeft": (-0.22, 0.22, 2.50),
    "WristLeft": (-0.24, -0.02, 2.48), "HandLeft": (-0.25, -0.09, 2.47), "ShoulderRight": (0.18, 0.50, 2.50),
    "ElbowRight": (0.22, 0.22, 2.50), "WristRight": (0.24, -0.02, 2.48), "HandRight": (0.25, -0.09, 2.47),
    "HipLeft": (-0.08, -0.05, 2.50), "KneeLeft": (-0.09, -0.47, 2.48), "AnkleLeft": (-0.09, -0.86, 2.52),
    "FootLeft": (-0.10, -0.90, 2.42), "HipRight": (0.08, -0.05, 2.50), "KneeRight": (0.09, -0.47, 2.48),
    "AnkleRight": (0.09, -0.86, 2.52), "FootRight": (0.10, -0.90, 2.42), "SpineShoulder": (0.00, 0.50, 2.50),
    "HandTipLeft": (-0.26, -0.16, 2.46), "ThumbLeft": (-0.23, -0.08, 2.44), "HandTipRight": (0.26, -0.16, 2.46),
    "ThumbRight": (0.23, -0.08, 2.44),
}  # fmt: skip


def kinect_v2_body() -> np.ndarray:
    return np.array([STANDING_KINECT_V2[name] for name in KINECT_V2.joints], np.float32)


def mediapipe_world_body() -> np.ndarray:
    """The same person as MediaPipe world landmarks: origin between the hips, x right, y down."""
    k = {name: np.array(v) for name, v in STANDING_KINECT_V2.items()}
    hip_mid = (k["HipLeft"] + k["HipRight"]) / 2
    to_mp = np.array([-1.0, -1.0, 1.0])
    head = k["Head"]
    points = {
        "nose": head + (0, -0.02, -0.10), "left_eye_inner": head + (-0.02, 0.02, -0.09),
        "left_eye": head + (-0.035, 0.02, -0.085), "left_eye_outer": head + (-0.05, 0.02, -0.08),
        "right_eye_inner": head + (0.02, 0.02, -0.09), "right_eye": head + (0.035, 0.02, -0.085),
        "right_eye_outer": head + (0.05, 0.02, -0.08), "left_ear": head + (-0.08, 0.0, 0.0),
        "right_ear": head + (0.08, 0.0, 0.0), "mouth_left": head + (-0.03, -0.06, -0.09),
        "mouth_right": head + (0.03, -0.06, -0.09),
        "left_pinky": k["HandLeft"] + (-0.01, -0.06, 0.0), "right_pinky": k["HandRight"] + (0.01, -0.06, 0.0),
        "left_index": k["HandTipLeft"], "right_index": k["HandTipRight"],
        "left_thumb": k["ThumbLeft"], "right_thumb": k["ThumbRight"],
        "left_heel": k["AnkleLeft"] + (0.0, -0.06, 0.06), "right_heel": k["AnkleRight"] + (0.0, -0.06, 0.06),
        "left_foot_index": k["FootLeft"] + (0.0, 0.0, -0.08), "right_foot_index": k["FootRight"] + (0.0, 0.0, -0.08),
    }  # fmt: skip
    for side, Side in (("left", "Left"), ("right", "Right")):
        for part, Part in (("shoulder", "Shoulder"), ("elbow", "Elbow"), ("wrist", "Wrist"), ("hip", "Hip"),
                           ("knee", "Knee"), ("ankle", "Ankle")):  # fmt: skip
            points[f"{side}_{part}"] = k[f"{Part}{Side}"]
    return np.array([(points[name] - hip_mid) * to_mp for name in MEDIAPIPE_POSE.joints], np.float32)


def assert_human(canonical: np.ndarray) -> None:
    """Canonical joints [20, 3] sit where a standing, upright human body puts them."""
    y = {name: canonical[CANONICAL.index(name), 1] for name in CANONICAL.joints}
    x = {name: canonical[CANONICAL.index(name), 0] for name in CANONICAL.joints}
    assert y["Head"] > y["ShoulderCenter"] > y["Spine"] > y["HipCenter"] > y["KneeLeft"] > y["AnkleLeft"]
    assert y["KneeRight"] > y["AnkleRight"] >= y["FootRight"] - 0.05
    assert y["ShoulderLeft"] > y["ElbowLeft"] > y["WristLeft"]
    for side in ("Left", "Right"):
        assert y[f"Hip{side}"] > y[f"Knee{side}"]
    # facing the sensor, the person's left is at smaller x than their right (canonical x: sensor's left)
    for part in ("Shoulder", "Elbow", "Wrist", "Hand", "Hip", "Knee", "Ankle", "Foot"):
        assert x[f"{part}Left"] < x[f"{part}Right"], part
    bones = dict(
        zip([CANONICAL.joints[c] for _, c in CANONICAL.bones()], bone_lengths(canonical, CANONICAL), strict=True)
    )
    assert 0.3 < bones["KneeLeft"] < 0.55 and 0.3 < bones["AnkleLeft"] < 0.55  # thigh, shank
    assert 0.2 < bones["ElbowRight"] < 0.4  # upper arm
    assert 1.4 < y["Head"] - min(y["FootLeft"], y["FootRight"]) < 2.0


def test_every_layout_has_a_complete_mapping():
    assert set(MAPPINGS) == set(LAYOUTS)
    for mapping in MAPPINGS.values():
        np.testing.assert_allclose(mapping.weights.sum(axis=1), 1.0, rtol=1e-6)
        assert np.isclose(abs(np.linalg.det(mapping.axes)), 1.0)


def test_kinect_v1_is_identity():
    joints = np.random.default_rng(0).normal(size=(4, 20, 3)).astype(np.float32)
    np.testing.assert_array_equal(mapping_for(KINECT_V1).joints(joints), joints)


def test_kinect_v2_maps_onto_a_human_body():
    canonical = mapping_for(KINECT_V2).joints(kinect_v2_body())
    assert_human(canonical)
    np.testing.assert_allclose(canonical[CANONICAL.index("ShoulderCenter")], STANDING_KINECT_V2["SpineShoulder"])


def test_mediapipe_world_landmarks_map_onto_the_same_body():
    mapping = mapping_for(MEDIAPIPE_POSE)
    canonical = mapping.joints(mediapipe_world_body())
    assert_human(canonical)
    from_v2 = mapping_for(KINECT_V2).joints(kinect_v2_body())
    hip_mid = (from_v2[CANONICAL.index("HipLeft")] + from_v2[CANONICAL.index("HipRight")]) / 2
    for joint in ("ShoulderLeft", "ElbowRight", "KneeLeft", "AnkleRight"):
        i = CANONICAL.index(joint)
        np.testing.assert_allclose(canonical[i], from_v2[i] - hip_mid, atol=1e-6)


def test_derived_joints_say_so_in_their_confidence():
    mapping = mapping_for(MEDIAPIPE_POSE)
    confidence = np.full((1, 33), 0.9, np.float32)
    confidence[0, MEDIAPIPE_POSE.index("right_ear")] = 0.4
    out = mapping.confidence(confidence)[0]
    assert out[CANONICAL.index("ElbowLeft")] == pytest.approx(0.9)
    assert out[CANONICAL.index("ShoulderCenter")] == pytest.approx(0.9 * DERIVED_CONFIDENCE)
    assert out[CANONICAL.index("Head")] == pytest.approx(0.4 * DERIVED_CONFIDENCE)


def test_to_canonical_keeps_frames_and_tracks():
    body = kinect_v2_body()
    rec = Recording.single_body(KINECT_V2, np.stack([body, body + 0.1]), 30.0, track_id=42)
    out = to_canonical(rec)
    assert out.layout == CANONICAL and out.joints.shape == (2, 20, 3)
    np.testing.assert_array_equal(out.track_ids, [42, 42])
    np.testing.assert_allclose(out.joints[1] - out.joints[0], 0.1, atol=1e-6)


def test_units_are_scaled_to_metres_and_unknown_units_or_layouts_refused():
    body = kinect_v2_body()
    rec = Recording.single_body(KINECT_V2, np.stack([body * 1000]), 30.0)
    rec.units = "mm"
    out = to_canonical(rec)
    assert out.units == "m"
    np.testing.assert_allclose(out.joints[0], mapping_for(KINECT_V2).joints(body), atol=1e-5)
    rec.units = "furlong"
    with pytest.raises(InputError, match="furlong"):
        to_canonical(rec)
    odd = Layout("odd", ("a", "b"), (-1, 0))
    with pytest.raises(InputError, match="no mapping from layout 'odd'"):
        mapping_for(odd)
