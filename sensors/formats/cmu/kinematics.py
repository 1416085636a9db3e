"""Forward kinematics: ASF/AMC joint angles to joint positions in metres (``CMU_ASF`` order for CMU skeletons).

``forward_kinematics`` is the standard ASF/AMC chain, vectorised over frames (the only
Python loop is over bones): ``C`` is the bone's ``axis`` rotation, ``M`` the rotation
from its AMC angles, the local rotation is ``L = C M C^-1``, the global one
``G = G_parent L`` and the bone's end point ``p = p_parent + G (direction * length)``.
The root's position is its ``TX TY TZ`` channels and its rotation ``C M C^-1`` with the
root's axis order and orientation.

Rotation convention: an angle triple with order ``"XYZ"`` is applied about fixed axes
in that order, ``R = Rz @ Ry @ Rx``. The same rule composes an ASF ``axis`` (angles
listed in the order of its letters), a bone's AMC values (in the order of its ``dof``
line, absent dofs being 0) and the root's rotation channels (in their ``order``).
"""

from __future__ import annotations

import math

import numpy as np

from sensors.errors import FormatError
from sensors.formats.cmu.amc import AmcMotion
from sensors.formats.cmu.asf import ROOT, AsfSkeleton
from sensors.layouts import CMU_ASF
from sensors.recording import MAX_ABS_METRES


def rotation_matrices(angles: np.ndarray, order: str) -> np.ndarray:
    """Rotations [..., 3, 3] from angles [..., k] in radians about fixed axes applied in ``order`` (first first).

    ``order`` has one letter (x, y or z, any case) per angle; for "XYZ" the result is Rz @ Ry @ Rx.
    """
    angles = np.asarray(angles, dtype=np.float64)
    result = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for i, letter in enumerate(order.lower()):
        result = _axis_rotation(letter, angles[..., i]) @ result
    return result


def _axis_rotation(letter: str, angle: np.ndarray) -> np.ndarray:
    a, b = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[letter]
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((*np.shape(angle), 3, 3))
    out[..., 3 - a - b, 3 - a - b] = 1.0
    out[..., a, a] = c
    out[..., a, b] = -s
    out[..., b, a] = s
    out[..., b, b] = c
    return out


def _radians(unit: str) -> float:
    return math.pi / 180.0 if unit == "deg" else 1.0


def forward_kinematics(skeleton: AsfSkeleton, motion: AmcMotion) -> dict[str, np.ndarray]:
    """Joint positions in metres, float64 [T, 3] per name of ``skeleton.joint_names``.

    A bone's position is its end point. Bones without AMC values (no dofs) keep ``L = I``.
    """
    to_rad, asf_rad = _radians(motion.angle_unit), _radians(skeleton.angle_unit)
    root = motion.channels[ROOT]
    column = {channel: root[:, i] for i, channel in enumerate(skeleton.root_order)}
    turns = [c for c in skeleton.root_order if c.startswith("R")]
    axis = rotation_matrices(np.array(skeleton.root_orientation) * asf_rad, skeleton.root_axis_order)
    moved = rotation_matrices(np.stack([column[c] for c in turns], axis=-1) * to_rad, "".join(c[1] for c in turns))
    rotation = {ROOT: axis @ moved @ axis.T}
    position = {ROOT: np.stack([column["TX"], column["TY"], column["TZ"]], axis=-1) * skeleton.length_scale_to_metres}
    for name, bone in skeleton.bones.items():
        local = np.eye(3)
        values = motion.channels.get(name)
        if bone.dof and values is not None:
            axis = rotation_matrices(np.array(bone.axis) * asf_rad, bone.axis_order)
            moved = rotation_matrices(values * to_rad, "".join(d[1] for d in bone.dof))
            local = axis @ moved @ axis.T
        rotation[name] = rotation[bone.parent] @ local
        offset = np.array(bone.direction) * bone.length
        position[name] = position[bone.parent] + rotation[name] @ offset
    return position


def check_cmu_layout(skeleton: AsfSkeleton) -> None:
    """Raise ``FormatError`` unless the skeleton's bones and parents are those of ``layouts.CMU_ASF``."""
    expected = dict(zip(CMU_ASF.joints, CMU_ASF.parents, strict=True))
    missing = [n for n in CMU_ASF.joints[1:] if n not in skeleton.bones]
    extra = [n for n in skeleton.bones if n not in expected]
    if missing or extra:
        listed = [f"{label} {', '.join(names)}" for label, names in (("missing", missing), ("extra", extra)) if names]
        raise FormatError(skeleton.path, ":bonedata", f"bones do not match the CMU ASF layout ({'; '.join(listed)})")
    for name, bone in skeleton.bones.items():
        parent = CMU_ASF.joints[expected[name]]
        if bone.parent != parent:
            problem = f"bone {name!r} has parent {bone.parent!r}; the CMU ASF layout expects {parent!r}"
            raise FormatError(skeleton.path, ":hierarchy", problem)


def cmu_joints(skeleton: AsfSkeleton, motion: AmcMotion) -> np.ndarray:
    """Joints float32 [T, 31, 3] in metres in ``CMU_ASF`` order (y up, as the capture).

    Finite values can still go far (a tiny length unit, a huge root translation): a joint beyond
    ``MAX_ABS_METRES``, or one that overflowed, is refused here, in float64, naming the AMC frame.
    """
    check_cmu_layout(skeleton)
    with np.errstate(over="ignore", invalid="ignore"):
        position = forward_kinematics(skeleton, motion)
        joints = np.stack([position[name] for name in CMU_ASF.joints], axis=1)
        far = ~(np.abs(joints) <= MAX_ABS_METRES).all(axis=-1)
    if far.any():
        t, j = (int(v) for v in np.argwhere(far)[0])
        found = ", ".join(f"{v:g}" for v in joints[t, j])
        problem = f"joint {CMU_ASF.joints[j]} at ({found}) m: expected finite coordinates within ±{MAX_ABS_METRES:g} m"
        raise FormatError(motion.path, f"frame {motion.frames[t]}", problem)
    return joints.astype(np.float32)
