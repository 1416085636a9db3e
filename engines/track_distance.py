"""How two track means of one model are compared: the Euclidean distance, or with the body shape fused in.

A model card's ``metric`` says which. ``euclidean``: the distance between the vectors. ``euclidean+body-shape``
(a TrackCon model exported with ``--body-shape``): each embedding ends with its window's 19 bone lengths (metres,
canonical skeleton, averaged over the window's frames), so a track mean ends with the track's mean bone lengths,
and two track means are compared, in the embedding's units, by

    D = d_embedding + w * d_shape * (s_embedding / s_shape)

d_embedding: the Euclidean distance of the parts before the bone lengths; d_shape: the Euclidean distance of the
bone lengths, each z-scored with the mean and spread of the gallery's enrolled track means (the site's own
statistics, no labels: bone lengths differ between sensors; a bone that does not vary there says nothing);
s: each part's median distance between track means of two different identities (``impostor_scale``); w =
``SHAPE_WEIGHT``. This is ``stream.fusion``'s rule with the body shape as the second channel. With fewer than two
identities there is no scale and D = d_embedding.

Why (docs/trackcon-experiments.md, "Body shape beside the track mean"): TrackCon sees the bone lengths among its
inputs but weighs them as its training people made useful. Where the enrolled people are new to the encoder, the
body shape as a second opinion turned strangers away better on all three validation splits (FRR at FAR 1 % 45.8 ->
36.0, 52.9 -> 46.0, 38.9 -> 32.2) and named the enrolled better on every validation; w = 0.25 was chosen there, as
the weight that was not worse by more than 2.5 points on any validation (0.5 was better on new people, worse where
the encoder had trained on the gallery's walks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engines.metrics import euclidean_distances
from sensors.errors import FormatError

EUCLIDEAN = "euclidean"
BODY_SHAPE = "euclidean+body-shape"
METRICS = (EUCLIDEAN, BODY_SHAPE)
SHAPE_VALUES = 19  # the canonical skeleton's bones, in ``engines.models.trackcon.BONE_CHILDREN`` order
SHAPE_WEIGHT = 0.25
MAX_PAIRS = 20_000  # pairs of track means measured for a scale: a median needs no more
STILL = 1e-6  # a bone whose spread over the enrolled tracks is below this (metres) says nothing


def check_metric(where: object, metric: object) -> str:
    """``metric`` where it is one this gaitwatch compares by; else FormatError naming ``where``."""
    if metric not in METRICS:
        raise FormatError(where, "metric", f"{metric!r}, expected one of {', '.join(METRICS)}")
    return metric  # type: ignore[return-value]


def metric_of(description: dict) -> str:
    """The metric of a checkpoint (or its description): with ``body_shape`` set, ``BODY_SHAPE``."""
    return BODY_SHAPE if description.get("body_shape") else EUCLIDEAN


def impostor_scale(
    means: np.ndarray,
    owners: np.ndarray,
    seed: int = 0,
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> float | None:
    """The median distance between track means of different identities (None with fewer than two): a unit of a
    channel's distances known without labels (two identities are two people). Every pair where there are at most
    ``MAX_PAIRS``, else that many drawn with a fixed seed; only the rows of the pairs are read (a track index may
    hold a million means). ``distance(a, b)``: row by row, Euclidean by default."""
    owners = np.asarray(owners)
    n = len(owners)
    if n < 2 or not (owners != owners[0]).any():
        return None
    if n * (n - 1) // 2 <= MAX_PAIRS:
        a, b = np.triu_indices(n, 1)
    else:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(0, n, MAX_PAIRS), rng.integers(0, n, MAX_PAIRS)
    different = owners[a] != owners[b]
    a, b = a[different], b[different]
    if not len(a):
        return None
    first, second = np.asarray(means[a], np.float64), np.asarray(means[b], np.float64)
    gaps = np.linalg.norm(first - second, axis=1) if distance is None else distance(first, second)
    return float(np.median(gaps))


@dataclass(frozen=True)
class TrackDistance:
    """The distance between track means of one model on one gallery (``__call__``: every pair, ``rows``: row by
    row). Fitted on the gallery's enrolled track means (``fit``); the Euclidean distance for a plain metric."""

    shape_values: int = 0  # trailing values that are bone lengths (0: plain Euclidean)
    centre: np.ndarray | None = None  # [shape_values] the enrolled tracks' mean bone lengths
    spread: np.ndarray | None = None  # [shape_values] and their spread (inf: a bone that says nothing)
    factor: float = 0.0  # w * s_embedding / s_shape; 0 with no scale (fewer than two identities)

    @classmethod
    def fit(cls, metric: str, means: np.ndarray, owners: np.ndarray) -> TrackDistance:
        """The distance ``metric`` names, with the statistics of ``means`` [T, D] (owned by ``owners`` [T])."""
        if check_metric("model card", metric) == EUCLIDEAN:
            return cls()
        means = np.asarray(means, np.float64)
        if means.ndim != 2 or means.shape[1] <= SHAPE_VALUES:
            raise ValueError(f"{metric}: needs vectors of more than {SHAPE_VALUES} values, got {means.shape}")
        shapes = means[:, -SHAPE_VALUES:]
        centre = shapes.mean(axis=0) if len(means) else np.zeros(SHAPE_VALUES)
        spread = shapes.std(axis=0) if len(means) else np.zeros(SHAPE_VALUES)
        unmeasured = cls(SHAPE_VALUES, centre, np.where(spread < STILL, np.inf, spread))
        embedding_scale = impostor_scale(means[:, :-SHAPE_VALUES], owners)
        shape_scale = impostor_scale(unmeasured.shapes(means), owners)
        if not embedding_scale or not shape_scale:
            return unmeasured
        return cls(SHAPE_VALUES, unmeasured.centre, unmeasured.spread, SHAPE_WEIGHT * embedding_scale / shape_scale)

    def shapes(self, vectors: np.ndarray) -> np.ndarray:
        """The z-scored bone lengths of ``vectors`` [N, D]."""
        return (np.asarray(vectors, np.float64)[:, -self.shape_values :] - self.centre) / self.spread

    def embeddings(self, vectors: np.ndarray) -> np.ndarray:
        """The part of ``vectors`` [N, D] before the bone lengths (all of it for a plain metric)."""
        vectors = np.asarray(vectors, np.float64)
        return vectors[:, : vectors.shape[1] - self.shape_values]

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """[A, B] distances between the rows of ``a`` and of ``b``."""
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        out = euclidean_distances(self.embeddings(a), self.embeddings(b))
        if self.factor:
            out += self.factor * euclidean_distances(self.shapes(a), self.shapes(b))
        return out

    def rows(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """[N] distances between ``a[i]`` and ``b[i]``."""
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        out = np.linalg.norm(self.embeddings(a) - self.embeddings(b), axis=1)
        if self.factor:
            out += self.factor * np.linalg.norm(self.shapes(a) - self.shapes(b), axis=1)
        return out

    def impostor_scale(self, means: np.ndarray, owners: np.ndarray) -> float | None:
        """``impostor_scale`` in this distance."""
        return impostor_scale(means, owners, distance=self.rows)
