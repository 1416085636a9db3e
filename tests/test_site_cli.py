"""``gaitwatch calibrate site`` on a site whose answer is known: calibrated without labels, checked with them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, gaitwatch

ENROLLED = 6  # of the 8 CMU subjects; the other 2 are strangers


def _site(cmu_dir: Path) -> tuple[list[Path], list[Path]]:
    """(first trial of each enrolled subject, every other trial of everyone) — the second list unlabeled to the tool."""
    subjects = sorted(p for p in cmu_dir.iterdir() if p.is_dir())
    assert len(subjects) >= ENROLLED + 2, "the CMU folder should hold at least 8 subjects"
    enroll, recordings = [], []
    for number, subject in enumerate(subjects):
        trials = sorted(subject.glob("*.amc"))
        if number < ENROLLED:
            enroll.append(trials[0])
            recordings += trials[1:]
        else:
            recordings += trials
    return enroll, recordings


@pytest.mark.slow
def test_a_site_threshold_without_labels_names_the_enrolled_and_rejects_strangers(cmu_dir: Path, tmp_path: Path):
    enroll, recordings = _site(cmu_dir)
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, *enroll, "--label", "subject")
    out = tmp_path / "site"
    printed = gaitwatch("calibrate", "site", *recordings, "--gallery", gallery, "--out", out, "--far", "0.01").stdout
    report = json.loads((out / "threshold.json").read_text())
    assert report["format"] == "gaitwatch-threshold" and report["identities"] == ENROLLED
    assert report["impostor_pairs"]["identities"] == ENROLLED * (ENROLLED - 1)  # one track each, every other identity
    assert (out / "threshold.json").stat().st_mode & 0o777 == 0o600
    assert (out / "site.png").stat().st_size > 5000 and "threshold" in printed
    # the node reads it; the labels (which calibration never saw) judge its decisions
    replay = gaitwatch(
        "replay", *recordings, "--gallery", gallery, "--threshold", out / "threshold.json", "--far", "0.01",
        "--speed", "max", "--quiet", "--pub", "tcp://127.0.0.1:0",
    ).stdout  # fmt: skip
    right, enrolled_tracks = map(int, re.search(r"enrolled people named right (\d+) of (\d+)", replay).groups())
    unknown, stranger_tracks = map(int, re.search(r"not enrolled rightly unknown (\d+) of (\d+)", replay).groups())
    assert stranger_tracks == len(recordings) - enrolled_tracks and unknown == stranger_tracks
    assert right >= enrolled_tracks // 2, replay


def test_a_gallery_of_one_person_and_no_concurrent_tracks_cannot_be_calibrated(cmu_dir: Path, tmp_path: Path):
    enroll, recordings = _site(cmu_dir)
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, enroll[0], "--label", "subject")
    refused = gaitwatch("calibrate", "site", recordings[0], "--gallery", gallery, "--out", tmp_path / "s", ok=False)
    assert_one_line_error(refused, "only 0 pairs of different people")
    assert not (tmp_path / "s").exists()


def test_a_gallery_of_another_model_is_refused(tmp_path: Path):
    pytest.importorskip("onnxscript", reason="exporting the raw model needs the 'train' extra")
    gallery = tmp_path / "people.db"
    raw = tmp_path / "raw.onnx"
    gaitwatch("export", "raw", "--out", raw)
    gaitwatch("gallery", "create", gallery, "--model", raw)
    refused = gaitwatch("calibrate", "site", "--gallery", gallery, "--out", tmp_path / "s", ok=False)
    assert_one_line_error(refused, "raw.onnx")


def test_a_rate_out_of_reach_is_said_at_calibration_and_the_node_refuses_it(cmu_dir: Path, tmp_path: Path):
    enroll, recordings = _site(cmu_dir)
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, *enroll, "--label", "subject")
    out = tmp_path / "site"
    # a rate so small that the fit's tail puts it below any distance (z < -37: any relative spread above 3 %)
    done = gaitwatch("calibrate", "site", recordings[0], "--gallery", gallery, "--out", out, "--far", "0.01", "1e-300")
    rows = {
        row["target_far"]: row["threshold"]
        for row in json.loads((out / "threshold.json").read_text())["matcher"]["thresholds"]
    }
    assert rows[0.01] > 0 and not rows[1e-300] > 0, rows
    assert "FAR 1e-300 is out of reach" in done.stderr and "FAR 0.01 is out of reach" not in done.stderr
    refused = gaitwatch(
        "replay",
        recordings[0],
        "--gallery",
        gallery,
        "--threshold",
        out / "threshold.json",
        "--far",
        "1e-300",
        ok=False,
    )
    assert_one_line_error(refused, "out of reach")
