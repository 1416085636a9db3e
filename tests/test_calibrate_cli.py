"""``gaitwatch calibrate threshold`` on KGBD walks with the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

from engines.runtime.load import SHIPPED_SIMMC
from stream.node.cli import threshold_of
from tests.helpers import assert_one_line_error, gaitwatch


def test_threshold_from_the_validation_walks_keeps_its_false_accept_promise(kgbd_zip: Path, tmp_path: Path):
    out = tmp_path / "cal"
    gaitwatch(
        "calibrate", "threshold", "--data", kgbd_zip, "--far", "0.01", "0.1", "--out", out, "--model", SHIPPED_SIMMC
    )
    report = json.loads((out / "threshold.json").read_text())
    assert report["split"] == "kgbd:2" and report["part"] == "validation"  # the model's own split
    verification, matcher = report["verification"], report["matcher"]["thresholds"]
    assert verification["genuine_pairs"] == 160 and verification["impostor_pairs"] == 160 * 163  # every other person
    low, high = verification["thresholds"]
    assert low["far"] <= 0.01 and high["far"] <= 0.1 and low["threshold"] < high["threshold"]
    assert high["frr"] <= low["frr"] and 0 < verification["eer"] < 0.5
    assert [r["target_far"] for r in matcher] == [0.01, 0.1]
    assert all(r["far"] <= r["target_far"] and 0 <= r["dir"] <= 1 for r in matcher)
    # the node reads the matcher's (open-set) threshold, never the verification one
    sha = report["model_sha256"]
    assert threshold_of(str(out / "threshold.json"), 0.01, sha) == matcher[0]["threshold"]
    assert (out / "threshold.json").stat().st_mode & 0o777 == 0o600
    assert (out / "det.png").stat().st_size > 1000


def test_a_model_that_learned_from_the_validation_walks_is_not_calibrated_on_them(kgbd_zip: Path, tmp_path: Path):
    refused = gaitwatch("calibrate", "threshold", "--data", kgbd_zip, "--out", tmp_path / "cal", ok=False)
    assert_one_line_error(refused, "trackcon-kgbd.onnx learned from the validation walks of kgbd:0", "calibrate site")
    assert not (tmp_path / "cal").exists()


def test_threshold_rejects_a_bad_rate(kgbd_zip: Path, tmp_path: Path):
    proc = gaitwatch("calibrate", "threshold", "--data", kgbd_zip, "--far", "2", "--out", tmp_path, ok=False)
    assert_one_line_error(proc, "must lie in [0, 1]")
