"""Resampling to the model's frame rate: exact on shared instants, linear between, no invented data."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.resample import resample, resample_sequence
from sensors.errors import InputError
from sensors.layouts import KINECT_V1
from sensors.recording import Recording


def ramp(n: int, rate: float) -> Recording:
    """Joints that move linearly in time: x = t for every joint."""
    t = np.arange(n) / rate
    joints = np.repeat(t[:, None, None], 20, axis=1).repeat(3, axis=2).astype(np.float32)
    return Recording.single_body(KINECT_V1, joints, rate)


def test_120_to_30_picks_every_fourth_frame():
    rec = ramp(121, 120.0)
    out = resample(rec, 30.0)
    assert out.num_frames == 31 and out.rate_hz == 30.0
    np.testing.assert_array_equal(out.joints, rec.joints[::4])


@pytest.mark.parametrize(("source", "target"), [(25.0, 30.0), (30.0, 25.0), (120.0, 30.0), (29.97, 30.0)])
def test_linear_motion_is_reproduced_exactly(source: float, target: float):
    rec = ramp(200, source)
    out = resample(rec, target)
    np.testing.assert_allclose(np.diff(out.t), 1 / target)
    np.testing.assert_allclose(out.joints[:, 0, 0], out.t, atol=1e-5)
    assert out.t[-1] <= rec.t[-1] + 1e-9


def test_no_interpolation_across_a_gap_or_beyond_the_ends():
    t = np.array([0.0, 1 / 30, 2 / 30, 1.0, 1 + 1 / 30])
    joints = np.zeros((5, 20, 3), np.float32)
    grid = np.arange(0, 1.2, 1 / 60)
    idx, _, _ = resample_sequence(t, joints, np.ones((5, 20), np.float32), grid, max_gap_s=0.2)
    kept = grid[idx]
    assert kept.min() >= 0 and kept.max() <= t[-1] + 1e-9
    assert not np.any((kept > 2 / 30 + 1e-9) & (kept < 1.0 - 1e-9))


def test_tracks_are_resampled_apart_and_weaker_confidence_wins():
    a = ramp(31, 30.0)
    b = ramp(16, 30.0)
    b.track_ids[:] = 9
    b.confidence[:] = 0.25
    both = Recording.concatenate([a, b], gap_s=0.0)
    out = resample(both, 60.0)
    assert set(out.unique_tracks().tolist()) == {0, 1}
    t1, _, c1 = out.track(1)
    assert c1.max() == pytest.approx(0.25)
    assert t1.min() >= both.track(1)[0].min() - 1e-9


def test_bad_rate_and_unsorted_times():
    with pytest.raises(InputError, match="rate must be positive"):
        resample(ramp(3, 30.0), 0)
    with pytest.raises(InputError, match="increase"):
        resample_sequence(np.array([0.0, 0.0]), np.zeros((2, 20, 3)), np.ones((2, 20)), np.array([0.0]))


def test_frames_without_bodies_resample_to_empty_frames():
    empty = Recording(
        layout=KINECT_V1,
        t=np.arange(10) / 30,
        seq=np.arange(10),
        body_offsets=np.zeros(11, np.int64),
        track_ids=np.zeros(0, np.int64),
        joints=np.zeros((0, 20, 3), np.float32),
        confidence=np.zeros((0, 20), np.float32),
    )
    out = resample(empty, 15.0)
    assert out.num_frames == 5 and out.num_body_frames == 0
