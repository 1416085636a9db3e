"""Joint layouts as data: joint names, bones (parent indices) and axis conventions.

A layout says *what* the rows of a joints array are. How a layout maps to the
canonical 20-joint skeleton lives in ``calibration.mapping``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_JOINTS = 1024
"""Most joints a layout may have (the largest known has 33); bounds what a file header can ask for."""


@dataclass(frozen=True)
class Layout:
    """A named skeleton: joint names in array order and each joint's parent (-1 for the root)."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    dims: int = 3
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.joints) != len(self.parents):
            raise ValueError(f"layout {self.name}: {len(self.joints)} joints but {len(self.parents)} parents")
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f"layout {self.name}: joint names repeat")
        for i, p in enumerate(self.parents):
            if not -1 <= p < len(self.joints) or p == i:
                raise ValueError(f"layout {self.name}: joint {self.joints[i]} has invalid parent {p}")
        cycle = _joint_in_cycle(self.parents)
        if cycle is not None:
            raise ValueError(
                f"layout {self.name}: joint {self.joints[cycle]} is its own ancestor (parents form a cycle)"
            )

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) index pairs, one per non-root joint."""
        return [(p, c) for c, p in enumerate(self.parents) if p >= 0]

    def to_dict(self) -> dict:
        return {"name": self.name, "joints": list(self.joints), "parents": list(self.parents), "dims": self.dims}

    @staticmethod
    def from_dict(data: object) -> Layout:
        """A layout from its dict form; a known name returns the registered layout if it matches.

        The dict comes from files, so every field is type-checked: a wrong one raises ``ValueError`` naming it
        (``int()`` would take 1.5 or ``true`` as a parent and fail on ``Infinity`` with another exception).
        """
        if not isinstance(data, dict):
            raise ValueError(f"layout: expected an object, found {type(data).__name__}")
        name, joints, parents, dims = data.get("name"), data.get("joints"), data.get("parents"), data.get("dims", 3)
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ValueError("layout name: expected a non-empty string")
        if not isinstance(joints, list) or not all(isinstance(j, str) for j in joints):
            raise ValueError("layout joints: expected a list of joint names")
        if not 1 <= len(joints) <= MAX_JOINTS:
            raise ValueError(f"layout joints: {len(joints)} joints, expected 1 to {MAX_JOINTS}")
        if not isinstance(parents, list) or not all(type(p) is int for p in parents):
            raise ValueError("layout parents: expected a list of integer joint indices (-1 for the root)")
        if type(dims) is not int or dims not in (2, 3):
            raise ValueError(f"layout dims: expected 2 or 3, found {dims!r}")
        layout = Layout(name=name, joints=tuple(joints), parents=tuple(parents), dims=dims)
        known = LAYOUTS.get(layout.name)
        if known is not None and known.joints == layout.joints and known.parents == layout.parents:
            return known
        return layout


def _joint_in_cycle(parents: tuple[int, ...]) -> int | None:
    """A joint on a parent cycle, or None when following parents from any joint reaches a root."""
    reaches_root = [False] * len(parents)
    for start in range(len(parents)):
        path, joint = set(), start
        while joint != -1 and not reaches_root[joint]:
            if joint in path:
                return joint
            path.add(joint)
            joint = parents[joint]
        for seen in path:
            reaches_root[seen] = True
    return None


def _layout(name: str, spec: list[tuple[str, str | None]], dims: int = 3, description: str = "") -> Layout:
    names = tuple(n for n, _ in spec)
    parents = tuple(-1 if p is None else names.index(p) for _, p in spec)
    return Layout(name=name, joints=names, parents=parents, dims=dims, description=description)


KINECT_V1 = _layout(
    "kinect_v1",
    [
        ("HipCenter", None),
        ("Spine", "HipCenter"),
        ("ShoulderCenter", "Spine"),
        ("Head", "ShoulderCenter"),
        ("ShoulderLeft", "ShoulderCenter"),
        ("ElbowLeft", "ShoulderLeft"),
        ("WristLeft", "ElbowLeft"),
        ("HandLeft", "WristLeft"),
        ("ShoulderRight", "ShoulderCenter"),
        ("ElbowRight", "ShoulderRight"),
        ("WristRight", "ElbowRight"),
        ("HandRight", "WristRight"),
        ("HipLeft", "HipCenter"),
        ("KneeLeft", "HipLeft"),
        ("AnkleLeft", "KneeLeft"),
        ("FootLeft", "AnkleLeft"),
        ("HipRight", "HipCenter"),
        ("KneeRight", "HipRight"),
        ("AnkleRight", "KneeRight"),
        ("FootRight", "AnkleRight"),
    ],
    description="Kinect for Windows SDK 1.x, NUI_SKELETON_POSITION_INDEX order; camera space, metres, y up",
)

CANONICAL = KINECT_V1
"""The canonical skeleton every model sees: Kinect v1's 20 joints in SDK order, metres, y up."""

KINECT_V2 = _layout(
    "kinect_v2",
    [
        ("SpineBase", None),
        ("SpineMid", "SpineBase"),
        ("Neck", "SpineShoulder"),
        ("Head", "Neck"),
        ("ShoulderLeft", "SpineShoulder"),
        ("ElbowLeft", "ShoulderLeft"),
        ("WristLeft", "ElbowLeft"),
        ("HandLeft", "WristLeft"),
        ("ShoulderRight", "SpineShoulder"),
        ("ElbowRight", "ShoulderRight"),
        ("WristRight", "ElbowRight"),
        ("HandRight", "WristRight"),
        ("HipLeft", "SpineBase"),
        ("KneeLeft", "HipLeft"),
        ("AnkleLeft", "KneeLeft"),
        ("FootLeft", "AnkleLeft"),
        ("HipRight", "SpineBase"),
        ("KneeRight", "HipRight"),
        ("AnkleRight", "KneeRight"),
        ("FootRight", "AnkleRight"),
        ("SpineShoulder", "SpineMid"),
        ("HandTipLeft", "HandLeft"),
        ("ThumbLeft", "WristLeft"),
        ("HandTipRight", "HandRight"),
        ("ThumbRight", "WristRight"),
    ],
    description="Kinect for Windows SDK 2.0, JointType order; camera space, metres, y up",
)

MEDIAPIPE_POSE = _layout(
    "mediapipe_pose",
    [
        ("nose", None),
        ("left_eye_inner", "nose"),
        ("left_eye", "left_eye_inner"),
        ("left_eye_outer", "left_eye"),
        ("right_eye_inner", "nose"),
        ("right_eye", "right_eye_inner"),
        ("right_eye_outer", "right_eye"),
        ("left_ear", "left_eye_outer"),
        ("right_ear", "right_eye_outer"),
        ("mouth_left", "nose"),
        ("mouth_right", "nose"),
        ("left_shoulder", "nose"),
        ("right_shoulder", "nose"),
        ("left_elbow", "left_shoulder"),
        ("right_elbow", "right_shoulder"),
        ("left_wrist", "left_elbow"),
        ("right_wrist", "right_elbow"),
        ("left_pinky", "left_wrist"),
        ("right_pinky", "right_wrist"),
        ("left_index", "left_wrist"),
        ("right_index", "right_wrist"),
        ("left_thumb", "left_wrist"),
        ("right_thumb", "right_wrist"),
        ("left_hip", "left_shoulder"),
        ("right_hip", "right_shoulder"),
        ("left_knee", "left_hip"),
        ("right_knee", "right_hip"),
        ("left_ankle", "left_knee"),
        ("right_ankle", "right_knee"),
        ("left_heel", "left_ankle"),
        ("right_heel", "right_ankle"),
        ("left_foot_index", "left_ankle"),
        ("right_foot_index", "right_ankle"),
    ],
    description="MediaPipe Pose landmarks; world landmarks in metres, origin between the hips, x right, y down",
)

CMU_ASF = _layout(
    "cmu_asf",
    [
        ("root", None),
        ("lhipjoint", "root"),
        ("lfemur", "lhipjoint"),
        ("ltibia", "lfemur"),
        ("lfoot", "ltibia"),
        ("ltoes", "lfoot"),
        ("rhipjoint", "root"),
        ("rfemur", "rhipjoint"),
        ("rtibia", "rfemur"),
        ("rfoot", "rtibia"),
        ("rtoes", "rfoot"),
        ("lowerback", "root"),
        ("upperback", "lowerback"),
        ("thorax", "upperback"),
        ("lowerneck", "thorax"),
        ("upperneck", "lowerneck"),
        ("head", "upperneck"),
        ("lclavicle", "thorax"),
        ("lhumerus", "lclavicle"),
        ("lradius", "lhumerus"),
        ("lwrist", "lradius"),
        ("lhand", "lwrist"),
        ("lfingers", "lhand"),
        ("lthumb", "lwrist"),
        ("rclavicle", "thorax"),
        ("rhumerus", "rclavicle"),
        ("rradius", "rhumerus"),
        ("rwrist", "rradius"),
        ("rhand", "rwrist"),
        ("rfingers", "rhand"),
        ("rthumb", "rwrist"),
    ],
    description="CMU mocap ASF skeleton; a joint is the end point of the bone of that name (root: the root); m, y up",
)

COCO = _layout(
    "coco",
    [
        ("nose", None),
        ("left_eye", "nose"),
        ("right_eye", "nose"),
        ("left_ear", "left_eye"),
        ("right_ear", "right_eye"),
        ("left_shoulder", "nose"),
        ("right_shoulder", "nose"),
        ("left_elbow", "left_shoulder"),
        ("right_elbow", "right_shoulder"),
        ("left_wrist", "left_elbow"),
        ("right_wrist", "right_elbow"),
        ("left_hip", "left_shoulder"),
        ("right_hip", "right_shoulder"),
        ("left_knee", "left_hip"),
        ("right_knee", "right_hip"),
        ("left_ankle", "left_knee"),
        ("right_ankle", "right_knee"),
    ],
    dims=2,
    description="COCO keypoints (17), image pixels, x right, y down; the third coordinate is 0",
)

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (KINECT_V1, KINECT_V2, MEDIAPIPE_POSE, CMU_ASF, COCO)}


def bone_lengths(joints: np.ndarray, layout: Layout) -> np.ndarray:
    """Lengths of the layout's bones for joints [..., J, 3] -> [..., bones]."""
    pairs = np.array(layout.bones())
    return np.linalg.norm(joints[..., pairs[:, 1], :] - joints[..., pairs[:, 0], :], axis=-1)
