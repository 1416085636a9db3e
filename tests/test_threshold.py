"""Threshold calibration against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import InputError
from stream.threshold import calibrate, rates, threshold_for_far


def test_rates_by_hand():
    genuine = np.array([0.1, 0.2, 0.3, 0.9])
    impostor = np.array([0.5, 0.8, 1.0, 1.2, 1.5])
    far, frr = rates(genuine, impostor, np.array([0.25, 0.8, 2.0]))
    np.testing.assert_allclose(far, [0.0, 0.4, 1.0])  # 0.8 itself is accepted (distance <= threshold)
    np.testing.assert_allclose(frr, [0.5, 0.25, 0.0])


def test_threshold_for_far_keeps_its_promise():
    impostor = np.arange(1, 101, dtype=float)  # 100 impostor distances 1..100
    assert threshold_for_far(impostor, 0.0) < 1.0
    t = threshold_for_far(impostor, 0.05)
    assert 5.0 <= t < 6.0  # accepts exactly 5 of 100
    far, _ = rates(np.array([0.0]), impostor, np.array([t]))
    assert far[0] == 0.05
    assert threshold_for_far(impostor, 1.0) == 100.0


def test_calibration_eer_on_separable_and_overlapping_scores():
    rng = np.random.default_rng(0)
    separable = calibrate(rng.uniform(0, 1, 500), rng.uniform(2, 3, 500))
    assert separable.eer == 0.0 and separable.frr_at[0.01] == 0.0
    same = rng.normal(size=20_000)
    overlapping = calibrate(same[:10_000], same[10_000:])  # one distribution: EER near 50 %
    assert abs(overlapping.eer - 0.5) < 0.02
    assert all(overlapping.far_at[t] <= t for t in (0.01, 0.1))


def test_bad_scores_are_refused():
    with pytest.raises(InputError, match="genuine and impostor"):
        calibrate(np.array([]), np.array([1.0]))
    with pytest.raises(InputError, match="NaN"):
        calibrate(np.array([np.nan]), np.array([1.0]))


def test_open_set_thresholds_by_hand():
    from stream.threshold import open_set_thresholds

    stranger = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4])  # nearest other identity per probe
    identified = np.array([0.3, 0.55, np.inf, 0.65, 0.2, 0.4, 0.95, np.inf, 0.1, 0.35])  # own, where nearest
    [row] = open_set_thresholds(identified, stranger, (0.2,))
    assert 0.6 <= row["threshold"] < 0.7 and row["far"] == 0.2  # accepts the 2 nearest strangers
    assert row["dir"] == 0.7  # 0.3, 0.55, 0.65, 0.2, 0.4, 0.1, 0.35 are within it; 0.95 and the infs not
