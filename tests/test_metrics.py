"""Re-identification metrics: hand-worked cases, ties, and properties against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines import metrics
from engines.metrics import (
    ReidResult,
    euclidean_distances,
    identity_auc,
    pool_by_group,
    reid_metrics,
    reid_metrics_embeddings,
)


def reference_metrics(dist: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> dict:
    """Brute force from the definitions: stable argsort per probe, AP as mean precision at each hit."""
    num_probes, num_gallery = dist.shape
    firsts, aps = [], []
    for i in range(num_probes):
        hits = gallery_labels[np.argsort(dist[i], kind="stable")] == probe_labels[i]
        positions = np.flatnonzero(hits) + 1
        firsts.append(positions[0])
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    cmc = np.array([np.mean(np.array(firsts) <= k) for k in range(1, num_gallery + 1)])
    return {"cmc": cmc, "mAP": float(np.mean(aps)), "nAUC": float(cmc.mean())}


def reference_identity_auc(dist: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> float:
    """Pair by pair: every (positive, negative) pair of (probe, identity) scores; ties count one half."""
    identities = np.unique(gallery_labels)
    scores = np.array([[-dist[i, gallery_labels == c].min() for c in identities] for i in range(len(dist))])
    is_pos = identities[None, :] == probe_labels[:, None]
    pos, neg = scores[is_pos], scores[~is_pos]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# --- hand-worked cases -------------------------------------------------------------------------


def test_two_probes_worked_by_hand():
    gallery_labels = np.array([0, 1, 0, 2])
    probe_labels = np.array([0, 1])
    dist = np.array(
        [
            # probe 0 (person 0): ascending order g1 (1), g3 (2), g0 (0, hit), g2 (0, hit)
            # -> hits at positions 3 and 4, AP = (1/3 + 2/4) / 2 = 5/12
            [0.5, 0.1, 0.9, 0.3],
            # probe 1 (person 1): ascending order g0 (0), g1 (1, hit), g2, g3 -> hit at position 2, AP = 1/2
            [0.2, 0.4, 0.6, 0.8],
        ]
    )
    result = reid_metrics(dist, probe_labels, gallery_labels)
    # first hits at ranks 3 and 2: cmc = [0, 1/2, 1, 1]; nAUC = (0 + 0.5 + 1 + 1) / 4 = 0.625
    np.testing.assert_allclose(result.cmc, [0.0, 0.5, 1.0, 1.0])
    assert result.top1 == 0.0
    assert result.top5 == 1.0  # only 4 gallery samples: top-5 is cmc at rank 4
    assert result.top10 == 1.0
    assert result.mAP == pytest.approx((5 / 12 + 1 / 2) / 2)
    assert result.nAUC == pytest.approx(0.625)
    assert (result.num_probes, result.num_gallery) == (2, 4)
    # identity scores (minus the nearest distance per identity 0, 1, 2):
    #   probe 0: -0.5 (positive), -0.1, -0.3      probe 1: -0.2, -0.4 (positive), -0.8
    # positives -0.5 and -0.4 each beat only the negative -0.8: AUC = 2 / (2 * 4) = 0.25
    assert result.identity_auc == pytest.approx(0.25)


def test_correct_match_ranked_last():
    # the only sample of person 0 is the farthest: hit at position 4 of 4
    result = reid_metrics(np.array([[0.1, 0.2, 0.3, 0.4]]), np.array([0]), np.array([1, 2, 3, 0]))
    np.testing.assert_allclose(result.cmc, [0, 0, 0, 1])  # cmc ends at 1: the match is always found
    assert result.top1 == 0.0 and result.top5 == 1.0
    assert result.mAP == pytest.approx(1 / 4)
    assert result.nAUC == pytest.approx(1 / 4)
    assert result.identity_auc == 0.0  # every other identity is nearer


def test_ties_are_broken_by_gallery_index():
    equal = np.array([[0.2, 0.2, 0.2]])
    # labels [1, 0, 0]: stable order g0 (miss), g1 (hit), g2 (hit) -> AP = (1/2 + 2/3) / 2 = 7/12, top-1 0
    wrong_first = reid_metrics(equal, np.array([0]), np.array([1, 0, 0]))
    assert wrong_first.top1 == 0.0
    assert wrong_first.mAP == pytest.approx(7 / 12)
    # labels [0, 1, 0]: order g0 (hit), g1 (miss), g2 (hit) -> AP = (1 + 2/3) / 2 = 5/6, top-1 1
    right_first = reid_metrics(equal, np.array([0]), np.array([0, 1, 0]))
    assert right_first.top1 == 1.0
    assert right_first.mAP == pytest.approx(5 / 6)
    # ties at equal distance count one half in the identity AUC: 0.5
    assert right_first.identity_auc == pytest.approx(0.5)


def test_partial_ties_after_a_unique_nearest():
    # distances [0.3, 0.1, 0.3, 0.3], labels [0, 1, 1, 0]: order g1 (0.1), then the tie g0, g2, g3 by index
    # -> hits (label 0) at positions 2 and 4: AP = (1/2 + 2/4) / 2 = 1/2, first hit at rank 2
    result = reid_metrics(np.array([[0.3, 0.1, 0.3, 0.3]]), np.array([0]), np.array([0, 1, 1, 0]))
    assert result.mAP == pytest.approx(0.5)
    np.testing.assert_allclose(result.cmc, [0, 1, 1, 1])


def test_perfect_ranking_scores_one_everywhere():
    dist = np.array([[0.0, 0.1, 5.0, 6.0], [7.0, 8.0, 0.2, 0.3]])
    result = reid_metrics(dist, np.array([3, 4]), np.array([3, 3, 4, 4]))
    assert (result.top1, result.mAP, result.nAUC, result.identity_auc) == (1.0, 1.0, 1.0, 1.0)


def test_to_dict_reports_percentages_and_the_first_20_ranks():
    cmc = np.linspace(0.5, 1.0, 30)
    result = ReidResult(0.123456, 0.5, 0.75, 0.0101, 0.99999, cmc, 3, 30, 0.5)
    report = result.to_dict()
    assert report["top1"] == 12.35 and report["mAP"] == 1.01 and report["nAUC"] == 100.0
    assert report["num_probes"] == 3 and report["num_gallery"] == 30
    assert len(report["cmc"]) == 20 and report["cmc"][0] == 50.0
    assert len(result.to_dict(full_cmc=True)["cmc"]) == 30


def test_rejects_probe_without_gallery_identity_and_bad_input():
    with pytest.raises(ValueError, match="probe 1, label 7"):
        reid_metrics(np.zeros((2, 2)), np.array([0, 7]), np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        reid_metrics(np.array([[np.nan, 1.0]]), np.array([0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="does not match"):
        reid_metrics(np.zeros((2, 3)), np.array([0, 1]), np.array([0, 1]))


# --- properties against the brute-force reference --------------------------------------------


@st.composite
def labelled_distances(draw: st.DrawFn, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random problem where every probe identity is in the gallery; with ``ties`` distances repeat."""
    num_gallery = draw(st.integers(1, 12))
    gallery_labels = np.array(draw(st.lists(st.integers(0, 3), min_size=num_gallery, max_size=num_gallery)))
    num_probes = draw(st.integers(1, 6))
    probe_labels = np.array(
        draw(st.lists(st.sampled_from(sorted(set(gallery_labels))), min_size=num_probes, max_size=num_probes))
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if ties:
        dist = rng.integers(0, 4, size=(num_probes, num_gallery)).astype(float)
    else:
        dist = rng.permutation(num_probes * num_gallery).reshape(num_probes, num_gallery) / 7.0
    return dist, probe_labels, gallery_labels


@settings(max_examples=200, deadline=None)
@given(labelled_distances(ties=True))
def test_matches_brute_force_reference_with_ties(problem):
    dist, probe_labels, gallery_labels = problem
    result = reid_metrics(dist, probe_labels, gallery_labels)
    expected = reference_metrics(dist, probe_labels, gallery_labels)
    np.testing.assert_allclose(result.cmc, expected["cmc"])
    assert result.mAP == pytest.approx(expected["mAP"])
    assert result.nAUC == pytest.approx(expected["nAUC"])
    if len(np.unique(gallery_labels)) > 1:
        assert result.identity_auc == pytest.approx(reference_identity_auc(dist, probe_labels, gallery_labels))


@settings(max_examples=100, deadline=None)
@given(labelled_distances(ties=False), st.integers(0, 2**32 - 1))
def test_invariant_to_permuting_the_gallery_without_ties(problem, seed):
    dist, probe_labels, gallery_labels = problem
    perm = np.random.default_rng(seed).permutation(len(gallery_labels))
    before = reid_metrics(dist, probe_labels, gallery_labels)
    after = reid_metrics(dist[:, perm], probe_labels, gallery_labels[perm])
    np.testing.assert_allclose(after.cmc, before.cmc)
    assert after.mAP == pytest.approx(before.mAP)
    assert after.identity_auc == pytest.approx(before.identity_auc, nan_ok=True)


@settings(max_examples=100, deadline=None)
@given(labelled_distances(ties=True))
def test_cmc_is_non_decreasing_and_ends_at_one(problem):
    result = reid_metrics(*problem)
    assert np.all(np.diff(result.cmc) >= 0)
    assert result.cmc[-1] == 1.0
    assert result.cmc[0] >= 0.0 and result.top1 <= result.top5 <= result.top10 <= 1.0
    assert 0.0 < result.mAP <= 1.0 and 0.0 < result.nAUC <= 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_perfect_embedding_gives_100_percent(people, per_person, seed):
    rng = np.random.default_rng(seed)
    centres = np.eye(people, 8) * 100.0  # identities far apart, samples close to their centre
    gallery_labels = np.repeat(np.arange(people), per_person)
    probe_labels = rng.permutation(gallery_labels)
    gallery = centres[gallery_labels] + rng.normal(scale=0.01, size=(len(gallery_labels), 8))
    probe = centres[probe_labels] + rng.normal(scale=0.01, size=(len(probe_labels), 8))
    result = reid_metrics_embeddings(probe, gallery, probe_labels, gallery_labels)
    assert (result.top1, result.mAP, result.nAUC) == (1.0, 1.0, 1.0)


# --- distances, streaming, pooling --------------------------------------------------------------


def test_euclidean_distances_match_the_definition_across_chunks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(13, 5)).astype(np.float32), rng.normal(size=(7, 5)).astype(np.float32)
    naive = np.sqrt(((a[:, None, :].astype(float) - b[None, :, :]) ** 2).sum(-1))
    dist = euclidean_distances(a, b, chunk_elements=10)  # one probe row per chunk
    assert dist.dtype == np.float64 and dist.shape == (13, 7)
    np.testing.assert_allclose(dist, naive, rtol=1e-10, atol=1e-12)


def test_euclidean_distances_of_identical_rows_are_zero_not_nan():
    a = 1e4 + np.random.default_rng(1).normal(size=(4, 64))  # large norms: cancellation goes below 0
    dist = euclidean_distances(a, a)
    assert np.isfinite(dist).all() and (dist >= 0).all()
    assert np.allclose(np.diag(dist), 0.0, atol=1e-3)
    with pytest.raises(ValueError, match="dimension"):
        euclidean_distances(np.zeros((2, 3)), np.zeros((2, 4)))


def test_streaming_equals_the_full_matrix_across_chunks(monkeypatch):
    rng = np.random.default_rng(2)
    probe, gallery = rng.normal(size=(9, 4)), rng.normal(size=(11, 4))
    probe_labels, gallery_labels = rng.integers(0, 3, 9), np.r_[0, 1, 2, rng.integers(0, 3, 8)]
    full = reid_metrics(euclidean_distances(probe, gallery), probe_labels, gallery_labels)
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 23)  # two probe rows per block
    streamed = reid_metrics_embeddings(probe, gallery, probe_labels, gallery_labels)
    assert streamed.to_dict(full_cmc=True) == full.to_dict(full_cmc=True)
    assert identity_auc(euclidean_distances(probe, gallery), probe_labels, gallery_labels) == full.identity_auc


def test_pool_by_group_averages_each_group():
    embeddings = np.array([[1.0, 2.0], [10.0, 0.0], [3.0, 4.0], [5.0, 5.0]], dtype=np.float32)
    pooled, ids = pool_by_group(embeddings, np.array([2, 0, 2, 1]))
    np.testing.assert_array_equal(ids, [0, 1, 2])
    np.testing.assert_allclose(pooled, [[10.0, 0.0], [5.0, 5.0], [2.0, 3.0]])
    assert pooled.dtype == np.float32
    with pytest.raises(ValueError):
        pool_by_group(embeddings, np.array([0, 1]))
