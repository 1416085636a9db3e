"""CMU Graphics Lab motion capture (Acclaim ASF skeleton + AMC motion): ``read_amc`` reads a trial as a ``Recording``.

Why: the CMU mocap walks are clean, freely redistributable 3D gait of known people,
which makes them the project's reference data (tests, demo, training). They come as
joint *angles*, so this package turns them into joint *positions* in metres.

How, one module per step:

- ``asf``: ``parse_asf`` reads the skeleton (``AsfSkeleton``, bones parents first).
- ``amc``: ``parse_amc`` reads one trial's values per bone (``AmcMotion``).
- ``kinematics``: ``forward_kinematics`` turns the angles into joint positions;
  ``cmu_joints`` checks the CMU layout and stacks them in ``CMU_ASF`` order.
- here, ``read_amc`` puts it together and returns a ``Recording`` in the ``CMU_ASF``
  layout (31 joints, each the end point of the ASF bone of that name; ``root`` is the root).

Every malformed input raises ``FormatError`` naming the file, the line and what was
expected; nothing escapes as a bare ``ValueError`` or ``IndexError``.
"""

from __future__ import annotations

from pathlib import Path

from sensors.errors import FormatError
from sensors.formats._io import checked
from sensors.formats.cmu.amc import AmcMotion, parse_amc
from sensors.formats.cmu.asf import BONE_DOFS, INCH_M, ROOT, ROOT_CHANNELS, AsfBone, AsfSkeleton, parse_asf
from sensors.formats.cmu.kinematics import check_cmu_layout, cmu_joints, forward_kinematics, rotation_matrices
from sensors.layouts import CMU_ASF
from sensors.recording import Recording

__all__ = [
    "ACKNOWLEDGEMENT",
    "BONE_DOFS",
    "CMU_RATE_HZ",
    "INCH_M",
    "ROOT",
    "ROOT_CHANNELS",
    "AmcMotion",
    "AsfBone",
    "AsfSkeleton",
    "check_cmu_layout",
    "cmu_joints",
    "default_asf_path",
    "forward_kinematics",
    "parse_amc",
    "parse_asf",
    "read_amc",
    "rotation_matrices",
]

CMU_RATE_HZ = 120.0
ACKNOWLEDGEMENT = (
    "The data used in this project was obtained from mocap.cs.cmu.edu. "
    "The database was created with funding from NSF EIA-0196217."
)


def default_asf_path(amc_path: str | Path) -> Path:
    """``SS.asf`` beside an AMC named ``SS_TT.amc``."""
    amc_path = Path(amc_path)
    subject, sep, _ = amc_path.stem.partition("_")
    if not sep or not subject:
        raise FormatError(amc_path, "", "cannot tell its skeleton: expected a name like SS_TT.amc (or pass asf_path)")
    return amc_path.with_name(f"{subject}.asf")


def read_amc(amc_path: str | Path, asf_path: str | Path | None = None) -> Recording:
    """A CMU trial as a one-body ``Recording`` in the ``CMU_ASF`` layout at 120 Hz."""
    amc_path = Path(amc_path)
    if asf_path is None:
        asf_path = default_asf_path(amc_path)
        if not asf_path.exists():
            raise FormatError(asf_path, "", f"no such file; the skeleton of {amc_path.name} is looked for here")
    asf_path = Path(asf_path)
    skeleton = parse_asf(asf_path)
    motion = parse_amc(amc_path, skeleton)
    joints = cmu_joints(skeleton, motion)
    trial = amc_path.stem
    metadata = {
        "subject": trial.partition("_")[0] if "_" in trial else asf_path.stem,
        "trial": trial,
        "first_frame": int(motion.frames[0]),
        "source": str(amc_path),
        "skeleton": str(asf_path),
        "acknowledgement": ACKNOWLEDGEMENT,
    }
    recording = Recording.single_body(CMU_ASF, joints, rate_hz=CMU_RATE_HZ, sensor_id="cmu-mocap", metadata=metadata)
    return checked(recording, amc_path)
