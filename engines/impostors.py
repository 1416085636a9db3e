"""The impostor distance distribution of a model: a robust normal fit, its open-set rate, and the shape a model
carries from its training tracks.

Why a fit: a site offers few pairs of different people (tens to thousands) and the rates asked for lie in
the far lower tail, so the empirical quantile would be the smallest sample or below it. A normal fitted
robustly (the median, and the lower half's spread through the 16th percentile) extrapolates there, and a
far cluster of very different bodies does not widen it.

Why a shape prior: a handful of pairs fixes the centre of a site's impostor distances well (a median)
but its spread badly. The *relative* spread (spread / centre) is a property of the model more than of the
site: the distances of a site whose sensor makes every body look alike shrink as a whole. Each TrackCon
checkpoint records it from its training tracks (``track_shape``: mean embeddings of different walks,
label-free; the few pairs of one person's walks sit far inside the lower half and barely move the 16th
percentile), and ``ImpostorFit.of(..., prior=...)`` weighs it against the site's own as ``PRIOR_PAIRS``
pairs would weigh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from engines.track_distance import EUCLIDEAN, TrackDistance
from sensors.errors import InputError

MIN_PAIRS = 3  # fewer impostor pairs than this describe nothing
PRIOR_PAIRS = 100  # how many site pairs the model's own relative spread weighs as


@dataclass(frozen=True)
class ImpostorFit:
    centre: float  # median impostor distance
    spread: float  # the lower half's standard deviation, as a normal's
    pairs: int
    site_spread: float | None = None  # the site's own, before the prior was weighed in (None: no prior)

    @classmethod
    def of(cls, distances: np.ndarray, prior: dict | None = None) -> ImpostorFit:
        """Fit ``distances``; with ``prior`` (a ``track_shape`` dict), its relative spread is weighed in."""
        distances = np.asarray(distances, np.float64)
        if len(distances) < MIN_PAIRS:
            raise InputError(
                f"only {len(distances)} pairs of different people found; a site calibration needs at least "
                f"{MIN_PAIRS}: enroll more people, or give recordings in which people walk at the same time"
            )
        if not np.isfinite(distances).all():
            raise InputError("impostor distances contain NaN or infinite values")
        centre = float(np.median(distances))
        spread = float(centre - np.quantile(distances, NormalDist().cdf(-1.0)))
        if not spread > 0:
            spread = float(np.std(distances)) or 1e-6  # all pairs alike: any positive spread keeps the fit defined
        if prior is None or not centre > 0:
            return cls(centre, spread, len(distances))
        n = len(distances)
        relative = (n * spread / centre + PRIOR_PAIRS * float(prior["relative_spread"])) / (n + PRIOR_PAIRS)
        return cls(centre, relative * centre, n, site_spread=spread)

    def pair_rate(self, threshold: float) -> float:
        """F(t): the share of impostor comparisons at most ``threshold`` apart."""
        return NormalDist(self.centre, self.spread).cdf(threshold)

    def open_set_rate(self, threshold: float, identities: int) -> float:
        """The share of strangers named as someone with ``identities`` enrolled: 1 - (1 - F(t))^N."""
        return float(-math.expm1(identities * math.log1p(-self.pair_rate(threshold))))  # exact for tiny rates

    def threshold(self, far: float, identities: int) -> float:
        """The distance at which a stranger is named as one of ``identities`` people at rate ``far``."""
        if not 0 < far < 1:
            raise InputError(f"target false-accept rate must lie in (0, 1), got {far}")
        if identities < 1:
            raise InputError("the gallery has no identity to calibrate for")
        per_pair = -math.expm1(math.log1p(-far) / identities)  # 1 - (1 - far)^(1/N), exact for tiny rates
        return float(NormalDist(self.centre, self.spread).inv_cdf(per_pair))

    def to_dict(self) -> dict:
        return {
            "model": "normal",
            "centre": self.centre,
            "spread": self.spread,
            "pairs": self.pairs,
            **({"site_spread": self.site_spread} if self.site_spread is not None else {}),
        }


def track_shape(
    embeddings: np.ndarray, tracks: np.ndarray, most: int = 1000, seed: int = 0, metric: str = EUCLIDEAN
) -> dict:
    """The relative spread of distances between the mean embeddings of different tracks (at most ``most`` tracks,
    drawn with ``seed``), compared by ``metric`` (each track its own identity): the prior ``ImpostorFit.of`` weighs
    in, recorded by training in the model card."""
    ids = np.unique(tracks)
    if len(ids) > most:
        ids = np.sort(np.random.default_rng(seed).choice(ids, most, replace=False))
    means = np.stack([embeddings[tracks == t].astype(np.float64).mean(axis=0) for t in ids])
    upper = np.triu_indices(len(means), 1)
    distance = TrackDistance.fit(metric, means, np.arange(len(means)))
    fit = ImpostorFit.of(distance(means, means)[upper])  # chunked: 1000 tracks x 128 D stays small
    return {
        "relative_spread": fit.spread / fit.centre,
        "centre": fit.centre,
        "pairs": fit.pairs,
        "source": "mean embeddings of different training tracks (label-free)",
    }
