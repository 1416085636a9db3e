"""What ``gaitwatch replay`` prints while its node runs: tracks starting and ending, identity changes, a score.

Replayed files often carry labels (KGBD person, CMU subject): each ended track is then scored as an
open-set answer. A person the gallery holds must be named as themselves; a person it does not hold must
be "unknown", or the anonymous identity the node enrolled from that person (``--enroll-after``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream.events import IDENTITY, TRACK_END, TRACK_START
from stream.labels import person_of, track_name


@dataclass
class OpenSetScore:
    """Ended labelled tracks by what was answered: enrolled people (right, wrong, unknown) and others."""

    enrolled_right: int = 0
    enrolled_wrong: int = 0
    enrolled_unknown: int = 0
    stranger_unknown: int = 0  # rightly "unknown" (or recognised as the anonymous identity made of them)
    stranger_named: int = 0  # a person the gallery does not hold, named as someone who is in it

    @property
    def scored(self) -> int:
        return sum(vars(self).values())

    def line(self) -> str:
        enrolled = self.enrolled_right + self.enrolled_wrong + self.enrolled_unknown
        strangers = self.stranger_unknown + self.stranger_named
        parts = []
        if enrolled:
            parts.append(
                f"enrolled people named right {self.enrolled_right} of {enrolled} tracks "
                f"({self.enrolled_wrong} named as someone else, {self.enrolled_unknown} unknown)"
            )
        if strangers:
            parts.append(
                f"people not enrolled rightly unknown {self.stranger_unknown} of {strangers} tracks "
                f"({self.stranger_named} named as someone)"
            )
        return "; ".join(parts)


class EventPrinter:
    """Called with every published event (in the node's encoding thread); prints the ones a person wants.

    ``people`` reads, per gallery identity, the person it holds (``stream.labels.person_of_identity``); it is
    called once, at the first labelled track, so a live camera (no labels) never reads the whole gallery."""

    def __init__(self, quiet: bool = False, people: Callable[[], dict[int, str]] = dict) -> None:
        self.quiet = quiet
        self._read_people = people
        self._people: dict[int, str] | None = None
        self._enrolled: set[str] = set()  # the people the gallery holds: one lookup per labelled track
        self._named: dict[str, str | None] = {}
        self._labelled: dict[str, tuple[str, bool]] = {}  # open labelled track -> (person, in the gallery at start)
        self.ended = 0
        self.score = OpenSetScore()

    def __call__(self, topic: str, payload: dict) -> None:
        if topic == TRACK_START:
            self._start(payload)
        elif topic == IDENTITY:
            self._identity(payload)
        elif topic == TRACK_END:
            self._end(payload)

    def _start(self, payload: dict) -> None:
        track = payload["track"]
        self._named[track] = None
        person = person_of(payload["labels"])
        if person is not None:
            self._labelled[track] = (person, person in self._enrolled_people())
        self._say(f"t={payload['t_capture']:8.2f}s  {track:>14}  started  ({track_name(payload['labels'])})")

    def _identity(self, payload: dict) -> None:
        track = payload["track"]
        if payload.get("enrolled") and payload["identity"] is not None and track in self._labelled:
            person = self._labelled[track][0]  # an anonymous identity made of them
            self._person_map()[payload["identity"]] = person
            self._enrolled.add(person)
        name = payload["name"] if payload["known"] else "unknown"
        if self._named.get(track) != name:
            self._named[track] = name
            self._say(
                f"t={payload['t_capture']:8.2f}s  {track:>14}  -> {name}  "
                f"(distance {_distance(payload['distance'])}, {payload['windows']} windows{_channels(payload)})"
            )

    def _end(self, payload: dict) -> None:
        track = payload["track"]
        self.ended += 1
        labelled = self._labelled.pop(track, None)
        verdict = "" if labelled is None else self._verdict(*labelled, payload["identity"])
        self._named.pop(track, None)
        self._say(f"{'':12}{track:>14}  ended    {payload['name'] or 'unknown'}, {payload['windows']} windows{verdict}")

    def _verdict(self, person: str, enrolled: bool, identity: int | None) -> str:
        named = None if identity is None else self._person_map().get(identity)
        score = self.score
        if enrolled:
            if named == person:
                score.enrolled_right += 1
                return "  right"
            if identity is None:
                score.enrolled_unknown += 1
                return f"  MISSED (it was {person}, who is enrolled)"
            score.enrolled_wrong += 1
            return f"  WRONG (it was {person})"
        if identity is None or named == person:
            score.stranger_unknown += 1
            return "  right (not enrolled)" if identity is None else "  right (not enrolled: enrolled now, anonymously)"
        score.stranger_named += 1
        return f"  WRONG (it was {person}, who is not enrolled)"

    def _person_map(self) -> dict[int, str]:
        if self._people is None:
            self._people = dict(self._read_people())
            self._enrolled = set(self._people.values())
        return self._people

    def _enrolled_people(self) -> set[str]:
        self._person_map()
        return self._enrolled

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def summary(self, counters, publisher) -> str:
        scored = f"; {self.score.line()}" if self.score.scored else ""
        return (
            f"done: {counters.frames} frames, {counters.body_frames} body-frames, {counters.tracks} tracks, "
            f"{counters.windows} windows{_silhouette_windows(counters)}, {counters.decisions} decisions, "
            f"{publisher.sent} events sent{scored}; "
            f"dropped {counters.dropped_frames} frames, {counters.dropped_windows} windows, {publisher.dropped} events"
        )


def _distance(distance: float | None) -> str:
    """A decision's distance; none where there was nothing to compare with (an empty gallery)."""
    return "-" if distance is None else f"{distance:.3f}"


def _channels(payload: dict) -> str:
    """Where the decision fused two channels: what the silhouette channel alone said."""
    silhouette = (payload.get("channels") or {}).get("silhouette")
    if silhouette is None:
        return ""
    agree = "agrees" if payload["channels"]["agree"] else f"says {silhouette['name'] or 'nobody'}"
    return f"; fused, silhouettes {agree} at {_distance(silhouette['distance'])}"


def _silhouette_windows(counters) -> str:
    return f" (+{counters.silhouette_windows} of silhouettes)" if counters.silhouette_windows else ""
