"""Open-set matching of a track: who is this, or someone the gallery has not seen?

Why pool: one 6-frame window is a fifth of a second of walking, and its nearest gallery
embedding is right only about 6 times in 10 (window top-1 in benchmarks/reid_kgbd.md); the mean of
a track's window embeddings is right about 8 times in 10 (walk level). So each new window updates
the track's running mean, and the decision is taken on that mean, compared with the means of the
enrolled tracks (``Gallery.search_tracks_many``, through the gallery's index of track means: exact
up to 5,000 tracks, HNSW above): the nearest identity if its distance is within ``threshold``,
otherwise "unknown". An unknown track seen for ``enroll_after`` windows can be enrolled as a new
anonymous identity (its track mean searchable from the next batch on), so that it is recognised when
it comes back. Where that enrollment fails (a shared gallery's database unreachable), the track stays
unknown, the failure is counted and said once, and the next decision of the track tries again: matching never
stops for an outage. A refusal that would not pass (a read-only or damaged gallery) ends the node with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from stream.gallery.gallery import Gallery, Match
from stream.gallery.postgres import DatabaseUnreachable
from stream.gallery.store import Origin

log = logging.getLogger("gaitwatch.matcher")


@dataclass(frozen=True)
class Decision:
    track: str
    identity: int | None  # None: unknown
    name: str | None
    distance: float | None  # of the nearest identity (known or not); None for an empty gallery
    windows: int  # how many windows the decision rests on
    candidates: list[Match]
    enrolled: bool = False  # this decision enrolled the track as a new anonymous identity


@dataclass
class _Track:
    total: np.ndarray
    embeddings: list[np.ndarray] = field(default_factory=list)
    enrolled_as: int | None = None
    anonymous: int | None = None  # the identity made for it, before its embeddings were stored


class TrackMatcher:
    def __init__(
        self,
        gallery: Gallery,
        threshold: float,
        k: int = 5,
        min_windows: int = 3,
        enroll_after: int | None = None,
        source: str = "live",
    ) -> None:
        if min_windows < 1 or (enroll_after is not None and enroll_after < min_windows):
            raise ValueError("need min_windows >= 1 and enroll_after >= min_windows")
        self.gallery = gallery
        self.threshold = threshold
        self.k = k
        self.min_windows = min_windows
        self.enroll_after = enroll_after
        self.source = source
        self.tracks: dict[str, _Track] = {}
        self.enroll_failures = 0

    def observe(self, track: str, embedding: np.ndarray) -> Decision | None:
        """Add one window's embedding to ``track``; a decision once the track has ``min_windows`` windows."""
        return self.observe_many([track], np.asarray(embedding).reshape(1, -1))[0]

    def observe_many(self, tracks: list[str], embeddings: np.ndarray) -> list[Decision | None]:
        """``observe`` for a batch of windows (several may belong to one track), searched in one go.

        Each decision rests on its track's windows up to and including its own, as if observed one by one;
        the gallery searched is the one at the start of the batch (an anonymous enrollment made by a
        decision in the batch is seen from the next batch on)."""
        vectors = np.asarray(embeddings, np.float32).reshape(len(tracks), -1)
        pending: list[tuple[int, _Track, int]] = []  # (row, track state, windows so far)
        pooled = []
        for row, (track, vector) in enumerate(zip(tracks, vectors, strict=True)):
            state = self.tracks.get(track)
            if state is None:
                state = self.tracks[track] = _Track(np.zeros(len(vector), np.float64))
            state.total += vector
            state.embeddings.append(vector)
            count = len(state.embeddings)
            if count >= self.min_windows:
                pending.append((row, state, count))
                pooled.append(state.total / count)
        decisions: list[Decision | None] = [None] * len(tracks)
        if not pending:
            return decisions
        found = self.gallery.search_tracks_many(np.asarray(pooled, np.float32), self.k)
        for (row, state, count), candidates in zip(pending, found, strict=True):
            decisions[row] = self._decide(tracks[row], state, count, candidates)
        return decisions

    def _decide(self, track: str, state: _Track, count: int, candidates: list[Match]) -> Decision:
        best = candidates[0] if candidates else None
        known = best is not None and best.distance <= self.threshold
        enrolled = False
        if not known and self.enroll_after is not None and count >= self.enroll_after and state.enrolled_as is None:
            state.enrolled_as = self._enroll_anonymous(track, state)
            enrolled = state.enrolled_as is not None
        if known:
            identity = best.identity
        elif state.enrolled_as is not None:
            identity = state.enrolled_as
        else:
            identity = None
        name = self.gallery.name_of(identity) if identity is not None else None
        return Decision(track, identity, name, best.distance if best else None, count, candidates, enrolled)

    def end(self, track: str) -> None:
        """Forget a track that has left the scene."""
        self.tracks.pop(track, None)

    def _enroll_anonymous(self, track: str, state: _Track) -> int | None:
        """The new anonymous identity of ``track``, or None where the gallery refused (tried again later)."""
        try:
            if state.anonymous is None:
                state.anonymous = self.gallery.add_anonymous({"first_track": track})
            vectors = np.stack(state.embeddings)
            self.gallery.enroll(state.anonymous, vectors, [Origin(self.source, track)] * len(vectors))
        except DatabaseUnreachable as err:  # a passing outage; anything else (read-only, damaged) ends the node
            self.enroll_failures += 1
            if self.enroll_failures == 1 or self.enroll_failures % 100 == 0:
                log.warning(
                    "track %s not enrolled (%d failed so far): %s; tried again later", track, self.enroll_failures, err
                )
            return None
        return state.anonymous
