"""Kinect v2 CSV exports: header styles, time/frame/body columns, the mapping file, strict errors, the commands."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import FormatError
from sensors.formats import read_file
from sensors.formats.gwrec import read_gwrec
from sensors.layouts import KINECT_V2
from tests.helpers import assert_one_line_error, gaitwatch

Namer = Callable[[str, str], str]
STYLES: dict[str, Namer] = {
    "SpineBase_X": lambda joint, axis: f"{joint}_{axis.upper()}",
    "SpineBase.x": lambda joint, axis: f"{joint}.{axis}",
    "spinebase_x": lambda joint, axis: f"{joint.lower()}_{axis}",
    "Spine Base Position X": lambda joint, axis: f"{joint} Position {axis.upper()}",
}


def walk(frames: int = 60, seed: int = 0) -> np.ndarray:
    """A body [frames, 25, 3] in metres, swinging and moving away from the sensor."""
    rng = np.random.default_rng(seed)
    body = rng.normal(scale=0.3, size=(25, 3)) + np.array([0.0, 0.0, 2.5])
    swing = rng.normal(scale=0.05, size=(25, 3))
    t = np.arange(frames) / 30
    return (body + np.sin(2 * np.pi * t)[:, None, None] * swing + (t * 0.8)[:, None, None] * [0, 0, 1]).astype(
        np.float32
    )


def write_csv(
    path: Path,
    joints: np.ndarray,
    name: Namer = STYLES["SpineBase_X"],
    extra: dict[str, list] | None = None,
    delimiter: str = ",",
    scale: float = 1.0,
) -> Path:
    """One row per body-frame: the ``extra`` columns first (time, frame, body...), then x, y, z of every joint."""
    extra = extra or {}
    header = [*extra, *(name(joint, axis) for joint in KINECT_V2.joints for axis in "xyz")]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(header)
        for k, body in enumerate(joints):
            writer.writerow(
                [*(values[k] for values in extra.values()), *(f"{v:.6f}" for v in body.reshape(-1) * scale)]
            )
    return path


def read_error(path: Path) -> FormatError:
    with pytest.raises(FormatError) as err:
        read_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    return err.value


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_header_styles_and_delimiters_read_alike(tmp_path: Path, style: str, delimiter: str):
    joints = walk()
    rec = read_file(write_csv(tmp_path / "walk.csv", joints, STYLES[style], delimiter=delimiter))
    assert rec.layout == KINECT_V2 and rec.units == "m" and rec.num_frames == len(joints)
    np.testing.assert_allclose(rec.joints, joints, atol=1e-6)
    assert (rec.confidence == 1).all() and (rec.track_ids == 0).all()
    assert rec.rate_hz == 30.0 and rec.t == pytest.approx(np.arange(len(joints)) / 30)  # no time column: 30 Hz
    assert rec.sensor_id == "kinect-csv" and rec.metadata["source"] == str(tmp_path / "walk.csv")


def test_time_columns_in_seconds_milliseconds_and_ticks(tmp_path: Path):
    joints, t = walk(), 12.5 + np.arange(60) / 30
    for column, values in [("time", t), ("Timestamp (ms)", t * 1e3), ("RelativeTime_ticks", t * 1e7)]:
        rec = read_file(write_csv(tmp_path / "walk.csv", joints, extra={column: [f"{v:.6f}" for v in values]}))
        assert rec.t == pytest.approx(t) and rec.rate_hz == pytest.approx(30.0, rel=1e-3), column


def test_milliseconds_under_a_plain_time_name_are_refused_with_the_fix(tmp_path: Path):
    path = write_csv(tmp_path / "walk.csv", walk(), extra={"time": [f"{33.3 * k:.1f}" for k in range(60)]})
    err = read_error(path)
    assert err.where == "column 1 ('time')" and "median 33.3 s" in err.problem and "time_ms" in err.problem
    (tmp_path / "walk.columns.json").write_text('{"time_units": "ms"}')
    assert read_file(path).t[-1] == pytest.approx(59 * 0.0333)


def test_bodies_share_frames_by_frame_number_or_time(tmp_path: Path):
    a, b = walk(seed=1), walk(seed=2)
    frames = [0, 0, 1, 1, 3, 3]  # frame 2 was dropped: a gap of two periods
    rows = np.stack([a[0], b[0], a[1], b[1], a[2], b[2]])
    bodies = ["72057594037928001", "72057594037928002"] * 3
    rec = read_file(write_csv(tmp_path / "two.csv", rows, extra={"FrameNumber": frames, "BodyId": bodies}))
    assert rec.num_frames == 3 and list(rec.seq) == [0, 1, 3] and rec.t == pytest.approx([0, 1 / 30, 3 / 30])
    assert sorted(rec.unique_tracks()) == [72057594037928001, 72057594037928002]
    np.testing.assert_allclose(rec.track(72057594037928002)[1], b[:3], atol=1e-6)
    times = [f"{k // 2 / 30:.6f}" for k in range(6)]
    rec = read_file(write_csv(tmp_path / "by-time.csv", rows, extra={"time_s": times, "body": [0, 1] * 3}))
    assert rec.num_frames == 3 and list(np.diff(rec.body_offsets)) == [2, 2, 2]


def test_a_mapping_file_names_other_columns_units_rate_and_sensor(tmp_path: Path):
    joints = walk()

    def odd(joint: str, axis: str) -> str:
        return f"P{KINECT_V2.index(joint)}{axis}" if joint in ("SpineBase", "Head") else f"{joint}_{axis}"

    path = write_csv(tmp_path / "lab.csv", joints, odd, extra={"Idx": list(range(60))}, scale=1000.0)
    with path.open() as stream:  # this export lacks the hand tips
        rows = list(csv.reader(stream))
    keep = [k for k, name in enumerate(rows[0]) if not name.startswith("HandTipLeft")]
    path.write_text("\n".join(",".join(row[k] for k in keep) for row in rows))
    assert "HandTipLeft" in read_error(path).problem  # unmapped, the missing joint is named
    mapping = {
        "joints": {"SpineBase": ["P0x", "P0y", "P0z"], "head": ["P3x", "P3y", "P3z"], "HandTipLeft": None},
        "frame": "Idx",
        "units": "mm",
        "rate_hz": 15,
        "sensor_id": "lab-kinect",
    }
    (tmp_path / "columns.json").write_text(json.dumps(mapping))  # the folder's mapping
    rec = read_file(path)
    tip = KINECT_V2.index("HandTipLeft")
    others = [j for j in range(25) if j != tip]
    np.testing.assert_allclose(rec.joints[:, others], joints[:, others], atol=1e-6)
    assert np.isnan(rec.joints[:, tip]).all() and (rec.confidence[:, tip] == 0).all()
    assert (rec.confidence[:, others] == 1).all()
    assert rec.sensor_id == "lab-kinect" and rec.rate_hz == 15 and rec.t[-1] == pytest.approx(59 / 15)
    assert rec.metadata["mapping"] == str(tmp_path / "columns.json")
    (tmp_path / "lab.columns.json").write_text(json.dumps({**mapping, "units": "m"}))  # the file's own wins
    assert np.abs(read_file(path).joints[:, 0]).max() > 100


def test_the_mapping_settles_which_of_two_matching_columns_is_a_joint(tmp_path: Path):
    path = write_csv(tmp_path / "walk.csv", walk(4), extra={"SpineBase.x": ["9"] * 4})  # say, a depth-space x
    assert "a second column for SpineBase x" in read_error(path).problem
    columns = {"SpineBase": ["SpineBase_X", "SpineBase_Y", "SpineBase_Z"]}
    (tmp_path / "walk.columns.json").write_text(json.dumps({"joints": columns}))
    np.testing.assert_allclose(read_file(path).joints, walk(4), atol=1e-6)


def test_lost_joints_are_nan_with_no_confidence(tmp_path: Path):
    path = write_csv(tmp_path / "walk.csv", walk(3))
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[3:6] = ["", "", ""]  # SpineMid of the second frame, untracked
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines))
    rec = read_file(path)
    assert np.isnan(rec.joints[1, 1]).all() and rec.confidence[1, 1] == 0 and rec.confidence[[0, 2], 1].all()


def _cell(line: int, column: int, value: str | None) -> Callable[[str], str]:
    """An edit of one cell of the text (None: the cell removed)."""

    def edit(text: str) -> str:
        lines = text.split("\n")
        cells = lines[line - 1].split(",")
        if value is None:
            del cells[column - 1]
        else:
            cells[column - 1] = value
        lines[line - 1] = ",".join(cells)
        return "\n".join(lines)

    return edit


MALFORMED: dict[str, tuple[Callable[[str], str], str, str]] = {
    "not a number": (_cell(3, 5, "1.5x"), "line 3, column 5 ('SpineMid_X')", "'1.5x'"),
    "infinite": (_cell(2, 2, "inf"), "line 2, column 2 ('SpineBase_X')", "expected a finite number"),
    "beyond 10 km": (_cell(4, 4, "2e4"), "line 4, column 4 ('SpineBase_Z')", "within ±10000 m"),
    "half a joint": (_cell(2, 3, ""), "line 2, column 3 ('SpineBase_Y')", "expected all three, or none"),
    "short row": (_cell(4, 76, None), "line 4", "75 cells: expected 76"),
    "bad time": (_cell(3, 1, "soon"), "line 3, column 1 ('time')", "'soon'"),
    "time back": (_cell(4, 1, "0.01"), "line 4, column 1 ('time')", "not after the previous frame's"),
    "missing joint": (lambda text: text.replace("ThumbRight_Z", "Thumb_Z", 1), "line 1", "joint ThumbRight"),
    "column twice": (lambda text: text.replace("Neck_X", "spinebase.x", 1), "line 1, column 8", "second column"),
    "bad quoting": (_cell(2, 2, '"1"x'), "line 2", "not readable as CSV"),
    "header only": (lambda text: text.split("\n")[0], "line 2", "no data rows"),
    "empty": (lambda text: "", "line 1", "expected a header"),
    "not UTF-8": (lambda text: text.replace("Head_X", "Head\udcff_X"), "line 1", "not UTF-8 text"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_csv_is_one_error_naming_line_and_column(tmp_path: Path, case: str):
    edit, where, what = MALFORMED[case]
    path = write_csv(tmp_path / "bad.csv", walk(4), extra={"time": [f"{k / 30:.4f}" for k in range(4)]})
    text = edit(path.read_text())
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    err = read_error(path)
    assert err.where.startswith(where) and what in err.problem, str(err)


def test_bodies_and_frames_in_the_wrong_order_are_refused(tmp_path: Path):
    rows = walk(4)
    err = read_error(write_csv(tmp_path / "a.csv", rows, extra={"frame": [0, 1, 1, 2]}))
    assert err.where == "line 4" and "no body column" in err.problem
    err = read_error(write_csv(tmp_path / "b.csv", rows, extra={"frame": [0, 0, 1, 1], "body": [5, 5, 5, 6]}))
    assert err.where == "line 3" and "body 5 twice" in err.problem
    err = read_error(write_csv(tmp_path / "c.csv", rows, extra={"frame": [0, 2, 1, 3]}))
    assert err.where == "line 4, column 1 ('frame')" and "frame 1 after frame 2" in err.problem


@pytest.mark.parametrize(
    ("mapping", "where", "what"),
    [
        ('{"units": "inches"}', "", "units: expected one of m, cm, mm"),
        ('{"time": "Zeit"}', "", "time: no column 'Zeit'"),
        ('{"joint": {}}', "", "unknown setting 'joint'"),
        ('{"joints": {"Tail": null}}', "", "'Tail' is no Kinect v2 joint"),
        ('{"joints": {"Head": "Head_X"}}', "", "expected three column names"),
        ('{"rate_hz": 0}', "", "rate_hz: nominal rate 0 Hz"),
        ('{"units": "mm",\n "time": }', "line 2, column 10", "not valid JSON"),
        ("[1]", "", "expected a JSON object"),
    ],
)
def test_a_bad_mapping_file_is_one_error_naming_it(tmp_path: Path, mapping: str, where: str, what: str):
    path = write_csv(tmp_path / "walk.csv", walk(4))
    (tmp_path / "walk.columns.json").write_text(mapping)
    with pytest.raises(FormatError) as err:
        read_file(path)
    assert err.value.path == str(tmp_path / "walk.columns.json") and err.value.where == where
    assert what in err.value.problem, str(err.value)


def test_info_convert_enroll_and_replay_take_a_csv(tmp_path: Path):
    path = write_csv(tmp_path / "ana.csv", walk(90), extra={"Time": [f"{k / 30:.9f}" for k in range(90)]})
    info = gaitwatch("info", path).stdout
    assert "kinect_v2 (25 joints, m)" in info and "frames       90" in info and "30 Hz nominal" in info
    out = tmp_path / "ana.gwrec"
    gaitwatch("convert", path, out, "--canonical")
    assert read_gwrec(out).num_frames == 90
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    assert "enrolled 15 windows of 1 tracks" in gaitwatch("gallery", "enroll", gallery, path, "--name", "Ana").stdout
    replay = gaitwatch("replay", path, "--gallery", gallery, "--speed", "max", "--pub", "tcp://127.0.0.1:0").stdout
    assert "kinect-csv/0" in replay and "ended    Ana, 15 windows" in replay, replay
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace("0.", "x.", 1))
    assert_one_line_error(gaitwatch("info", bad, ok=False), "bad.csv, line 2, column 1 ('Time')")
