"""Score fusion of the skeleton and silhouette channels (stream/fusion.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engines.track_distance import MAX_PAIRS, impostor_scale
from stream.fusion import fuse


def test_the_impostor_scale_is_the_median_distance_between_different_identities_only():
    means = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 4.0]])
    owners = np.array([1, 1, 2, 3])
    # pairs of different owners: (0,2) 3, (0,3) 5, (1,2) sqrt(10), (1,3) sqrt(18), (2,3) 4; (0,1) is one person
    expected = np.median([3.0, 5.0, np.sqrt(10), np.sqrt(18), 4.0])
    assert impostor_scale(means, owners) == pytest.approx(expected)
    assert impostor_scale(means[:2], owners[:2]) is None  # one identity: no impostor pair
    assert impostor_scale(np.zeros((0, 2)), np.zeros(0, int)) is None


def test_a_large_gallery_samples_its_pairs_and_still_finds_the_scale():
    rng = np.random.default_rng(1)
    n = int(np.sqrt(2 * MAX_PAIRS)) + 50  # more pairs than are sampled
    means = rng.normal(size=(n, 16))
    owners = np.arange(n)
    exact = np.median([np.linalg.norm(means[a] - means[b]) for a, b in zip(*np.triu_indices(n, 1), strict=True)])
    assert impostor_scale(means, owners) == pytest.approx(exact, rel=0.02)
    assert impostor_scale(means, owners) == impostor_scale(means, owners)  # seeded: the same every time


def test_weight_one_is_the_skeleton_alone_and_weight_zero_ranks_by_silhouettes_in_skeleton_units():
    skeleton = [(1, 0.10), (2, 0.12)]
    silhouette = {1: 8.0, 2: 2.0}
    alone = fuse(skeleton, silhouette, 1.0, 0.2, 10.0)
    assert [(m.identity, m.distance) for m in alone] == [(1, pytest.approx(0.10)), (2, pytest.approx(0.12))]
    shape = fuse(skeleton, silhouette, 0.0, 0.2, 10.0)
    assert [m.identity for m in shape] == [2, 1]
    assert shape[0].distance == pytest.approx(2.0 * 0.2 / 10.0)  # silhouette distance over its scale, in skeleton units
    assert shape[0].skeleton == pytest.approx(0.12) and shape[0].silhouette == pytest.approx(2.0)


def test_an_even_weight_lets_a_clear_silhouette_overturn_a_close_skeleton_call():
    skeleton = [(1, 0.10), (2, 0.11)]  # nearly a tie
    silhouette = {1: 9.0, 2: 3.0}  # a clear difference
    fused = fuse(skeleton, silhouette, 0.5, 0.2, 10.0)
    assert fused[0].identity == 2
    assert fused[0].distance == pytest.approx(0.5 * 0.11 + 0.5 * 3.0 * 0.02)


def test_candidates_a_channel_says_nothing_of_keep_their_skeleton_distance():
    skeleton = [(1, 0.10), (2, 0.30)]
    partly = fuse(skeleton, {2: 1.0}, 0.5, 0.2, 10.0)  # identity 1 has no silhouettes enrolled
    assert {m.identity: m.silhouette for m in partly} == {1: None, 2: 1.0}
    assert partly[0].identity == 1 and partly[0].distance == pytest.approx(0.10)
    for scales in ((None, 10.0), (0.2, None)):  # a channel without a scale (one identity): skeleton alone
        assert [m.distance for m in fuse(skeleton, {1: 9.0, 2: 1.0}, 0.5, *scales)] == pytest.approx([0.10, 0.30])
    assert [m.distance for m in fuse(skeleton, {}, 0.5, 0.2, 10.0)] == pytest.approx([0.10, 0.30])
