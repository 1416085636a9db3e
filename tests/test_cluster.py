"""SimMC's clustering: sparse k-reciprocal Jaccard equals the dense algorithm; DBSCAN finds the clusters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engines.cluster import dbscan_sparse, jaccard_pairs, nearest_neighbours, pseudo_labels


def dense_jaccard(x: torch.Tensor, k1: int, k2: int) -> np.ndarray:
    """Reference: the dense k-reciprocal Jaccard distance of Zhong et al. (CVPR 2017), written plainly."""
    x = F.normalize(x, dim=1)
    n = len(x)
    sim = (x @ x.T).numpy()
    rank = np.argsort(-sim, axis=1, kind="stable")

    def reciprocal(i: int, k: int) -> np.ndarray:
        forward = rank[i, : k + 1]
        return np.array([j for j in forward if i in rank[j, : k + 1]])

    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = list(r)
        for c in r:
            rc = reciprocal(c, int(np.around(k1 / 2)))
            if len(np.intersect1d(rc, r)) > 2 / 3 * len(rc):
                expanded += list(rc)
        expanded = np.unique(expanded)
        w = np.exp(-(2 - 2 * sim[i, expanded]))
        v[i, expanded] = w / w.sum()
    v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    mins = np.minimum(v[:, None, :], v[None, :, :]).sum(axis=2)
    return 1 - mins / (2 - mins)


def blobs(n_clusters: int, per_cluster: int, dim: int = 16, spread: float = 0.3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_clusters, dim, generator=gen)
    labels = torch.arange(n_clusters).repeat_interleave(per_cluster)
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=gen), labels.numpy()


def test_nearest_neighbours_match_exact_search():
    x, _ = blobs(10, 30)
    got = nearest_neighbours(x, 12).numpy()
    xn = F.normalize(x, dim=1)
    exact = torch.argsort(-(xn @ xn.T), dim=1, stable=True)[:, :12].numpy()
    assert np.all(got[:, 0] == np.arange(len(x)))
    sims = (xn @ xn.T).numpy()
    np.testing.assert_allclose(
        np.take_along_axis(sims, got, 1), np.take_along_axis(sims, exact, 1), atol=1e-6
    )  # same neighbours up to exact ties


def test_nearest_neighbours_order_is_exact_where_bfloat16_cannot_tell():
    # near-duplicates: bfloat16 similarities tie or misorder; the float32 re-rank must not
    base, _ = blobs(4, 1, dim=32)
    gen = torch.Generator().manual_seed(1)
    x = base.repeat_interleave(40, 0) + 1e-2 * torch.randn(160, 32, generator=gen)
    got = nearest_neighbours(x, 10).numpy()
    xn = F.normalize(x, dim=1)
    sims = (xn @ xn.T).numpy()
    assert np.all(got[:, 0] == np.arange(len(x)))
    ranked = np.take_along_axis(sims, got[:, 1:], 1)
    assert np.all(np.diff(ranked, axis=1) <= 1e-6)  # non-increasing similarity after self


def test_sparse_jaccard_equals_dense_reference():
    x, _ = blobs(8, 25, spread=0.8)
    a, b, d = jaccard_pairs(x, k1=20, k2=6, pair_neighbours=40, max_support=10_000)
    reference = dense_jaccard(x, 20, 6)
    np.testing.assert_allclose(d, reference[a, b], atol=1e-5)


def test_dbscan_core_border_noise_on_a_hand_made_graph():
    # 0-1-2-3 a dense chain (each within eps of the next two), 4 reaches only core 3, 5 is isolated
    edges = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (3, 4)]
    a = np.array([e[0] for e in edges])
    b = np.array([e[1] for e in edges])
    labels = dbscan_sparse(6, a, b, np.full(len(edges), 0.1), eps=0.5, min_samples=3)
    assert labels[0] == labels[1] == labels[2] == labels[3] == labels[4] >= 0  # 4 is a border point
    assert labels[5] == -1
    far = dbscan_sparse(6, a, b, np.full(len(edges), 0.9), eps=0.5, min_samples=3)
    assert np.all(far == -1)


def test_pseudo_labels_recover_well_separated_identities():
    x, truth = blobs(12, 40, dim=32, spread=0.25)
    labels = pseudo_labels(x, eps=0.6, min_samples=4)
    assert (labels >= 0).mean() > 0.95
    for cluster in np.unique(labels[labels >= 0]):
        members = truth[labels == cluster]
        assert np.all(members == members[0]), "a cluster mixes identities"
    assert len(np.unique(labels[labels >= 0])) == 12


@pytest.mark.parametrize("n", [1, 5])
def test_tiny_inputs_do_not_crash(n: int):
    x = torch.randn(n, 8)
    labels = pseudo_labels(x, eps=0.6, min_samples=4)
    assert labels.shape == (n,) and labels.min() >= -1 and labels.max() < n
