"""CMU mocap (ASF/AMC): forward kinematics checked on real walks and on hand-made files; strict errors."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import FormatError
from sensors.formats import iter_recordings, open_dataset
from sensors.formats.cmu import (
    ACKNOWLEDGEMENT,
    CMU_RATE_HZ,
    AmcMotion,
    AsfSkeleton,
    forward_kinematics,
    parse_amc,
    parse_asf,
    read_amc,
)
from sensors.layouts import CMU_ASF, bone_lengths
from tests.helpers import assert_one_line_error, gaitwatch
from tests.shared_data import CMU_DIR

TRIALS = sorted(CMU_DIR.glob("*/*.amc")) if CMU_DIR.is_dir() else []
MISSING = f"CMU mocap trials not found at {CMU_DIR} (see ../shared/datasets/cmu-mocap/README.md)"


@pytest.fixture(scope="module")
def walk_07_01(cmu_dir: Path) -> tuple[AsfSkeleton, AmcMotion, dict[str, np.ndarray]]:
    skeleton = parse_asf(cmu_dir / "07" / "07.asf")
    motion = parse_amc(cmu_dir / "07" / "07_01.amc", skeleton)
    return skeleton, motion, forward_kinematics(skeleton, motion)


def _joint(recording_joints: np.ndarray, name: str) -> np.ndarray:
    return recording_joints[:, CMU_ASF.index(name)]


# ---------------------------------------------------------------------------------------------- real walks


def test_asf_lengths_are_scaled_to_metres(walk_07_01):
    skeleton, _, _ = walk_07_01
    inches_per_unit = 1 / 0.45  # ":units length 0.45" in 07.asf
    assert skeleton.length_scale_to_metres == pytest.approx(inches_per_unit * 0.0254)
    assert skeleton.bones["lfemur"].length == pytest.approx(6.92462 * inches_per_unit * 0.0254)  # "length 6.92462"
    assert skeleton.bones["lfemur"].parent == "lhipjoint"
    assert skeleton.bones["lfemur"].dof == ("rx", "ry", "rz")
    assert skeleton.bones["lhipjoint"].dof == ()
    assert skeleton.angle_unit == "deg"
    assert set(skeleton.bones) == set(CMU_ASF.joints[1:])


def test_bone_lengths_equal_asf_lengths_in_every_frame(walk_07_01):
    skeleton, motion, positions = walk_07_01
    assert motion.num_frames == 316
    for name, bone in skeleton.bones.items():
        measured = np.linalg.norm(positions[name] - positions[bone.parent], axis=1)
        np.testing.assert_allclose(measured, bone.length, rtol=1e-5, err_msg=name)
    recording = read_amc(CMU_DIR / "07" / "07_01.amc")
    expected = np.array([skeleton.bones[CMU_ASF.joints[c]].length for _, c in CMU_ASF.bones()])
    np.testing.assert_allclose(bone_lengths(recording.joints, CMU_ASF), np.broadcast_to(expected, (316, 30)), atol=2e-5)


def test_walker_is_upright_human_sized_and_travels(walk_07_01):
    joints = read_amc(CMU_DIR / "07" / "07_01.amc").joints
    head, root = _joint(joints, "head")[:, 1], _joint(joints, "root")[:, 1]
    toes = np.maximum(_joint(joints, "ltoes")[:, 1], _joint(joints, "rtoes")[:, 1])
    assert np.all(head > root) and np.all(root > toes)
    lowest = np.minimum(_joint(joints, "ltoes")[:, 1], _joint(joints, "rtoes")[:, 1])
    assert 1.4 < np.median(head - lowest) < 2.1
    assert abs(lowest.min()) < 0.05  # the feet reach the capture floor (y = 0)
    travel = np.linalg.norm(joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]])
    assert travel > 1.0


def test_feet_are_planted_in_stance(walk_07_01):
    """A correct rotation convention plants each foot while the body moves on (a wrong one makes feet skate)."""
    joints = read_amc(CMU_DIR / "07" / "07_01.amc").joints
    body_speed = np.linalg.norm(np.diff(joints[:, 0, [0, 2]], axis=0), axis=1) * CMU_RATE_HZ
    assert np.median(body_speed) > 0.8
    for foot in ("lfoot", "rfoot"):
        speed = np.linalg.norm(np.diff(_joint(joints, foot), axis=0), axis=1) * CMU_RATE_HZ
        assert np.percentile(speed, 5) < 0.12, foot


def test_recording_fields(walk_07_01):
    recording = read_amc(CMU_DIR / "07" / "07_01.amc")
    assert recording.layout == CMU_ASF and recording.joints.dtype == np.float32
    assert recording.rate_hz == CMU_RATE_HZ == 120.0
    assert recording.sensor_id == "cmu-mocap"
    np.testing.assert_allclose(np.diff(recording.t), 1 / 120)
    assert np.all(recording.track_ids == 0) and np.all(recording.confidence == 1)
    meta = recording.metadata
    assert (meta["subject"], meta["trial"], meta["source"]) == ("07", "07_01", str(CMU_DIR / "07" / "07_01.amc"))
    assert meta["acknowledgement"] == ACKNOWLEDGEMENT and "NSF EIA-0196217" in ACKNOWLEDGEMENT


# ---------------------------------------------------------------------------------------------- kinematics by hand


def test_zero_angles_give_cumulative_offsets(walk_07_01):
    skeleton, _, _ = walk_07_01
    channels = {"root": np.zeros((2, 6))} | {n: np.zeros((2, len(b.dof))) for n, b in skeleton.bones.items()}
    positions = forward_kinematics(skeleton, AmcMotion("zeros", np.array([1, 2]), channels, "deg"))

    def rest(name: str) -> np.ndarray:
        if name == "root":
            return np.zeros(3)
        bone = skeleton.bones[name]
        return rest(bone.parent) + np.array(bone.direction) * bone.length

    for name in skeleton.joint_names:
        np.testing.assert_allclose(positions[name], np.broadcast_to(rest(name), (2, 3)), atol=1e-12, err_msg=name)


TINY_ASF = """\
# a two-bone arm; length unit 0.0254 inch so that one unit is one metre
:version 1.10
:name tiny
:units
  mass 1.0
  length 0.0254
  angle deg
:documentation
  hand-made for tests
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 2 0 0
     length 1
     axis 0 0 0 XYZ
    dof rx ry rz
    limits (-180.0 180.0)
           (-180.0 180.0)
           (-180.0 180.0)
  end
  begin
     id 2
     name lower
     direction 1 0 0
     length 0.5
     axis 0 0 90 XYZ
    dof rx
  end
:hierarchy
  begin
    root upper
    upper lower
  end
"""
TINY_AMC = """\
:FULLY-SPECIFIED
:DEGREES
1
root 0 0 0 0 0 0
upper 0 0 0
lower 0
2
root 0 0 0 0 0 0
lower 0
upper 0 0 90
3
upper 0 0 0
lower 90
root 0 0 0 0 0 0
4
root 2 0 0 0 90 0
upper 0 0 0
lower 0
5
root 0 0 0 0 0 0
upper 90 0 90
lower 0
"""
TINY_EXPECTED = {  # frame: (upper end, lower end)
    1: ((1, 0, 0), (1.5, 0, 0)),  # rest pose along x
    2: ((0, 1, 0), (0, 1.5, 0)),  # upper rz 90 turns x to y and carries the child (bones listed in another order)
    3: ((1, 0, 0), (1, 0, -0.5)),  # lower's axis z 90 makes its rx a turn about global y: x -> -z (root listed last)
    4: ((2, 0, -1), (2, 0, -1.5)),  # root moved 2 along x and turned ry 90
    5: ((0, 1, 0), (0, 1.5, 0)),  # rx then rz (R = Rz Rx): x stays x, then x -> y
}


def test_hand_made_rotations_move_children_where_expected(tmp_path: Path):
    (tmp_path / "tiny.asf").write_text(TINY_ASF)
    (tmp_path / "tiny.amc").write_text(TINY_AMC)
    skeleton = parse_asf(tmp_path / "tiny.asf")
    assert skeleton.length_scale_to_metres == pytest.approx(1.0)
    assert skeleton.bones["upper"].direction == (1.0, 0.0, 0.0)  # normalised
    assert skeleton.bones["upper"].limits == ((-180.0, 180.0),) * 3
    motion = parse_amc(tmp_path / "tiny.amc", skeleton)
    assert motion.frames.tolist() == [1, 2, 3, 4, 5]
    positions = forward_kinematics(skeleton, motion)
    for frame, (upper, lower) in TINY_EXPECTED.items():
        np.testing.assert_allclose(positions["upper"][frame - 1], upper, atol=1e-12, err_msg=f"frame {frame}")
        np.testing.assert_allclose(positions["lower"][frame - 1], lower, atol=1e-12, err_msg=f"frame {frame}")


def test_skeleton_other_than_cmu_layout_is_refused(tmp_path: Path):
    (tmp_path / "01.asf").write_text(TINY_ASF)
    (tmp_path / "01_01.amc").write_text(TINY_AMC)
    with pytest.raises(FormatError) as err:
        read_amc(tmp_path / "01_01.amc")
    assert str(tmp_path / "01.asf") in str(err.value)
    assert "missing" in str(err.value) and "lfemur" in str(err.value) and "extra upper, lower" in str(err.value)


# ---------------------------------------------------------------------------------------------- malformed files


def _line_index(lines: list[str], frame: int, bone: str | None = None) -> int:
    """0-based index of frame ``frame``'s number line, or of that frame's line for ``bone``."""
    k = next(i for i, s in enumerate(lines) if s.strip() == str(frame))
    if bone is None:
        return k
    return next(i for i in range(k + 1, len(lines)) if lines[i].split()[0] == bone)


def _edit(lines: list[str], index: int, text: str | None) -> list[str]:
    return lines[:index] + ([] if text is None else [text]) + lines[index + 1 :]


AMC_CASES: dict[str, Callable[[list[str]], tuple[list[str], int, str]]] = {
    # each gives (edited lines, 1-based line the error must name, words the message must hold)
    "truncated": lambda ls: (ls[: _line_index(ls, 3) + 12], _line_index(ls, 3) + 1, "frame 3 lacks bones"),
    "non-numeric": lambda ls: (_edit(ls, i := _line_index(ls, 2, "rtibia"), "rtibia abc"), i + 1, "numbers"),
    "non-finite": lambda ls: (_edit(ls, i := _line_index(ls, 5, "lhand"), "lhand nan 1.0"), i + 1, "finite"),
    "value count": lambda ls: (_edit(ls, i := _line_index(ls, 4, "lfemur"), "lfemur 1 2"), i + 1, "expected 3 values"),
    "unknown bone": lambda ls: (_edit(ls, i := _line_index(ls, 2, "thorax"), "thorax2 1 2 3"), i + 1, "thorax2"),
    "missing bone": lambda ls: (
        _edit(ls, _line_index(ls, 7, "head"), None),
        _line_index(ls, 7) + 1,
        "lacks bones head",
    ),
    "frame skipped": lambda ls: (_edit(ls, i := _line_index(ls, 3), "4"), i + 1, "frame number 4, expected 3"),
    "root count": lambda ls: (_edit(ls, i := _line_index(ls, 1, "root"), "root 1 2 3"), i + 1, "expected 6 values"),
}


@pytest.mark.parametrize("case", AMC_CASES)
def test_malformed_amc_names_file_and_line(case: str, cmu_dir: Path, tmp_path: Path):
    skeleton = parse_asf(cmu_dir / "07" / "07.asf")
    lines = (cmu_dir / "07" / "07_01.amc").read_text().splitlines()
    edited, line, words = AMC_CASES[case](lines)
    path = tmp_path / "07_01.amc"
    path.write_text("\n".join(edited) + "\n")
    with pytest.raises(FormatError) as err:
        parse_amc(path, skeleton)
    assert err.value.path == str(path) and err.value.where == f"line {line}"
    assert str(path) in str(err.value) and f"line {line}" in str(err.value) and words in str(err.value)


def _asf_index(lines: list[str], pattern: str, after: int = 0) -> int:
    return next(i for i in range(after, len(lines)) if re.fullmatch(pattern, lines[i].strip()))


def _lfemur_begin(ls: list[str]) -> int:
    return _asf_index(ls, r"name lfemur") - 2


ASF_CASES: dict[str, Callable[[list[str]], tuple[list[str], int, str]]] = {
    "bone without length": lambda ls: (
        _edit(ls, _asf_index(ls, r"length 6\.92462"), None),
        _lfemur_begin(ls) + 1,
        "bone 'lfemur' (lines 25-34) has no 'length'",
    ),
    "non-numeric direction": lambda ls: (
        _edit(ls, i := _asf_index(ls, r"direction .*", _lfemur_begin(ls)), "direction 0.3 x 0"),
        i + 1,
        "expected numbers",
    ),
    "short axis": lambda ls: (_edit(ls, i := _asf_index(ls, r"axis 0 0 20\s+XYZ"), "axis 0 20 XYZ"), i + 1, "axis"),
    "unknown bone in hierarchy": lambda ls: (
        _edit(ls, i := _asf_index(ls, r"lfemur ltibia"), "lfemur ltibiax"),
        i + 1,
        "unknown bone 'ltibiax'",
    ),
    "bone without parent": lambda ls: (
        _edit(ls, _asf_index(ls, r"lfoot ltoes"), None),
        _asf_index(ls, r":hierarchy") + 1,
        "ltoes",
    ),
    "no hierarchy": lambda ls: (
        ls[: _asf_index(ls, r":hierarchy")],
        len(ls[: _asf_index(ls, r":hierarchy")]),
        ":hierarchy",
    ),
    "bad dof": lambda ls: (_edit(ls, i := _asf_index(ls, r"dof rx ry rz"), "dof rx rq"), i + 1, "rx, ry, rz"),
    "limits count": lambda ls: (
        _edit(ls, i := _asf_index(ls, r"\(-60\.0 70\.0\)"), None),
        i - 1,
        "3 '(min max)' pairs",
    ),
}


@pytest.mark.parametrize("case", ASF_CASES)
def test_malformed_asf_names_file_and_line(case: str, cmu_dir: Path, tmp_path: Path):
    lines = (cmu_dir / "07" / "07.asf").read_text().splitlines()
    edited, line, words = ASF_CASES[case](lines)
    path = tmp_path / "07.asf"
    path.write_text("\n".join(edited) + "\n")
    with pytest.raises(FormatError) as err:
        parse_asf(path)
    assert err.value.path == str(path) and err.value.where == f"line {line}"
    assert str(path) in str(err.value) and f"line {line}" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize(
    ("asf_edit", "amc_edit", "where", "words"),
    [
        (None, ("root", "root 1e300 0 0 0 0 0"), "frame 2", "joint root at (5.64444e+298, 0, 0) m"),
        (None, ("root", "root 0 0 1e6 0 0 0"), "frame 2", "joint root at (0, 0, 56444.4) m"),
        (("length 0.45", "length 1e-320"), None, "frame 1", "expected finite coordinates within ±10000 m"),
    ],
)
def test_joints_beyond_the_bound_are_refused(cmu_dir: Path, tmp_path: Path, asf_edit, amc_edit, where: str, words: str):
    asf = (cmu_dir / "07" / "07.asf").read_text()
    lines = (cmu_dir / "07" / "07_01.amc").read_text().splitlines()
    if asf_edit:
        asf = asf.replace(*asf_edit)
    if amc_edit:
        lines = _edit(lines, _line_index(lines, 2, amc_edit[0]), amc_edit[1])
    (tmp_path / "07.asf").write_text(asf)
    (tmp_path / "07_01.amc").write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as err:
        read_amc(tmp_path / "07_01.amc")
    assert err.value.where == where and words in err.value.problem, str(err.value)


def test_missing_asf_names_the_path_looked_for(cmu_dir: Path, tmp_path: Path):
    shutil.copy(cmu_dir / "07" / "07_01.amc", tmp_path / "07_01.amc")
    with pytest.raises(FormatError) as err:
        read_amc(tmp_path / "07_01.amc")
    assert str(tmp_path / "07.asf") in str(err.value) and "07_01.amc" in str(err.value)
    shutil.copy(cmu_dir / "07" / "07_01.amc", tmp_path / "walk.amc")
    with pytest.raises(FormatError, match="SS_TT"):
        read_amc(tmp_path / "walk.amc")
    recording = read_amc(tmp_path / "walk.amc", cmu_dir / "07" / "07.asf")  # an explicit skeleton works
    assert recording.num_frames == 316 and recording.metadata["subject"] == "07"


# ---------------------------------------------------------------------------------------------- every trial


def test_all_walking_trials_are_present(cmu_dir: Path):
    assert len(TRIALS) == 26


@pytest.mark.parametrize(
    "amc", TRIALS or [pytest.param(None, marks=pytest.mark.skip(reason=MISSING))], ids=lambda p: p and p.stem
)
def test_every_trial_reads_into_a_plausible_walk(amc: Path):
    recording = read_amc(amc)
    skeleton = parse_asf(amc.with_name(f"{amc.parent.name}.asf"))
    frame_lines = re.findall(r"^\d+$", amc.read_text(), flags=re.MULTILINE)
    assert recording.num_frames == len(frame_lines) > 200
    assert recording.metadata["first_frame"] == int(frame_lines[0])
    assert recording.metadata["trial"] == amc.stem and recording.metadata["subject"] == amc.parent.name
    joints = recording.joints
    assert joints.shape == (len(frame_lines), 31, 3) and np.isfinite(joints).all()
    expected = np.array([skeleton.bones[CMU_ASF.joints[c]].length for _, c in CMU_ASF.bones()])
    np.testing.assert_allclose(bone_lengths(joints, CMU_ASF), np.broadcast_to(expected, (len(joints), 30)), atol=2e-5)
    assert np.all(_joint(joints, "head")[:, 1] > _joint(joints, "root")[:, 1])
    assert np.linalg.norm(joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]]) > 1.0


# ---------------------------------------------------------------------------------------------- folders


def test_a_folder_of_subjects_and_a_subject_folder_read_as_datasets_of_labelled_trials(cmu_dir: Path):
    trials = [r.metadata for r in iter_recordings([cmu_dir])]
    assert [m["trial"] for m in trials] == [p.stem for p in TRIALS]
    assert all(m["subject"] == m["trial"].split("_")[0] and m["source"].endswith(".amc") for m in trials)
    subject = [r.metadata["trial"] for r in iter_recordings([cmu_dir / "07"])]
    assert subject == [p.stem for p in TRIALS if p.parent.name == "07"] and len(subject) > 5
    assert open_dataset(cmu_dir / "07" / "07_01.amc") is None  # a trial is a file, read as one


def test_info_convert_enroll_and_replay_take_a_cmu_folder(cmu_dir: Path, tmp_path: Path):
    summary = json.loads(gaitwatch("info", cmu_dir, "--json").stdout)
    assert summary["bodies"] == len(TRIALS) and summary["layout"] == "cmu_asf"
    assert sorted(labels["trial"] for labels in summary["track_labels"].values()) == [p.stem for p in TRIALS]
    out = tmp_path / "07.gwrec"
    assert "9 tracks" in gaitwatch("convert", cmu_dir / "07", out, "--canonical", "--rate", "30").stdout
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    enrolled = gaitwatch("gallery", "enroll", gallery, cmu_dir / "07", cmu_dir / "08").stdout
    assert "(2 new identities)" in enrolled, enrolled
    names = gaitwatch("gallery", "list", gallery).stdout
    assert "07" in names and "08" in names
    replay = gaitwatch("replay", cmu_dir / "07", "--gallery", gallery, "--speed", "max", "--pub", "tcp://127.0.0.1:0")
    ended = [line for line in replay.stdout.splitlines() if " ended " in line]
    assert len(ended) == 9 and all("right" in line for line in ended), replay.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(gaitwatch("info", empty, ok=False), "holds no KGBD walks", "or CMU trials")
