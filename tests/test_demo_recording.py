"""The bundled demo recording is what its documented command makes from the CMU trials."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibration.cli import convert
from sensors.demo import demo_recording_path
from sensors.formats.gwrec import read_gwrec
from sensors.layouts import CANONICAL


def test_bundled_demo_equals_a_fresh_conversion(cmu_dir: Path):
    bundled = read_gwrec(demo_recording_path())
    fresh = convert(sorted(cmu_dir.glob("*/*.amc")), canonical=True, rate=30.0, progress=False)
    assert bundled.layout == CANONICAL and bundled.rate_hz == 30.0 and bundled.truncation is None
    np.testing.assert_array_equal(bundled.body_offsets, fresh.body_offsets)
    np.testing.assert_array_equal(bundled.track_ids, fresh.track_ids)
    np.testing.assert_allclose(bundled.t, fresh.t)
    np.testing.assert_allclose(bundled.joints, fresh.joints, atol=1e-6)
    subjects = {meta["subject"] for meta in bundled.metadata["tracks"].values()}
    assert subjects == {"02", "05", "06", "07", "08", "10", "32", "38"}
    assert all("mocap.cs.cmu.edu" in meta["acknowledgement"] for meta in bundled.metadata["tracks"].values())


def test_demo_walkers_are_upright_and_walk():
    demo = read_gwrec(demo_recording_path())
    y = demo.joints[..., 1]
    assert np.all(y[:, CANONICAL.index("Head")] > y[:, CANONICAL.index("HipCenter")])
    assert np.all(y[:, CANONICAL.index("HipCenter")] > y[:, CANONICAL.index("AnkleLeft")])
    for track in demo.unique_tracks():
        _, joints, _ = demo.track(int(track))
        hip = joints[:, CANONICAL.index("HipCenter")]
        assert np.linalg.norm(hip[-1, [0, 2]] - hip[0, [0, 2]]) > 1.0
