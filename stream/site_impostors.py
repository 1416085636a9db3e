"""Which pairs of tracks are different people, on a site, without labels.

Facts that need no labels name pairs of *different* people — two identities the user enrolled under
different names, two tracks one sensor saw at the same time — but no fact names two walks of the
*same* person on a new site (the two halves of one walk are far closer than two walks of one person;
docs/site.md). So a site's threshold is set from the impostor side alone (``engines.impostors``): the
distance below which a stranger would be named as someone at the target rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engines.impostors import ImpostorFit
from stream.threshold import threshold_for_far


def identity_pairs(owners: np.ndarray, means: np.ndarray, named: set[int]) -> np.ndarray:
    """Per enrolled track of a named identity and per *other* named identity: the distance of the track to
    that identity's nearest track — how the matcher would score this person if they were not enrolled."""
    keep = np.isin(owners, sorted(named))
    owners, means = owners[keep], np.asarray(means[keep], np.float64)
    people = np.unique(owners)
    if len(people) < 2:
        return np.zeros(0)
    distances = np.linalg.norm(means[:, None] - means[None], axis=2)
    out = []
    for person in people:
        columns = owners == person
        nearest = distances[:, columns].min(axis=1)  # each track to this identity
        out.append(nearest[~columns])
    return np.concatenate(out)


@dataclass(frozen=True)
class SeenTrack:
    """One track of a site recording: where it was seen, when, and its mean embedding."""

    recording: int
    sensor: str
    start: float
    end: float
    mean: np.ndarray


def concurrent_pairs(tracks: list[SeenTrack]) -> np.ndarray:
    """Distances between tracks one sensor saw at the same time (different people by definition)."""
    out = []
    for i, a in enumerate(tracks):
        for b in tracks[i + 1 :]:
            same_view = a.recording == b.recording and a.sensor == b.sensor
            if same_view and a.start < b.end and b.start < a.end:
                out.append(float(np.linalg.norm(np.asarray(a.mean, np.float64) - b.mean)))
    return np.asarray(out, np.float64)


def leave_one_out_nearest(owners: np.ndarray, means: np.ndarray, named: set[int]) -> np.ndarray:
    """Per track of a named identity: its distance to the nearest *other* named identity (a stranger's score
    against the rest of the gallery) — a check of the fit on the site's own people, not used to set it."""
    keep = np.isin(owners, sorted(named))
    owners, means = owners[keep], np.asarray(means[keep], np.float64)
    if len(np.unique(owners)) < 2:
        return np.zeros(0)
    distances = np.linalg.norm(means[:, None] - means[None], axis=2)
    distances[owners[:, None] == owners[None, :]] = np.inf
    return distances.min(axis=1)


def site_threshold(fit: ImpostorFit, strangers: np.ndarray, far: float, identities: int) -> tuple[float, str]:
    """The matcher's threshold for open-set rate ``far``: the fit's, or lower where the site's own people say so.

    ``strangers`` are the leave-one-out scores (``leave_one_out_nearest``): the site's enrolled people scored as
    if they were strangers, a direct, label-free measurement of the open-set score. Where there are enough of
    them to hold the target quantile (at least 1 / far), their empirical quantile is taken when it is stricter
    than the fit's: real impostor distances have a heavier lower tail than a normal (a few people walk alike),
    and on KGBD the fit alone accepted 7.6 % of strangers at a 1 % target (docs/site.md).
    Returns (threshold, which of the two set it)."""
    fitted = fit.threshold(far, identities)
    if len(strangers) * far < 1:
        return fitted, "fit"
    measured = threshold_for_far(strangers, far)
    return (measured, "site's own people") if measured < fitted else (fitted, "fit")
