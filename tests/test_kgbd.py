"""KGBD walks from the published zip and from a folder; strict errors on malformed walks."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import FormatError
from sensors.formats import is_dataset
from sensors.formats.kgbd import FILE_JOINTS, KgbdDataset, parse_kgbd_text, read_kgbd_walk
from sensors.layouts import KINECT_V1

FIRST_FRAME_PERSON001_WALK1 = {  # the first 20 lines of Data/Person001/1.txt
    "HipCenter": (-0.05240498, 0.08996442, 2.56602),
    "Head": (-0.02845094, 0.7953885, 2.586351),
    "ShoulderRight": (0.02592668, 0.4859544, 2.466846),
    "HandLeft": (-0.1714047, -0.01992598, 2.667762),
    "FootLeft": (0.05054331, -0.6851594, 2.794123),
}


def test_zip_lists_every_walk_with_labels(kgbd_zip: Path):
    dataset = KgbdDataset(kgbd_zip)
    assert len(dataset.people) == 164
    assert len(dataset) == 822
    assert dataset.walks[0].person == "Person001" and dataset.walks[0].walk == 1
    assert sum(w.person == "Person015" for w in dataset.walks) == 3


def test_first_frame_values_in_kinect_v1_order(kgbd_zip: Path):
    dataset = KgbdDataset(kgbd_zip)
    rec = dataset.read(dataset.walks[0])
    assert rec.layout == KINECT_V1
    assert rec.metadata["person"] == "Person001" and rec.metadata["walk"] == 1
    for joint, xyz in FIRST_FRAME_PERSON001_WALK1.items():
        np.testing.assert_allclose(rec.joints[0, KINECT_V1.index(joint)], xyz, rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.diff(rec.t), 1 / 30)
    assert rec.rate_hz == 30.0


def test_folder_reads_like_the_zip(kgbd_zip: Path, tmp_path: Path):
    with zipfile.ZipFile(kgbd_zip) as zf:
        for member in ("KinectGait-master/Data/Person002/1.txt", "KinectGait-master/Data/Person002/3.txt"):
            target = tmp_path / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(member))
    folder = KgbdDataset(tmp_path)
    assert [w.key for w in folder.walks] == ["Person002/1", "Person002/3"]
    from_zip = KgbdDataset(kgbd_zip)
    zip_walk = next(w for w in from_zip.walks if w.key == "Person002/3")
    np.testing.assert_array_equal(folder.read(folder.walks[1]).joints, from_zip.read(zip_walk).joints)
    single = read_kgbd_walk(tmp_path / "KinectGait-master/Data/Person002/3.txt")
    assert single.metadata["person"] == "Person002" and single.metadata["walk"] == 3


def walk_text(frames: int = 2) -> list[str]:
    return [f"{name};0.{i}1;0.{i}2;2.{i}3" for _ in range(frames) for i, name in enumerate(FILE_JOINTS)]


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (lambda lines: lines[:25], 25, "ends mid-frame: frame 2 has 5 of 20"),
        (lambda lines: [*lines[:3], "Shoulder-Left;1;2", *lines[4:]], 4, "expected 'Shoulder-Left;x;y;z'"),
        (lambda lines: [*lines[:21], "Head;1;2;3", *lines[22:]], 22, "expected joint 'Shoulder-Center' \\(frame 2\\)"),
        (lambda lines: [*lines[:7], "Wrist-Left;1;abc;3", *lines[8:]], 8, "expected three numbers"),
        (lambda lines: [*lines[:30], "Spine;1;nan;3", *lines[31:]], 31, "non-finite"),
        (lambda lines: [*lines[:30], "Spine;1;1e300;3", *lines[31:]], 31, "coordinate 1e\\+300 m, expected a number"),
        (lambda lines: [*lines[:2], "Shoulder-Right;-2e4;0;0", *lines[3:]], 3, "within ±10000 m"),
        (lambda lines: [*lines[:10], "", *lines[10:]], 11, "expected 'Spine;x;y;z'"),
    ],
)
def test_malformed_walks_name_file_and_line(edit, line: int, message: str):
    data = "\r\n".join(edit(walk_text())).encode()
    with pytest.raises(FormatError, match=rf"^walk\.txt, line {line}: .*{message}"):
        parse_kgbd_text(data, "walk.txt")


def test_empty_walk_and_trailing_blank_lines():
    with pytest.raises(FormatError, match="empty walk"):
        parse_kgbd_text(b"\r\n\r\n", "w.txt")
    joints = parse_kgbd_text(("\r\n".join(walk_text()) + "\r\n\r\n").encode(), "w.txt")
    assert joints.shape == (2, 20, 3)
    np.testing.assert_allclose(joints[0, KINECT_V1.index("Head")], (0.01, 0.02, 2.03), rtol=1e-6)


def test_not_a_dataset(tmp_path: Path):
    (tmp_path / "x.zip").write_bytes(b"nope")
    with pytest.raises(FormatError, match="not a readable zip"):
        KgbdDataset(tmp_path / "x.zip")
    with pytest.raises(FormatError, match="no KGBD walks"):
        KgbdDataset(tmp_path)


def test_zip_that_passes_the_zip_check_but_does_not_open(tmp_path: Path):
    path = tmp_path / "kgbd.zip"
    path.write_bytes(b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, 46, 0, 0))  # directory before the file
    assert zipfile.is_zipfile(path) and is_dataset(path)
    with pytest.raises(FormatError, match=r"kgbd\.zip: not a readable zip"):
        KgbdDataset(path)


def test_member_names_are_walks_only_with_a_plain_walk_number(tmp_path: Path):
    path = tmp_path / "kgbd.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"Data/Person001/{'9' * 5000}.txt", "\r\n".join(walk_text()))
    with pytest.raises(FormatError, match="no KGBD walks found"):
        KgbdDataset(path)


def test_a_walk_that_unpacks_beyond_the_limit_is_refused_unread(tmp_path: Path):
    path = tmp_path / "kgbd.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Data/Person001/1.txt", bytes(3 * 2**20))  # 3 MiB of zeros pack into 3 kB
    with pytest.raises(FormatError, match=r"kgbd.zip!Data/Person001/1.txt: packed \d+ to 1, beyond 200 to 1"):
        list(KgbdDataset(path))
