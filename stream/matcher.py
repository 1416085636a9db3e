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

With a silhouette channel (``SilhouetteChannel``: a camera with ``--silhouettes`` and a gallery holding
silhouette embeddings), each track also keeps the mean of its silhouette windows' embeddings, and a decision
re-scores the skeleton channel's candidates with their silhouette distances (``stream.fusion``); the decision
says what each channel alone would have named. An anonymous enrollment stores both channels' embeddings; as a
silhouette window needs more frames than a decision, the track's silhouette windows that come after its enrollment
are added to its identity at its next decisions (up to ``KEPT_SILHOUETTES``), and one that could not be stored (an
outage) is tried again then.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from sensors.errors import InputError
from stream.fusion import FUSION_WEIGHT, fuse
from stream.gallery.channel import SILHOUETTE
from stream.gallery.gallery import Gallery, Match
from stream.gallery.postgres import DatabaseUnreachable
from stream.gallery.store import Origin

log = logging.getLogger("gaitwatch.matcher")
FUSED_CANDIDATES = 32  # skeleton candidates re-scored with silhouettes: the right one may be 6th by skeleton alone
MOST_SILHOUETTE_IDENTITIES = 1024  # silhouette distances asked per decision (a channel's gallery is searched exactly)
KEPT_SILHOUETTES = 64  # silhouette embeddings a track keeps to enroll (about 25 s of walking); its mean uses all
SCALE_MAX_AGE_S = 30.0  # the skeleton scale is measured again after this long, or when the track index's size changes


@dataclass(frozen=True)
class SilhouetteChannel:
    """The silhouette channel of a node: its encoder's card (what the gallery's channel must be bound to, and
    binds an anonymous enrollment to) and the skeleton channel's weight in the fused distance."""

    card: dict
    weight: float = FUSION_WEIGHT


@dataclass(frozen=True)
class ChannelView:
    """What one channel alone says of a track: its nearest identity and distance, and the windows it rests on."""

    identity: int | None
    distance: float | None
    windows: int


@dataclass(frozen=True)
class Decision:
    track: str
    identity: int | None  # None: unknown
    name: str | None
    distance: float | None  # of the nearest identity (known or not); None for an empty gallery
    windows: int  # how many windows the decision rests on
    candidates: list[Match]
    enrolled: bool = False  # this decision enrolled the track as a new anonymous identity
    # with a silhouette channel: "skeleton" and "silhouette" -> what each alone says (the silhouette one absent
    # until the track has a silhouette window and the gallery silhouettes); ``distance`` is then the fused one
    channels: dict[str, ChannelView] | None = None


@dataclass
class _Track:
    total: np.ndarray | None = None
    embeddings: list[np.ndarray] = field(default_factory=list)
    silhouette_total: np.ndarray | None = None
    silhouette_count: int = 0
    silhouettes: list[np.ndarray] = field(default_factory=list)  # kept to enroll (with enroll_after only)
    enrolled_as: int | None = None
    anonymous: int | None = None  # the identity made for it, before its embeddings were stored
    enrolled_embeddings: int = 0  # its skeleton embeddings stored (a retry after an outage does not store them twice)
    enrolled_silhouettes: int = 0  # of ``silhouettes``, those stored under ``anonymous``
    dismissed: bool = False  # its anonymous identity was removed or merged away meanwhile: not enrolled again


class TrackMatcher:
    def __init__(
        self,
        gallery: Gallery,
        threshold: float,
        k: int = 5,
        min_windows: int = 3,
        enroll_after: int | None = None,
        source: str = "live",
        silhouettes: SilhouetteChannel | None = None,
    ) -> None:
        if min_windows < 1 or (enroll_after is not None and enroll_after < min_windows):
            raise ValueError("need min_windows >= 1 and enroll_after >= min_windows")
        self.gallery = gallery
        self.threshold = threshold
        self.k = k
        self.min_windows = min_windows
        self.enroll_after = enroll_after
        self.source = source
        self.silhouettes = silhouettes
        self.tracks: dict[str, _Track] = {}
        self.enroll_failures = 0
        self._skeleton_scale: tuple[int, float, float | None] | None = None  # (track means, when, scale)

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
            state = self.tracks.setdefault(track, _Track())
            if state.total is None:
                state.total = np.zeros(len(vector), np.float64)
            state.total += vector
            state.embeddings.append(vector)
            count = len(state.embeddings)
            if count >= self.min_windows:
                pending.append((row, state, count))
                pooled.append(state.total / count)
        decisions: list[Decision | None] = [None] * len(tracks)
        if not pending:
            return decisions
        fusing = self._fusing([state for _, state, _ in pending])
        k = max(self.k, FUSED_CANDIDATES) if fusing else self.k
        found = self.gallery.search_tracks_many(np.asarray(pooled, np.float32), k)
        views = self._silhouette_views([state for _, state, _ in pending]) if fusing else [None] * len(pending)
        for (row, state, count), candidates, view in zip(pending, found, views, strict=True):
            channels = None
            if self.silhouettes is not None:
                channels = {"skeleton": _view(candidates, count)}
                if view is not None:
                    distances, channels["silhouette"] = view
                    candidates = self._fused(candidates, distances)
            decisions[row] = self._decide(tracks[row], state, count, candidates[: self.k], channels)
        return decisions

    def observe_silhouettes(self, tracks: list[str], embeddings: np.ndarray) -> None:
        """Add silhouette windows' embeddings to their tracks' silhouette means; the tracks' next decisions use them."""
        vectors = np.asarray(embeddings, np.float32).reshape(len(tracks), -1)
        for track, vector in zip(tracks, vectors, strict=True):
            state = self.tracks.setdefault(track, _Track())
            if state.silhouette_total is None:
                state.silhouette_total = np.zeros(len(vector), np.float64)
            state.silhouette_total += vector
            state.silhouette_count += 1
            if self.enroll_after is not None and len(state.silhouettes) < KEPT_SILHOUETTES:
                state.silhouettes.append(vector)

    # --- fusion ---------------------------------------------------------------------------------------

    def _fusing(self, states: list[_Track]) -> bool:
        """Whether any of these decisions has silhouettes to fuse: a track with one, a gallery channel with some."""
        return (
            self.silhouettes is not None
            and any(state.silhouette_count for state in states)
            and self.gallery.channel_tracks(SILHOUETTE) > 0
        )

    def _silhouette_views(self, states: list[_Track]) -> list[tuple[dict[int, float], ChannelView] | None]:
        """Per track with silhouette windows, its silhouette distance to every (or the nearest
        ``MOST_SILHOUETTE_IDENTITIES``) identity of the channel, and the channel's own view; None without."""
        rows = [i for i, state in enumerate(states) if state.silhouette_count]
        pooled = np.asarray([states[i].silhouette_total / states[i].silhouette_count for i in rows], np.float32)
        k = min(self.gallery.channel_tracks(SILHOUETTE), MOST_SILHOUETTE_IDENTITIES)  # >= its identities
        views: list[tuple[dict[int, float], ChannelView] | None] = [None] * len(states)
        for i, found in zip(rows, self.gallery.search_channel_many(SILHOUETTE, pooled, k), strict=True):
            distances = {m.identity: m.distance for m in found}
            views[i] = (distances, _view(found, states[i].silhouette_count))
        return views

    def _fused(self, candidates: list[Match], silhouette: dict[int, float]) -> list[Match]:
        skeleton_scale, silhouette_scale = self._channel_scales()
        fused = fuse(
            [(m.identity, m.distance) for m in candidates],
            silhouette,
            self.silhouettes.weight,
            skeleton_scale,
            silhouette_scale,
        )
        return [Match(m.identity, m.distance, -1) for m in fused]

    def _channel_scales(self) -> tuple[float | None, float | None]:
        """Each channel's impostor scale (``stream.fusion``). The silhouette channel's is kept with its index
        (computed once per state). The skeleton one is measured again when the track index's size changes or after
        ``SCALE_MAX_AGE_S`` (a median over many pairs moves little with one change, and other processes' changes
        that keep the size reach it then), reading the index under its lock: a follower may change it."""
        tracks = self.gallery.tracks
        now = time.monotonic()
        cached = self._skeleton_scale
        if cached is None or cached[0] != len(tracks) or now - cached[1] > SCALE_MAX_AGE_S:
            cached = self._skeleton_scale = (len(tracks), now, tracks.impostor_scale())
        return cached[2], self.gallery.channel_scale(SILHOUETTE)

    def _decide(
        self, track: str, state: _Track, count: int, candidates: list[Match], channels: dict | None = None
    ) -> Decision:
        best = candidates[0] if candidates else None
        known = best is not None and best.distance <= self.threshold
        enrolled = False
        if state.enrolled_as is not None and not self.gallery.holds(state.enrolled_as):
            state.enrolled_as, state.dismissed = None, True  # removed or merged (the dashboard, a shell): let it be
        may_enroll = state.enrolled_as is None and not state.dismissed
        if not known and self.enroll_after is not None and count >= self.enroll_after and may_enroll:
            state.enrolled_as = self._enroll_anonymous(track, state)
            enrolled = state.enrolled_as is not None
        elif state.enrolled_as is not None and len(state.silhouettes) > state.enrolled_silhouettes:
            try:
                self._store_silhouettes(track, state)  # silhouette windows that came after its enrollment
            except InputError as err:  # its identity removed meanwhile by another process: let it be
                state.enrolled_as, state.dismissed = None, True
                log.warning("track %s: its silhouettes were not added (%s)", track, err)
        if known:
            identity = best.identity
        elif state.enrolled_as is not None:
            identity = state.enrolled_as
        else:
            identity = None
        name = self.gallery.name_of(identity) if identity is not None else None
        distance = best.distance if best else None
        return Decision(track, identity, name, distance, count, candidates, enrolled, channels)

    def end(self, track: str) -> None:
        """Forget a track that has left the scene."""
        self.tracks.pop(track, None)

    def _enroll_anonymous(self, track: str, state: _Track) -> int | None:
        """The new anonymous identity of ``track``, or None where the gallery refused (tried again later)."""
        try:
            if state.anonymous is None:
                state.anonymous = self.gallery.add_anonymous({"first_track": track})
            if state.enrolled_embeddings == 0:
                vectors = np.stack(state.embeddings)
                self.gallery.enroll(state.anonymous, vectors, [Origin(self.source, track)] * len(vectors))
                state.enrolled_embeddings = len(vectors)
        except DatabaseUnreachable as err:  # a passing outage; anything else (read-only, damaged) ends the node
            self._failed(track, err)
            return None
        self._store_silhouettes(track, state)
        return state.anonymous

    def _store_silhouettes(self, track: str, state: _Track) -> None:
        """The track's silhouette embeddings not stored yet, into its anonymous identity's silhouette channel; an
        outage leaves them for the track's next decision."""
        if self.silhouettes is None or len(state.silhouettes) <= state.enrolled_silhouettes:
            return
        vectors = np.stack(state.silhouettes[state.enrolled_silhouettes :])
        try:
            origins = [Origin(self.source, track)] * len(vectors)
            self.gallery.enroll_channel(SILHOUETTE, state.anonymous, vectors, origins, self.silhouettes.card)
        except DatabaseUnreachable as err:
            self._failed(track, err)
            return
        state.enrolled_silhouettes = len(state.silhouettes)

    def _failed(self, track: str, err: Exception) -> None:
        self.enroll_failures += 1
        if self.enroll_failures == 1 or self.enroll_failures % 100 == 0:
            failures = self.enroll_failures
            log.warning("track %s not enrolled (%d failed so far): %s; tried again later", track, failures, err)


def _view(candidates: list[Match], windows: int) -> ChannelView:
    """What a channel alone says: its nearest candidate (none in an empty gallery)."""
    best = candidates[0] if candidates else None
    return ChannelView(best.identity if best else None, best.distance if best else None, windows)
