"""Mapping every known joint layout onto the canonical skeleton (Kinect v1, 20 joints).

Each canonical joint is a weighted mean of source joints. A joint taken straight
from a source joint keeps its confidence; a *derived* one (a mean of several, or an
approximation such as the spine between hips and shoulders) gets the lowest
confidence of its sources times ``DERIVED_CONFIDENCE``, so downstream code can tell.
Axes are turned into the canonical convention (right-handed, y up, x to the
sensor's left, z away from it) and units scaled to metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensors.errors import InputError
from sensors.layouts import CANONICAL, CMU_ASF, COCO, KINECT_V1, KINECT_V2, MEDIAPIPE_POSE, Layout
from sensors.recording import Recording

DERIVED_CONFIDENCE = 0.5

# Canonical joint -> source joints (equal weights) or explicit (joint, weight) pairs.
Source = tuple[str, ...] | tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class LayoutMapping:
    """How one layout becomes canonical: a [20, J] weight matrix plus an axis turn."""

    layout: Layout
    weights: np.ndarray  # float32 [20, J]; rows sum to 1
    derived: np.ndarray  # bool [20]
    axes: np.ndarray  # float32 [3, 3], canonical = axes @ source
    metric: bool  # False for 2D layouts: output stays in the source's (pixel) units

    def joints(self, joints: np.ndarray) -> np.ndarray:
        """Canonical joints [..., 20, 3] from source joints [..., J, 3]."""
        out = np.einsum("cj,...jk->...ck", self.weights, joints.astype(np.float32, copy=False))
        return np.einsum("ik,...ck->...ci", self.axes, out).astype(np.float32)

    def confidence(self, confidence: np.ndarray) -> np.ndarray:
        """Canonical confidence [..., 20]: the weakest source, scaled down where derived."""
        used = self.weights > 0
        masked = np.where(used, confidence[..., None, :], np.inf)
        conf = masked.min(axis=-1)
        return np.where(self.derived, conf * DERIVED_CONFIDENCE, conf).astype(np.float32)


def _mapping(
    layout: Layout, table: dict[str, Source], axes: np.ndarray | None = None, metric: bool = True
) -> LayoutMapping:
    missing = set(CANONICAL.joints) - set(table)
    if missing:
        raise ValueError(f"mapping for {layout.name} lacks {sorted(missing)}")
    weights = np.zeros((CANONICAL.num_joints, layout.num_joints), np.float32)
    derived = np.zeros(CANONICAL.num_joints, bool)
    for name, sources in table.items():
        row = CANONICAL.index(name)
        pairs = [(s, 1.0) if isinstance(s, str) else s for s in sources]
        total = sum(w for _, w in pairs)
        for joint, w in pairs:
            weights[row, layout.index(joint)] += w / total
        derived[row] = len(pairs) > 1
    axes = np.eye(3) if axes is None else axes
    return LayoutMapping(layout, weights, derived, np.asarray(axes, np.float32), metric)


def _approximate(mapping: LayoutMapping, names: tuple[str, ...]) -> LayoutMapping:
    """Mark single-source joints that only approximate the canonical joint as derived."""
    derived = mapping.derived.copy()
    for name in names:
        derived[CANONICAL.index(name)] = True
    return LayoutMapping(mapping.layout, mapping.weights, derived, mapping.axes, mapping.metric)


_SAME_LIMBS = [
    "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
    "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight",
]  # fmt: skip

# MediaPipe and COCO name their keypoints alike; they differ only in hands and feet.
_KEYPOINT_BODY: dict[str, Source] = {
    "HipCenter": ("left_hip", "right_hip"),
    "Spine": (("left_hip", 0.4), ("right_hip", 0.4), ("left_shoulder", 0.1), ("right_shoulder", 0.1)),
    "ShoulderCenter": ("left_shoulder", "right_shoulder"),
    "Head": ("left_ear", "right_ear"),
    **{f"{part}{side}": (f"{side.lower()}_{part.lower()}",) for side in ("Left", "Right")
       for part in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")},
}  # fmt: skip

MAPPINGS: dict[str, LayoutMapping] = {
    KINECT_V1.name: _mapping(KINECT_V1, {n: (n,) for n in KINECT_V1.joints}),
    KINECT_V2.name: _mapping(
        KINECT_V2,
        {
            "HipCenter": ("SpineBase",),
            "Spine": ("SpineMid",),
            "ShoulderCenter": ("SpineShoulder",),
            "Head": ("Head",),
            **{n: (n,) for n in _SAME_LIMBS},
        },
    ),
    MEDIAPIPE_POSE.name: _approximate(
        _mapping(
            MEDIAPIPE_POSE,
            {
                **_KEYPOINT_BODY,
                "HandLeft": ("left_pinky", "left_index"),
                "HandRight": ("right_pinky", "right_index"),
                "FootLeft": ("left_foot_index",),
                "FootRight": ("right_foot_index",),
            },
            # MediaPipe: x right, y down, z away from the camera -> turn 180 degrees about z.
            axes=np.diag([-1.0, -1.0, 1.0]),
        ),
        ("HipLeft", "HipRight"),
    ),
    CMU_ASF.name: _approximate(
        _mapping(
            CMU_ASF,
            {
                "HipCenter": ("root",),
                "Spine": ("lowerback",),
                "ShoulderCenter": ("thorax",),
                "Head": ("upperneck", "head"),
                "ShoulderLeft": ("lclavicle",),
                "ElbowLeft": ("lhumerus",),
                "WristLeft": ("lradius",),
                "HandLeft": ("lhand",),
                "ShoulderRight": ("rclavicle",),
                "ElbowRight": ("rhumerus",),
                "WristRight": ("rradius",),
                "HandRight": ("rhand",),
                "HipLeft": ("lhipjoint",),
                "KneeLeft": ("lfemur",),
                "AnkleLeft": ("ltibia",),
                "FootLeft": ("lfoot",),
                "HipRight": ("rhipjoint",),
                "KneeRight": ("rfemur",),
                "AnkleRight": ("rtibia",),
                "FootRight": ("rfoot",),
            },
        ),
        ("Spine",),
    ),
    COCO.name: _approximate(
        _mapping(
            COCO,
            {
                **_KEYPOINT_BODY,
                "HandLeft": ("left_wrist",),
                "HandRight": ("right_wrist",),
                "FootLeft": ("left_ankle",),
                "FootRight": ("right_ankle",),
            },
            # Image pixels: x right, y down -> canonical x left, y up (a 2D pose has no depth).
            axes=np.diag([-1.0, -1.0, 1.0]),
            metric=False,
        ),
        ("HandLeft", "HandRight", "FootLeft", "FootRight"),
    ),
}


METRES_PER_UNIT = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def mapping_for(layout: Layout) -> LayoutMapping:
    try:
        return MAPPINGS[layout.name]
    except KeyError:
        known = ", ".join(sorted(MAPPINGS))
        raise InputError(f"no mapping from layout {layout.name!r} to the canonical skeleton (known: {known})") from None


def to_canonical(recording: Recording) -> Recording:
    """The same recording on the canonical skeleton (Kinect v1 order, metres, y up)."""
    mapping = mapping_for(recording.layout)
    if not mapping.metric:  # 2D keypoints: canonical joint order, but still image units
        return recording.with_body_data(
            CANONICAL, mapping.joints(recording.joints), mapping.confidence(recording.confidence)
        )
    if recording.units not in METRES_PER_UNIT:
        known = ", ".join(METRES_PER_UNIT)
        raise InputError(f"recording in unit {recording.units!r}: cannot scale to metres (known: {known})")
    if recording.layout == CANONICAL and recording.units == "m":
        return recording
    joints = mapping.joints(recording.joints) * np.float32(METRES_PER_UNIT[recording.units])
    return recording.with_body_data(CANONICAL, joints, mapping.confidence(recording.confidence), units="m")
