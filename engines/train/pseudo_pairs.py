"""Walks of one person found without labels: track means that are each other's nearest, well inside the impostors.

TrackCon's terms only pull windows of *one* track together, so what differs between two walks of one person
(another pace, the other side to the sensor, a different stretch of the path) is never taught: on held-out
KGBD walks, two walks of a person lay about half as far apart as two people. Once the encoder is fair, the
track means of two walks of one person are usually each other's nearest (walk top-1 is above 90 %); such
*mutual* nearest pairs, kept only when far closer than tracks usually are, are treated as one person for the
rest of training (the k-reciprocal idea of Zhong et al., CVPR 2017, at track level; SimMC's DBSCAN does the
like for windows). A track without such a partner stays its own class, as before.

The gate needs no labels and counts how many tracks a lone track is compared with: a robust normal fit of the
distances between track means (``engines.impostors.ImpostorFit``, on a seeded sample of pairs) gives the distance
below which a track that has no partner would find its nearest other track with chance ``rate``, as the
open-set threshold of a gallery of all the other tracks. A gate per pair (say, 3 spreads below the median)
is far too loose: of 200 lone random tracks it paired 90; this gate paired 0-12 (five draws: 2 % of them).
Real bodies have a heavier near tail than a normal (a few people walk alike), so a pair must also be
*distinct*: each track's nearest clearly nearer than its second nearest. A look-alike seldom comes alone.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engines.impostors import ImpostorFit
from engines.metrics import euclidean_distances
from engines.models import embed_in_batches

_ROWS_PER_CHUNK = 2048
_SAMPLED_PAIRS = 200_000


def track_means(encoder: nn.Module, windows: torch.Tensor, members: list[torch.Tensor]) -> np.ndarray:
    """Unit-length mean embedding of each track's windows, in the order of ``members`` (eval mode, no grad)."""
    embeddings = embed_in_batches(encoder, windows)
    means = torch.stack([embeddings[m].double().mean(dim=0) for m in members])
    return nn.functional.normalize(means, dim=1).numpy()


def mutual_nearest_pairs(means: np.ndarray, rate: float, distinct: float = 1.0, seed: int = 0) -> list[tuple[int, int]]:
    """(i, j), i < j: rows that are each other's nearest, closer than the gate for ``rate`` (module docstring),
    and, for both, nearer than ``distinct`` times their second nearest (a look-alike is rarely alone)."""
    n = len(means)
    if n < 3:
        return []
    nearest = np.empty(n, dtype=np.int64)
    two_closest = np.empty((n, 2))
    for start in range(0, n, _ROWS_PER_CHUNK):
        distances = euclidean_distances(means[start : start + _ROWS_PER_CHUNK], means)
        distances[np.arange(len(distances)), start + np.arange(len(distances))] = np.inf
        nearest[start : start + len(distances)] = distances.argmin(axis=1)
        two_closest[start : start + len(distances)] = np.partition(distances, 1, axis=1)[:, :2]
    limit = _gate_distance(means, rate, seed)
    clear = (two_closest[:, 0] < limit) & (two_closest[:, 0] <= distinct * two_closest[:, 1])
    return [(i, int(j)) for i, j in enumerate(nearest) if i < j and nearest[j] == i and clear[i] and clear[j]]


def merged_members(members: list[torch.Tensor], pairs: list[tuple[int, int]]) -> list[torch.Tensor]:
    """One class per person found: the windows of both tracks of a pair, every other track alone."""
    partner = {j: i for i, j in pairs}
    merged = {i: [members[i]] for i in range(len(members)) if i not in partner}
    for i, j in pairs:
        merged[i].append(members[j])
    return [torch.cat(parts) for parts in merged.values()]


def _gate_distance(means: np.ndarray, rate: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    n = len(means)
    count = min(_SAMPLED_PAIRS, n * (n - 1) // 2)
    first = rng.integers(0, n, count)
    second = (first + rng.integers(1, n, count)) % n  # never the row itself
    sampled = np.linalg.norm(means[first] - means[second], axis=1)
    return ImpostorFit.of(sampled).threshold(rate, n - 1)
