"""The ``gaitwatch`` command: results on stdout, one clear line on errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sensors.formats.gwrec import read_gwrec, write_recording
from sensors.layouts import KINECT_V1
from sensors.recording import Recording
from tests.helpers import assert_one_line_error, gaitwatch, gaitwatch_process


def test_the_installed_command_runs_as_its_own_process():
    proc = gaitwatch_process("--version")
    assert proc.stdout.startswith("gaitwatch ") and proc.stderr == ""


@pytest.mark.slow
def test_info_kgbd_zip_reports_the_dataset_totals(kgbd_zip: Path):
    summary = json.loads(gaitwatch("info", kgbd_zip, "--json").stdout)
    assert (summary["people"], summary["walks"], summary["frames"]) == (164, 822, 491_747)
    assert summary["layout"] == "kinect_v1"


def test_convert_then_info_of_a_kgbd_walk(kgbd_zip: Path, tmp_path: Path):
    walk = tmp_path / "Person007" / "2.txt"
    walk.parent.mkdir()
    with zipfile.ZipFile(kgbd_zip) as zf:
        walk.write_bytes(zf.read("KinectGait-master/Data/Person007/2.txt"))
    out = tmp_path / "walk.gwrec"
    gaitwatch("convert", walk, out)
    rec = read_gwrec(out)
    assert rec.metadata["person"] == "Person007" and rec.layout == KINECT_V1
    text = gaitwatch("info", out).stdout
    assert f"frames       {rec.num_frames:,}" in text and "person=Person007" in text
    assert_one_line_error(gaitwatch("convert", walk, out, ok=False), "already exists")


def test_convert_cmu_to_canonical_30hz(cmu_dir: Path, tmp_path: Path):
    out = tmp_path / "cmu.gwrec"
    gaitwatch("convert", cmu_dir / "07" / "07_01.amc", cmu_dir / "08" / "08_01.amc", out, "--canonical", "--rate", "30")
    rec = read_gwrec(out)
    assert rec.layout == KINECT_V1 and rec.rate_hz == 30.0
    assert len(rec.unique_tracks()) == 2
    assert {m["subject"] for m in rec.metadata["tracks"].values()} == {"07", "08"}
    np.testing.assert_allclose(np.diff(rec.t)[np.diff(rec.t) < 0.5], 1 / 30, rtol=1e-6)


def test_info_reports_a_truncated_recording(tmp_path: Path):
    rec = Recording.single_body(KINECT_V1, np.zeros((10, 20, 3), np.float32), 30.0)
    path = tmp_path / "cut.gwrec"
    write_recording(path, rec)
    path.write_bytes(path.read_bytes()[:-100])
    summary = json.loads(gaitwatch("info", path, "--json").stdout)
    assert summary["frames"] == 9 and summary["truncated"]["complete_frames"] == 9


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("info", "no/such/file.gwrec"), ("no/such/file.gwrec", "no such file")),
        (("info", "pyproject.toml"), ("unknown file type '.toml'",)),
        (("replay", "--speed", "fast"), ("--speed", "'fast'")),
        (("convert", "no/such.txt", "x.gwrec"), ("no/such.txt",)),
    ],
)
def test_errors_are_one_clear_line(args, needles):
    assert_one_line_error(gaitwatch(*args, ok=False), *needles)


def test_corrupt_files_are_one_clear_line(tmp_path: Path):
    bad = tmp_path / "bad.gwrec"
    bad.write_bytes(b"\x89GWREC\r\n garbage")
    assert_one_line_error(gaitwatch("info", bad, ok=False), "bad.gwrec")
    walk = tmp_path / "Person001" / "1.txt"
    walk.parent.mkdir()
    walk.write_text("Head;1;2;3\nShoulder-Center;1;2\n")
    assert_one_line_error(gaitwatch("info", walk, ok=False), "1.txt, line 2")
