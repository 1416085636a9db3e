"""Label-free impostor scores: which pairs count as different people, and the threshold for an open-set FAR."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engines.impostors import ImpostorFit, track_shape
from engines.track_distance import TrackDistance
from sensors.errors import InputError
from stream.site_impostors import (
    EnrolledTracks,
    SeenTrack,
    concurrent_pairs,
    site_threshold,
)


def test_the_fit_hits_the_open_set_rate_it_promises():
    rng = np.random.default_rng(0)
    impostors = rng.normal(1.0, 0.1, size=200_000)
    fit = ImpostorFit.of(impostors)
    assert fit.centre == pytest.approx(1.0, abs=0.005) and fit.spread == pytest.approx(0.1, abs=0.005)
    for far, people in ((0.01, 10), (0.001, 50), (0.05, 1)):
        threshold = fit.threshold(far, people)
        strangers = rng.normal(1.0, 0.1, size=(100_000, people)).min(axis=1)  # nearest of N impostor comparisons
        assert np.mean(strangers <= threshold) == pytest.approx(far, rel=0.2)
        assert fit.open_set_rate(threshold, people) == pytest.approx(far, rel=1e-6)


def test_more_identities_need_a_tighter_threshold():
    fit = ImpostorFit.of(np.linspace(0.5, 1.5, 50))
    assert fit.threshold(0.01, 100) < fit.threshold(0.01, 10) < fit.threshold(0.01, 1)


def test_the_fit_is_robust_to_a_far_cluster_of_impostors():
    """A few very different bodies (another sensor's skeleton, say) must not widen the lower tail."""
    rng = np.random.default_rng(1)
    near = rng.normal(0.2, 0.02, size=300)
    with_far = np.concatenate([near, rng.normal(0.7, 0.02, size=60)])
    assert ImpostorFit.of(with_far).threshold(0.01, 8) == pytest.approx(
        ImpostorFit.of(near).threshold(0.01, 8), abs=0.02
    )


def test_too_few_pairs_and_bad_rates_are_refused():
    with pytest.raises(InputError, match="only 2 pairs"):
        ImpostorFit.of(np.array([1.0, 2.0]))
    with pytest.raises(InputError, match=r"in \(0, 1\)"):
        ImpostorFit.of(np.ones(5) + np.arange(5)).threshold(1.5, 3)


def test_identity_pairs_compare_each_track_with_the_nearest_track_of_every_other_named_identity():
    owners = np.array([1, 1, 2, 3])
    means = np.array([[0.0, 0], [0.0, 1], [3.0, 0], [0.0, 5]])
    pairs = np.sort(EnrolledTracks.of(owners, means, {1, 2, 3}, TrackDistance()).identity_pairs())
    # tracks of 1 -> identity 2: 3, sqrt(10); -> 3: 5, 4; track of 2 -> 1: 3; -> 3: sqrt(34); track of 3 -> 1: 4; -> 2
    expected = np.sort([3, np.sqrt(10), 5, 4, 3, np.sqrt(34), 4, np.sqrt(34)])
    np.testing.assert_allclose(pairs, expected)
    # anonymous ones (not named) are left out
    assert len(EnrolledTracks.of(owners, means, {1}, TrackDistance()).identity_pairs()) == 0


def test_only_tracks_one_sensor_saw_at_the_same_time_are_different_people():
    def seen(recording: int, sensor: str, start: float, end: float, x: float) -> SeenTrack:
        return SeenTrack(recording, sensor, start, end, np.array([x, 0.0]))

    tracks = [
        seen(0, "a", 0, 10, 0.0),
        seen(0, "a", 5, 15, 1.0),  # overlaps the first: a pair
        seen(0, "a", 10, 20, 2.0),  # starts as the first ends: touches, does not overlap it; overlaps the second
        seen(0, "b", 0, 10, 3.0),  # another sensor
        seen(1, "a", 0, 10, 4.0),  # another recording
    ]
    np.testing.assert_allclose(np.sort(concurrent_pairs(tracks, TrackDistance())), [1.0, 1.0])


def test_leave_one_out_scores_each_track_against_the_other_identities():
    owners = np.array([1, 1, 2])
    means = np.array([[0.0], [1.0], [3.0]])
    np.testing.assert_allclose(
        EnrolledTracks.of(owners, means, {1, 2}, TrackDistance()).leave_one_out_nearest(), [3.0, 2.0, 2.0]
    )


def test_a_few_pairs_take_their_spread_mostly_from_the_model_s_prior():
    site = np.array([0.9, 1.0, 1.0, 1.1, 0.2, 1.05])  # one odd pair: a wide lower half from 6 pairs
    alone = ImpostorFit.of(site)
    helped = ImpostorFit.of(site, prior={"relative_spread": 0.1})
    assert helped.centre == alone.centre and helped.site_spread == alone.spread
    expected = (6 * alone.spread / alone.centre + 100 * 0.1) / 106 * alone.centre
    assert helped.spread == pytest.approx(expected)
    many = np.random.default_rng(2).normal(1.0, 0.3, size=20_000)  # thousands of pairs: the site's own spread rules
    assert ImpostorFit.of(many, prior={"relative_spread": 0.1}).spread == pytest.approx(0.3, rel=0.03)


def test_track_shape_is_the_relative_spread_between_track_means():
    rng = np.random.default_rng(3)
    means = rng.normal(size=(60, 8))
    tracks = np.repeat(np.arange(60), 5)
    embeddings = means[tracks] + rng.normal(scale=1e-3, size=(300, 8))
    shape = track_shape(embeddings, tracks)
    distances = np.linalg.norm(means[:, None] - means[None], axis=2)[np.triu_indices(60, 1)]
    fit = ImpostorFit.of(distances)
    assert shape["pairs"] == 60 * 59 // 2
    assert shape["relative_spread"] == pytest.approx(fit.spread / fit.centre, rel=0.01)
    assert track_shape(embeddings, tracks, most=10)["pairs"] == 45


def test_the_site_s_own_people_tighten_the_threshold_where_they_are_stricter():
    rng = np.random.default_rng(4)
    fit = ImpostorFit.of(rng.normal(1.0, 0.1, size=5000))
    fitted = fit.threshold(0.01, 100)
    heavy = np.concatenate([rng.normal(0.9, 0.05, size=195), [0.3, 0.35, 0.4, 0.45, 0.5]])  # a few alike pairs
    threshold, source = site_threshold(fit, heavy, 0.01, 100)
    assert source == "site's own people" and threshold < 0.4 < fitted and np.mean(heavy <= threshold) <= 0.01
    assert site_threshold(fit, heavy[:50], 0.01, 100) == (fitted, "fit")  # 50 alike-free: the fit is stricter
    assert site_threshold(fit, rng.normal(2.0, 0.1, size=400), 0.01, 100) == (fitted, "fit")  # looser: the fit rules


def test_a_stricter_target_never_gets_a_looser_threshold_than_the_site_measured():
    rng = np.random.default_rng(5)
    fit = ImpostorFit.of(rng.normal(1.0, 0.1, size=5000))
    heavy = np.concatenate([rng.normal(0.9, 0.05, size=105), [0.3, 0.35, 0.4, 0.45]])  # 109 people, a few alike
    targets = (0.05, 0.01, 0.001, 0.0001)
    thresholds = [site_threshold(fit, heavy, far, 109)[0] for far in targets]
    assert all(a >= b for a, b in itertools.pairwise(thresholds)), thresholds
    assert thresholds[2] <= thresholds[1] < 0.4 < fit.threshold(0.001, 109)  # 1 in 1000 cannot be measured here
    assert np.mean(heavy <= thresholds[2]) <= 1 / len(heavy)  # held to what 1 in 109 measured


def test_rates_below_float_precision_still_give_a_threshold_and_keep_their_promise():
    fit = ImpostorFit(centre=1.0, spread=0.1, pairs=100)
    for far in (1e-12, 1e-17, 1e-30):  # 1 - far == 1.0 in float64 from 1e-17 on
        threshold = fit.threshold(far, identities=50)
        assert fit.open_set_rate(threshold, 50) == pytest.approx(far, rel=1e-6)
    assert fit.threshold(1e-30, 50) < fit.threshold(1e-12, 50)
