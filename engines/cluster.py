"""Pseudo-labels for SimMC: k-reciprocal Jaccard distances (Zhong et al., CVPR 2017) and DBSCAN.

SimMC's published code clusters training features with DBSCAN on the dense
k-reciprocal Jaccard distance (k1 = 20, k2 = 6). Dense is O(N^2) memory; here every
step stays sparse: Jaccard distances are computed only between each point and its
``pair_neighbours`` nearest neighbours (the only pairs that can fall under DBSCAN's
eps), and DBSCAN runs on that sparse graph. Each row of the expanded neighbourhood
weights keeps its ``max_support`` largest entries, a bounded-cost approximation of
the dense algorithm that changes little since the weights are a softmax.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_ROWS_PER_CHUNK = 2048


def nearest_neighbours(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [N, k] of the k nearest rows by cosine similarity (self first), exact order in float32.

    Candidates come from a bfloat16 product (several times faster on CPU) and are
    re-ranked in float32.
    """
    x = F.normalize(features.float(), dim=1)
    low = x.to(torch.bfloat16)
    candidates = min(len(x), k + 8)
    out = torch.empty(len(x), k, dtype=torch.int64)
    for start in range(0, len(x), _ROWS_PER_CHUNK):
        rows = x[start : start + _ROWS_PER_CHUNK]
        mine = torch.arange(len(rows))
        approx = low[start : start + _ROWS_PER_CHUNK] @ low.T
        approx[mine, start + mine] = 2.0  # self is always a candidate, even among exact duplicates
        cand = approx.topk(candidates, dim=1).indices
        exact = torch.einsum("nd,nkd->nk", rows, x[cand])
        exact = torch.where(cand == (start + mine)[:, None], torch.full_like(exact, 2.0), exact)
        order = exact.argsort(dim=1, descending=True, stable=True)[:, :k]
        out[start : start + len(rows)] = cand.gather(1, order)
    return out


def _reciprocal(ranks: np.ndarray, k: int) -> np.ndarray:
    """k-reciprocal neighbours [N, k + 1] (-1 where not reciprocal): j in N(i, k) and i in N(j, k)."""
    nn_k = ranks[:, : k + 1]
    me = np.arange(len(ranks))[:, None, None]
    reciprocal = (nn_k[nn_k][:, :, : k + 1] == me).any(axis=2)
    return np.where(reciprocal, nn_k, -1)


def _row_unique(values: np.ndarray, sentinel: int) -> np.ndarray:
    """Each row's distinct values (>= 0) sorted, padded with ``sentinel``, trimmed to the widest row."""
    rows = np.where(values < 0, sentinel, values)
    rows.sort(axis=1)
    rows[:, 1:][rows[:, 1:] == rows[:, :-1]] = sentinel
    rows.sort(axis=1)
    width = int((rows != sentinel).sum(axis=1).max())
    return rows[:, :width]


def expanded_reciprocal_sets(ranks: np.ndarray, k1: int) -> np.ndarray:
    """R*(i): k1-reciprocal neighbours, expanded by candidates whose (k1/2)-reciprocal sets overlap > 2/3."""
    n = len(ranks)
    r_full = _reciprocal(ranks, k1)
    r_half = _reciprocal(ranks, int(np.around(k1 / 2)))
    parts = [r_full]
    for start in range(0, n, _ROWS_PER_CHUNK):
        r = r_full[start : start + _ROWS_PER_CHUNK]  # [c, k1+1]
        cand_half = np.where(r[:, :, None] >= 0, r_half[np.maximum(r, 0)], -1)  # [c, k1+1, kh+1]
        size = (cand_half >= 0).sum(axis=2)
        shared = ((cand_half[..., None] == r[:, None, None, :]) & (cand_half[..., None] >= 0)).any(axis=3).sum(axis=2)
        accept = (shared > 2 / 3 * size) & (size > 0)
        parts.append(np.where(accept[..., None], cand_half, -1).reshape(len(r), -1))
    expansions = np.concatenate(parts[1:], axis=0)
    return _row_unique(np.concatenate([r_full, expansions], axis=1), sentinel=n)


def _softmax_weights(x: torch.Tensor, sets: np.ndarray) -> np.ndarray:
    """V[i, R*(i)] = softmax(-(2 - 2 x_i . x_j)) over the set; 0 on padding."""
    n = len(x)
    out = np.zeros(sets.shape, np.float32)
    padded = torch.cat([x, torch.zeros(1, x.shape[1])])
    for start in range(0, n, _ROWS_PER_CHUNK):
        idx = torch.from_numpy(sets[start : start + _ROWS_PER_CHUNK])
        sims = torch.einsum("nd,nkd->nk", x[start : start + len(idx)], padded[idx])
        logits = torch.where(idx < n, -(2 - 2 * sims), torch.tensor(-torch.inf))
        out[start : start + len(idx)] = torch.softmax(logits, dim=1).numpy()
    return out


def _query_expansion(sets: np.ndarray, weights: np.ndarray, ranks: np.ndarray, k2: int, max_support: int):
    """V_qe[i] = mean of V[j] over i's k2 nearest neighbours; each row keeps its max_support largest entries."""
    n = len(sets)
    neighbours = ranks[:, :k2]  # [N, k2]
    cols = sets[neighbours].reshape(n, -1)
    vals = (weights[neighbours] / k2).reshape(n, -1)
    keys = np.arange(n, dtype=np.int64)[:, None] * (n + 1) + cols
    keys = np.where(cols < n, keys, -1).ravel()
    valid = keys >= 0
    unique_keys, inverse = np.unique(keys[valid], return_inverse=True)
    summed = np.bincount(inverse, weights=vals.ravel()[valid]).astype(np.float32)
    row, col = unique_keys // (n + 1), unique_keys % (n + 1)
    counts = np.bincount(row, minlength=n)
    width = min(int(counts.max()), max_support)
    # rank entries inside each row by weight, keep the top `width`
    order = np.lexsort((-summed, row))
    row, col, summed = row[order], col[order], summed[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(row)) - starts[row]
    keep = position < width
    out_cols = np.full((n, width), n, np.int64)
    out_vals = np.zeros((n, width), np.float32)
    out_cols[row[keep], position[keep]] = col[keep]
    out_vals[row[keep], position[keep]] = summed[keep]
    by_col = np.argsort(out_cols, axis=1, kind="stable")
    return np.take_along_axis(out_cols, by_col, 1), np.take_along_axis(out_vals, by_col, 1)


def _sum_of_minima(cols: torch.Tensor, vals: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For row pairs (a, b): sum over shared columns of min(V[a, k], V[b, k]); rows sorted by column."""
    ca, va, cb, vb = cols[a], vals[a], cols[b], vals[b]
    pos = torch.searchsorted(cb, ca).clamp(max=cb.shape[1] - 1)
    hit = cb.gather(1, pos) == ca
    return torch.where(hit, torch.minimum(va, vb.gather(1, pos)), torch.zeros_like(va)).sum(dim=1)


def jaccard_pairs(
    features: torch.Tensor, k1: int = 20, k2: int = 6, pair_neighbours: int = 32, max_support: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse k-reciprocal Jaccard distances: (i, j, d) for each i and its nearest neighbours j != i."""
    x = F.normalize(features.float(), dim=1)
    n = len(x)
    ranks = nearest_neighbours(x, min(n, max(k1 + 1, pair_neighbours + 1))).numpy()
    sets = expanded_reciprocal_sets(ranks, k1)
    weights = _softmax_weights(x, sets)
    cols, vals = _query_expansion(sets, weights, ranks, k2, max_support)
    cols_t, vals_t = torch.from_numpy(cols), torch.from_numpy(vals)
    a = np.repeat(np.arange(n), ranks.shape[1] - 1)
    b = ranks[:, 1:].ravel()
    mins = np.empty(len(a), np.float32)
    step = _ROWS_PER_CHUNK * 16
    for s in range(0, len(a), step):
        mins[s : s + step] = _sum_of_minima(
            cols_t, vals_t, torch.from_numpy(a[s : s + step]), torch.from_numpy(b[s : s + step])
        ).numpy()
    return a, b, 1.0 - mins / (2.0 - mins)


def dbscan_sparse(n: int, a: np.ndarray, b: np.ndarray, dist: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN over a sparse symmetric distance graph; labels 0.. per cluster, -1 for noise."""
    close = dist <= eps
    a, b = a[close], b[close]
    keys = np.sort(np.concatenate([a * n + b, b * n + a]))
    distinct = np.ones(len(keys), bool)
    distinct[1:] = keys[1:] != keys[:-1]
    keys = keys[distinct]
    a, b = keys // n, keys % n
    core = np.bincount(a, minlength=n) + 1 >= min_samples  # a point is its own neighbour
    both = core[a] & core[b]
    labels = _components(n, a[both], b[both])
    labels = np.where(core, labels, -1)
    border = ~core[a] & core[b]
    labels[a[border]] = labels[b[border]]  # a border point joins a cluster of one of its core neighbours
    _, dense = np.unique(labels[labels >= 0], return_inverse=True)
    out = np.full(n, -1, np.int64)
    out[labels >= 0] = dense
    return out


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components by min-label propagation with pointer jumping; label = smallest member."""
    labels = np.arange(n)
    while True:
        low = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        while True:
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, labels):
            return labels
        labels = new


def pseudo_labels(features: torch.Tensor, eps: float = 0.6, min_samples: int = 4, k1: int = 20, k2: int = 6):
    """SimMC's clustering step: DBSCAN on k-reciprocal Jaccard distances of L2-normalised features."""
    a, b, d = jaccard_pairs(features, k1=k1, k2=k2)
    return dbscan_sparse(len(features), a, b, d, eps, min_samples)
