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
from engines.track_distance import TrackDistance
from stream.threshold import threshold_for_far


@dataclass(frozen=True)
class EnrolledTracks:
    """The enrolled tracks of the named identities and the distance between every two of them (the gallery's
    ``TrackDistance``: chunked, no [T, T, D] temporary), computed once for both impostor readings."""

    owners: np.ndarray  # [T] identity of each track
    distances: np.ndarray  # [T, T]

    @classmethod
    def of(cls, owners: np.ndarray, means: np.ndarray, named: set[int], distance: TrackDistance) -> EnrolledTracks:
        keep = np.isin(owners, sorted(named))
        return cls(owners[keep], distance(means[keep], means[keep]))

    def identity_pairs(self) -> np.ndarray:
        """Per track and per *other* identity: the distance of the track to that identity's nearest track — how
        the matcher would score this person if they were not enrolled."""
        people = np.unique(self.owners)
        if len(people) < 2:
            return np.zeros(0)
        out = []
        for person in people:
            columns = self.owners == person
            nearest = self.distances[:, columns].min(axis=1)  # each track to this identity
            out.append(nearest[~columns])
        return np.concatenate(out)

    def leave_one_out_nearest(self) -> np.ndarray:
        """Per track: its distance to the nearest *other* identity (a stranger's score against the rest of the
        gallery), the site's own measurement of what ``site_threshold`` promises."""
        if len(np.unique(self.owners)) < 2:
            return np.zeros(0)
        others = np.where(self.owners[:, None] == self.owners[None, :], np.inf, self.distances)
        return others.min(axis=1)


@dataclass(frozen=True)
class SeenTrack:
    """One track of a site recording: where it was seen, when, and its mean embedding."""

    recording: int
    sensor: str
    start: float
    end: float
    mean: np.ndarray


def concurrent_pairs(tracks: list[SeenTrack], distance: TrackDistance) -> np.ndarray:
    """Distances between tracks one sensor saw at the same time (different people by definition)."""
    pairs = []
    for i, a in enumerate(tracks):
        for b in tracks[i + 1 :]:
            same_view = a.recording == b.recording and a.sensor == b.sensor
            if same_view and a.start < b.end and b.start < a.end:
                pairs.append((a.mean, b.mean))
    if not pairs:
        return np.zeros(0)
    return distance.rows(np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))


def site_threshold(fit: ImpostorFit, strangers: np.ndarray, far: float, identities: int) -> tuple[float, str]:
    """The matcher's threshold for open-set rate ``far``: the fit's, or lower where the site's own people say so.

    ``strangers`` are the leave-one-out scores (``EnrolledTracks.leave_one_out_nearest``): the site's enrolled
    people scored as if they were strangers, a direct, label-free measurement of the open-set score. Their
    empirical quantile is taken when it is stricter than the fit's: real impostor distances have a heavier lower
    tail than a normal (a few people walk alike), and on KGBD the fit alone accepted 7.6 % of strangers at a 1 %
    target (docs/site.md). n of them measure rates down to 1 / n; a stricter target is held to the threshold of
    1 / n as well, so that a stricter target never gets a looser threshold (it did: at 0.1 % the fit alone).
    Returns (threshold, which of the two set it)."""
    fitted = fit.threshold(far, identities)
    if len(strangers) == 0:
        return fitted, "fit"
    measurable = max(far, 1.0 / len(strangers))  # the strictest rate these strangers can tell
    measured = threshold_for_far(strangers, measurable)
    return (measured, "site's own people") if measured < fitted else (fitted, "fit")
