"""Tests of the NTU RGB+D ``.skeleton`` reader against files written here from arrays, following the format."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sensors.errors import FormatError
from sensors.formats.ntu import parse_sample_name, read_ntu_skeleton
from sensors.layouts import KINECT_V2, bone_lengths

# Kinect for Windows SDK 2.0 JointType values, written out independently of sensors.layouts.
JOINT_TYPE = {
    "SpineBase": 0,
    "SpineMid": 1,
    "Neck": 2,
    "Head": 3,
    "ShoulderLeft": 4,
    "ElbowLeft": 5,
    "WristLeft": 6,
    "HandLeft": 7,
    "ShoulderRight": 8,
    "ElbowRight": 9,
    "WristRight": 10,
    "HandRight": 11,
    "HipLeft": 12,
    "KneeLeft": 13,
    "AnkleLeft": 14,
    "FootLeft": 15,
    "HipRight": 16,
    "KneeRight": 17,
    "AnkleRight": 18,
    "FootRight": 19,
    "SpineShoulder": 20,
    "HandTipLeft": 21,
    "ThumbLeft": 22,
    "HandTipRight": 23,
    "ThumbRight": 24,
}
CONFIDENCE_OF_STATE = {0: 0.0, 1: 0.5, 2: 1.0}
NTU_NAME = "S001C002P003R002A013.skeleton"


@dataclass
class Body:
    """One body of one frame as the file holds it."""

    body_id: int
    joints: np.ndarray  # [25, 3] x y z, metres
    states: np.ndarray  # [25] joint tracking state 0..2


def fmt7(v: float) -> str:
    """Seven significant digits, as the NTU files are written."""
    return f"{v:.7g}"


def fmt_exact(v: float) -> str:
    """The shortest text that reads back as exactly this float32 value."""
    return repr(float(np.float32(v)))


def body_lines(body: Body, fmt=fmt7) -> list[str]:
    """The body line, the joint count and 25 joint lines with plausible image coordinates and orientations."""
    lines = [f"{body.body_id} 0 1 1 1 1 0 0.02764709 0.05745083 2", "25"]
    for (x, y, z), state in zip(body.joints, body.states, strict=True):
        depth = f"{256 + 365 * x / max(z, 0.5):.4f} {212 - 365 * y / max(z, 0.5):.4f}"
        color = f"{960 + 1060 * x / max(z, 0.5):.3f} {540 - 1060 * y / max(z, 0.5):.3f}"
        lines.append(f"{fmt(x)} {fmt(y)} {fmt(z)} {depth} {color} -0.2059419 0.05349901 0.9692109 -0.1239193 {state}")
    return lines


def ntu_lines(frames: list[list[Body]], fmt=fmt7) -> list[str]:
    """The lines of a syntactically correct .skeleton file holding ``frames``."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body in bodies:
            lines.extend(body_lines(body, fmt))
    return lines


def write_ntu(path: Path, frames: list[list[Body]], fmt=fmt7, newline: str = "\n") -> Path:
    path.write_text(newline.join(ntu_lines(frames, fmt)) + newline, newline="")
    return path


def random_body(rng: np.random.Generator, body_id: int) -> Body:
    joints = rng.normal([0.2, 0.0, 3.2], [0.3, 0.5, 0.2], size=(25, 3)).astype(np.float32)
    return Body(body_id, joints, rng.integers(0, 3, size=25))


def assert_bodies(rec, frames: list[list[Body]], exact: bool) -> None:
    """The recording holds exactly these frames and bodies, in order."""
    bodies = [b for frame in frames for b in frame]
    assert rec.num_frames == len(frames)
    np.testing.assert_array_equal(rec.body_offsets, np.cumsum([0] + [len(f) for f in frames]))
    np.testing.assert_array_equal(rec.track_ids, [b.body_id for b in bodies])
    assert rec.track_ids.dtype == np.int64 and rec.joints.dtype == np.float32 and rec.confidence.dtype == np.float32
    expected = np.array([b.joints for b in bodies], np.float32).reshape(-1, 25, 3)
    if exact:
        np.testing.assert_array_equal(rec.joints, expected)
    else:
        np.testing.assert_allclose(rec.joints, expected, rtol=1e-6, atol=0)
    states = np.array([b.states for b in bodies], np.int64).reshape(-1, 25)
    expected_confidence = [CONFIDENCE_OF_STATE[int(state)] for state in states.ravel()]
    np.testing.assert_array_equal(rec.confidence, np.array(expected_confidence, np.float32).reshape(-1, 25))


# --- round trips ---------------------------------------------------------------------------------


def test_two_frames_two_bodies_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    ids = (72057594037931101, 72057594037931102)
    frames = [[random_body(rng, i) for i in ids] for _ in range(2)]
    frames[0][0].states[:3] = [0, 1, 2]
    path = write_ntu(tmp_path / NTU_NAME, frames)

    rec = read_ntu_skeleton(path)

    assert rec.layout is KINECT_V2
    assert_bodies(rec, frames, exact=False)
    np.testing.assert_array_equal(rec.confidence[0, :3], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(rec.seq, [0, 1])
    np.testing.assert_allclose(rec.t, [0.0, 1 / 30])
    assert rec.rate_hz == 30.0 and rec.units == "m"
    assert rec.metadata == {
        "dataset": "ntu-rgbd",
        "person": "P003",
        "setup": 1,
        "camera": 2,
        "performer": 3,
        "replication": 2,
        "action": 13,
        "source": str(path),
    }
    assert rec.sensor_id == "ntu-rgbd-C002"
    frame = rec.frame(1)
    assert frame.seq == 1 and list(frame.track_ids) == list(ids)


def test_empty_frames_repeat_body_offsets(tmp_path):
    rng = np.random.default_rng(2)
    frames = [[], [random_body(rng, 7)], [], [], [random_body(rng, 7), random_body(rng, 9)], []]
    path = write_ntu(tmp_path / "walk.skeleton", frames)

    rec = read_ntu_skeleton(path)

    np.testing.assert_array_equal(rec.body_offsets, [0, 0, 1, 1, 1, 3, 3])
    assert_bodies(rec, frames, exact=False)
    assert [f.num_bodies for f in rec.frames()] == [0, 1, 0, 0, 2, 0]
    assert rec.metadata == {"dataset": "ntu-rgbd", "source": str(path)}
    assert rec.sensor_id == "ntu-rgbd"


def test_zero_frames_is_an_empty_recording(tmp_path):
    path = tmp_path / "none.skeleton"
    path.write_text("0\n")
    rec = read_ntu_skeleton(path)
    assert rec.num_frames == 0 and rec.joints.shape == (0, 25, 3) and list(rec.body_offsets) == [0]


def test_crlf_line_ends_trailing_spaces_and_blank_tail_are_read(tmp_path):
    rng = np.random.default_rng(3)
    frames = [[random_body(rng, 5)], [random_body(rng, 5)]]
    lines = [line + " " for line in ntu_lines(frames)]  # NTU body lines end in a space
    path = tmp_path / NTU_NAME
    path.write_bytes(("\r\n".join(lines) + "\r\n\r\n  \r\n").encode())

    assert_bodies(read_ntu_skeleton(path), frames, exact=False)


def test_largest_signed_64_bit_body_id_is_kept(tmp_path):
    rng = np.random.default_rng(4)
    frames = [[random_body(rng, 2**63 - 1), random_body(rng, 0)]]
    rec = read_ntu_skeleton(write_ntu(tmp_path / "ids.skeleton", frames))
    assert rec.track_ids.tolist() == [2**63 - 1, 0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("S017C003P020R002A060.skeleton", {"setup": 17, "camera": 3, "performer": 20, "replication": 2, "action": 60}),
        (
            "/data/nturgb+d_skeletons/S001C001P001R001A001",
            {"setup": 1, "camera": 1, "performer": 1, "replication": 1, "action": 1},
        ),
        ("S001C001P001R001A001_copy.skeleton", None),
        ("S1C1P1R1A1.skeleton", None),
        ("walk.skeleton", None),
    ],
)
def test_sample_name(name, expected):
    labels = parse_sample_name(name)
    if expected is None:
        assert labels is None
    else:
        assert labels is not None and {k: labels[k] for k in expected} == expected


# --- a realistic body --------------------------------------------------------------------------

# A person 1.75 m tall standing 3 m in front of a sensor 0.9 m above the floor, facing it
# (camera space: x across, y up, z away from the sensor; the person's left at -x).
STANDING = {
    "SpineBase": (0.00, 0.05, 3.00),
    "SpineMid": (0.00, 0.33, 3.02),
    "SpineShoulder": (0.00, 0.52, 3.02),
    "Neck": (0.00, 0.60, 3.02),
    "Head": (0.00, 0.75, 3.00),
    "ShoulderLeft": (-0.18, 0.48, 3.03),
    "ElbowLeft": (-0.22, 0.20, 3.04),
    "WristLeft": (-0.24, -0.04, 3.02),
    "HandLeft": (-0.24, -0.12, 3.01),
    "HandTipLeft": (-0.24, -0.20, 3.00),
    "ThumbLeft": (-0.21, -0.10, 2.98),
    "ShoulderRight": (0.18, 0.48, 3.03),
    "ElbowRight": (0.22, 0.20, 3.04),
    "WristRight": (0.24, -0.04, 3.02),
    "HandRight": (0.24, -0.12, 3.01),
    "HandTipRight": (0.24, -0.20, 3.00),
    "ThumbRight": (0.21, -0.10, 2.98),
    "HipLeft": (-0.09, 0.00, 3.00),
    "KneeLeft": (-0.10, -0.44, 2.98),
    "AnkleLeft": (-0.10, -0.84, 3.02),
    "FootLeft": (-0.10, -0.88, 2.92),
    "HipRight": (0.09, 0.00, 3.00),
    "KneeRight": (0.10, -0.44, 2.98),
    "AnkleRight": (0.10, -0.84, 3.02),
    "FootRight": (0.10, -0.88, 2.92),
}


def test_realistic_body_reads_back_in_kinect_v2_order(tmp_path):
    joints = np.zeros((25, 3), np.float32)
    for name, position in STANDING.items():
        joints[JOINT_TYPE[name]] = position
    states = np.full(25, 2)
    states[JOINT_TYPE["ThumbLeft"]] = 1
    path = write_ntu(tmp_path / NTU_NAME, [[Body(72057594037931101, joints, states)]])

    rec = read_ntu_skeleton(path)

    assert [KINECT_V2.index(name) for name in JOINT_TYPE] == list(JOINT_TYPE.values())
    read = {name: rec.joints[0, KINECT_V2.index(name)] for name in STANDING}
    for name, position in STANDING.items():
        np.testing.assert_allclose(read[name], position, atol=1e-6, err_msg=name)
    heights = [read[n][1] for n in ("Head", "Neck", "SpineShoulder", "SpineMid", "SpineBase", "KneeLeft", "AnkleLeft")]
    assert heights == sorted(heights, reverse=True)
    assert read["Head"][1] - read["FootLeft"][1] > 1.5
    bones = bone_lengths(rec.joints[0], KINECT_V2)
    assert np.all((bones > 0.03) & (bones < 0.5)), bones
    assert rec.confidence[0, KINECT_V2.index("ThumbLeft")] == 0.5
    assert rec.confidence[0, KINECT_V2.index("Head")] == 1.0


# --- malformed files ---------------------------------------------------------------------------


def base_lines() -> list[str]:
    """A valid file: 2 frames of 1 body. Lines (1-based): 1 frame count; 2 body count; 3 body line; 4 joint count;
    5-29 joints of frame 0; 30 body count; 31 body line; 32 joint count; 33-57 joints of frame 1."""
    rng = np.random.default_rng(5)
    lines = ntu_lines([[random_body(rng, 72057594037931101)], [random_body(rng, 72057594037931101)]])
    assert len(lines) == 57
    return lines


def set_line(n: int, text: str):
    def mutate(lines: list[str]) -> list[str]:
        lines[n - 1] = text
        return lines

    return mutate


def set_field(n: int, k: int, text: str):
    def mutate(lines: list[str]) -> list[str]:
        tokens = lines[n - 1].split()
        tokens[k] = text
        lines[n - 1] = " ".join(tokens)
        return lines

    return mutate


def drop_field(n: int):
    return lambda lines: set_line(n, " ".join(lines[n - 1].split()[:-1]))(lines)


def add_field(n: int):
    return lambda lines: set_line(n, lines[n - 1] + " 0")(lines)


def both(first, second):
    return lambda lines: second(first(lines))


MALFORMED = [
    # (id, mutation of base_lines, line the error names, fragment of the problem)
    ("empty file", lambda lines: [], 1, "empty file"),
    ("only blank lines", lambda lines: ["", "  ", ""], 1, "empty file"),
    ("frame count not an integer", set_line(1, "two"), 1, "frame count"),
    ("frame count negative", set_line(1, "-2"), 1, "frame count"),
    ("frame count with a second value", set_line(1, "2 1"), 1, "frame count"),
    ("body count not an integer", set_line(30, "1.0"), 30, "body count of frame 1"),
    ("body count blank", set_line(2, ""), 2, "body count of frame 0"),
    ("joint count 24", set_line(4, "24"), 4, "joint count 24, expected 25"),
    ("joint count not an integer", set_line(32, "x"), 32, "joint count"),
    ("body line with 9 values", drop_field(3), 3, "body line of 10 values"),
    ("body line with 11 values", add_field(31), 31, "body line of 10 values"),
    ("bodyID not an integer", set_field(3, 0, "abc"), 3, "bodyID"),
    ("bodyID negative", set_field(3, 0, "-5"), 3, "bodyID"),
    ("bodyID beyond int64", set_field(31, 0, str(2**63)), 31, "64-bit"),
    ("body field not an integer", set_field(3, 1, "0.5"), 3, "clipedEdges"),
    ("body lean not a number", set_field(31, 8, "left"), 31, "leanY"),
    ("joint line with 11 values", drop_field(10), 10, "12 numbers"),
    ("joint line with 13 values", add_field(40), 40, "12 numbers"),
    ("joint line blank", set_line(20, "  "), 20, "found 0 values"),
    ("joint value not a number", set_field(45, 0, "abc"), 45, "x 'abc' is not a number"),
    ("joint value with underscore", set_field(45, 3, "1_0"), 45, "depthX '1_0'"),
    ("joint position nan", set_field(6, 0, "nan"), 6, "not finite"),
    ("joint position inf", set_field(50, 2, "inf"), 50, "not finite"),
    ("joint position beyond float32", set_field(55, 1, "1e39"), 55, "not finite"),
    ("joint position beyond 10 km", set_field(45, 2, "-2e4"), 45, "beyond ±10000 m"),
    ("frame count of 5000 digits", set_line(1, "9" * 5000), 1, "a 5000-digit number, expected at most 19"),
    ("body count of 5000 digits", set_line(30, "9" * 5000), 30, "body count of frame 1: a 5000-digit number"),
    ("bodyID of 5000 digits", set_field(3, 0, "7" * 5000), 3, "64-bit"),
    ("tracking state 3", set_field(20, 11, "3"), 20, "tracking state 3"),
    ("tracking state -1", set_field(33, 11, "-1"), 33, "tracking state -1"),
    ("tracking state 1.5", set_field(57, 11, "1.5"), 57, "tracking state 1.5"),
    ("too many bodies claimed", set_line(2, "2"), 30, "body line of 10 values"),
    ("too few bodies claimed", both(set_line(1, "1"), set_line(2, "0")), 3, "unexpected content"),
    ("a whole frame missing", lambda lines: lines[:29], 30, "frame 1 (counting from 0) is missing"),
    ("frame count one too many", set_line(1, "3"), 58, "frame 2 (counting from 0) is missing"),
    ("file ends after a body line", lambda lines: lines[:31], 32, "inside frame 1"),
    ("file ends inside a joint block", lambda lines: lines[:40], 41, "joint line 9 of 25 of body 0"),
    ("extra line after the last frame", lambda lines: [*lines, "1"], 58, "after the last of 2 frames"),
    ("extra text after blank lines", lambda lines: [*lines, "", "", "junk"], 60, "'junk'"),
    ("earlier joint problem wins", both(drop_field(10), set_line(31, "x")), 10, "12 numbers"),
    ("earlier state problem wins", both(set_field(50, 11, "7"), set_field(55, 0, "nan")), 50, "tracking state 7"),
    ("earlier structure problem wins", both(set_line(4, "24"), drop_field(40)), 4, "expected 25"),
]


@pytest.mark.parametrize(("mutate", "line", "fragment"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_file_names_file_and_line(tmp_path, mutate, line, fragment):
    path = tmp_path / NTU_NAME
    lines = mutate(base_lines())
    path.write_text("\n".join(lines) + ("\n" if lines else ""))

    with pytest.raises(FormatError) as info:
        read_ntu_skeleton(path)

    err = info.value
    assert err.path == str(path)
    assert err.where == f"line {line}", str(err)
    assert fragment in err.problem, str(err)
    assert str(err).startswith(f"{path}, line {line}: ")


def test_unmutated_base_file_is_valid(tmp_path):
    path = tmp_path / NTU_NAME
    path.write_text("\n".join(base_lines()) + "\n")
    assert read_ntu_skeleton(path).num_body_frames == 2


def test_binary_content_is_a_format_error(tmp_path):
    path = tmp_path / "bad.skeleton"
    path.write_bytes(b"2\n1\n\xff\xfe\x00\n")
    with pytest.raises(FormatError) as info:
        read_ntu_skeleton(path)
    assert info.value.where == "line 3" and "ASCII" in info.value.problem


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError) as info:
        read_ntu_skeleton(tmp_path / "absent.skeleton")
    assert "cannot read" in str(info.value) and "absent.skeleton" in str(info.value)


# --- property: anything the writer writes reads back exactly -----------------------------------

bodies = st.builds(
    Body,
    body_id=st.integers(0, 2**63 - 1),
    joints=arrays(np.float32, (25, 3), elements=st.floats(-100, 100, width=32)),
    states=arrays(np.int64, 25, elements=st.integers(0, 2)),
)


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(st.lists(bodies, max_size=3, unique_by=lambda b: b.body_id), max_size=5), crlf=st.booleans())
def test_random_frames_read_back_exactly(frames, crlf):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_ntu(Path(tmp) / NTU_NAME, frames, fmt=fmt_exact, newline="\r\n" if crlf else "\n")
        rec = read_ntu_skeleton(path)
    assert_bodies(rec, frames, exact=True)
    np.testing.assert_array_equal(rec.seq, np.arange(len(frames)))
    np.testing.assert_allclose(rec.t, np.arange(len(frames)) / 30)


def test_one_body_id_twice_in_a_frame_is_refused(tmp_path):
    rng = np.random.default_rng(9)
    path = write_ntu(tmp_path / NTU_NAME, [[random_body(rng, 7)], [random_body(rng, 7), random_body(rng, 7)]])
    with pytest.raises(FormatError, match=r"frame 1: track id 7 appears twice"):
        read_ntu_skeleton(path)
