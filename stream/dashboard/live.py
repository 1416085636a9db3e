"""The dashboard's picture of the site, kept from the events, and the changes each event makes to it.

Why changes rather than events go to the browsers: a page then applies a few kinds of small records (a track,
a track gone, a publisher's status, a timeline line) without knowing the event schema, and a change to the
same track or publisher can replace an older one not yet sent (``clients`` coalesces on ``kind`` and ``key``).

Tracks are keyed ``publisher/track`` (a track id is unique within its node). A node's status event lists every
current track, so a dashboard started late, or one that missed a track's end, is put right within a second.
A publisher that restarted (its sequence numbers began again) loses its old tracks at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START

if TYPE_CHECKING:
    from stream.subscriber import Event, Subscriber

TIMELINE = 500  # lines kept for a page that opens now
LATENCIES = 256  # decisions per publisher whose latencies are summarised


def _percentile(values: deque, q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LiveState:
    """What is happening now, for a page that opens; ``apply`` returns the changes an event made.

    Called by the feed thread (``apply``) and the server's threads (``snapshot``): one lock keeps them apart."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tracks: dict[str, dict] = {}
        self.publishers: dict[str, dict] = {}
        self.timeline: deque[dict] = deque(maxlen=TIMELINE)
        self.feed: dict = {"received": 0, "malformed": 0, "malformed_kinds": {}, "gaps": 0, "restarts": 0}
        self._latency: dict[str, tuple[deque, deque]] = {}
        self._line = 0

    # --- from the feed thread ---------------------------------------------------------------------

    def apply(self, event: Event, received_at: float | None = None) -> list[dict]:
        """The changes ``event`` makes, as records for the pages; the state takes them too."""
        now = time.time() if received_at is None else received_at
        with self.lock:
            changes: list[dict] = []
            if event.restarted:
                changes += self._restarted(event.publisher, now)
            if event.topic == IDENTITY:
                changes += self._identity(event, now)
            elif event.topic == TRACK_START:
                changes += self._start(event, now)
            elif event.topic == TRACK_END:
                changes += self._end(event, now)
            elif event.topic == STATUS:
                changes += self._status(event, now)
            return changes

    def count(self, subscriber: Subscriber) -> dict:
        """The feed's own counts (received, malformed by kind, lost, restarts) as a change record."""
        by_topic: dict[str, int] = {}
        for (_, topic), count in list(subscriber.counts.items()):
            by_topic[topic] = by_topic.get(topic, 0) + count.received
        with self.lock:
            self.feed = {
                "received": subscriber.received,
                "by_topic": by_topic,
                "malformed": subscriber.malformed,
                "malformed_kinds": dict(subscriber.malformed_kinds),
                "last_malformed": subscriber.last_malformed,
                "gaps": subscriber.gaps,
                "restarts": subscriber.restarts,
            }
            return {"kind": "feed", "key": "feed", "feed": dict(self.feed)}

    def _track(self, event: Event, now: float) -> dict:
        key = f"{event.publisher}/{event.track}"
        track = self.tracks.get(key)
        if track is None:
            sensor = event.payload.get("sensor") or str(event.track).split("/")[0]
            track = self.tracks[key] = {
                "key": key,
                "publisher": event.publisher,
                "sensor": sensor,
                "track": event.track,
                "identity": None,
                "name": None,
                "known": False,
                "distance": None,
                "threshold": None,
                "windows": 0,
                "labels": {},
                "window": None,
                "since": now,
            }
        return track

    def _identity(self, event: Event, now: float) -> list[dict]:
        p = event.payload
        track = self._track(event, now)
        changed = track["identity"] != p["identity"] or track["windows"] == 0
        track.update(
            identity=p["identity"],
            name=p["name"],
            known=p["known"],
            distance=p["distance"],
            threshold=p.get("threshold"),
            windows=p["windows"],
            channels=p.get("channels") if isinstance(p.get("channels"), dict) else None,
            updated=now,
        )
        if isinstance(p.get("window"), dict):
            track["window"] = p["window"].get("joints")
        self._latencies(event.publisher, p, now)
        publisher = self.publishers.setdefault(event.publisher, {"id": event.publisher})
        publisher["threshold"] = p.get("threshold")
        changes = [self._track_change(track)]
        if changed:
            kind = "enrolled" if p.get("enrolled") else "named" if p["known"] else "unknown"
            changes.append(self._timeline(event, kind, now))
        return changes

    def _start(self, event: Event, now: float) -> list[dict]:
        track = self._track(event, now)
        track["labels"] = event.payload.get("labels") or {}
        return [self._track_change(track), self._timeline(event, "start", now)]

    def _end(self, event: Event, now: float) -> list[dict]:
        key = f"{event.publisher}/{event.track}"
        self.tracks.pop(key, None)
        return [{"kind": "gone", "key": key}, self._timeline(event, "end", now)]

    def _status(self, event: Event, now: float) -> list[dict]:
        p = event.payload
        record = self.publishers.setdefault(event.publisher, {"id": event.publisher})
        record.update(
            uptime_s=p["uptime_s"],
            rates=p["rates"],
            queues=p["queues"],
            dropped=p["dropped"],
            finished=bool(p.get("finished")),
            t_emit=event.t_emit,
            received_at=now,
            latency=self._latency_summary(event.publisher),
        )
        changes = [{"kind": "publisher", "key": event.publisher, "publisher": dict(record)}]
        listed = set()
        for row in p["tracks"]:
            key = f"{event.publisher}/{row['track']}"
            listed.add(key)
            track = self.tracks.get(key)
            if track is None:
                fake = _Keyed(event.publisher, row["track"])
                track = self._track(fake, now)  # type: ignore[arg-type]
            fields = {k: row[k] for k in ("identity", "name", "distance", "windows")}
            fields["known"] = row["identity"] is not None
            if any(track.get(k) != v for k, v in fields.items()):
                track.update(fields)
                changes.append(self._track_change(track))
        for key in [k for k, t in self.tracks.items() if t["publisher"] == event.publisher and k not in listed]:
            del self.tracks[key]  # its end was lost, or came before this page's dashboard joined
            changes.append({"kind": "gone", "key": key})
        return changes

    def _restarted(self, publisher: str, now: float) -> list[dict]:
        gone = [key for key, track in self.tracks.items() if track["publisher"] == publisher]
        for key in gone:
            del self.tracks[key]
        self._latency.pop(publisher, None)
        self._line += 1
        line = {"n": self._line, "t": now, "kind": "restart", "publisher": publisher, "sensor": None, "track": None}
        self.timeline.append(line)
        told = {"kind": "timeline", "key": f"line-{self._line}", "line": line}
        return [*({"kind": "gone", "key": key} for key in gone), told]

    def _timeline(self, event: Event, kind: str, now: float) -> dict:
        p = event.payload
        self._line += 1
        line = {
            "n": self._line,
            "t": event.t_emit,
            "kind": kind,
            "publisher": event.publisher,
            "sensor": p.get("sensor"),
            "track": event.track,
            "identity": p.get("identity"),
            "name": p.get("name"),
            "distance": p.get("distance"),
        }
        self.timeline.append(line)
        return {"kind": "timeline", "key": f"line-{self._line}", "line": line}

    @staticmethod
    def _track_change(track: dict) -> dict:
        return {"kind": "track", "key": track["key"], "track": dict(track)}

    def _latencies(self, publisher: str, payload: dict, now: float) -> None:
        node, transport = self._latency.setdefault(publisher, (deque(maxlen=LATENCIES), deque(maxlen=LATENCIES)))
        node.append(1000 * (payload["t_emit"] - payload["t_arrival"]))
        transport.append(1000 * (now - payload["t_emit"]))

    def _latency_summary(self, publisher: str) -> dict:
        node, transport = self._latency.get(publisher, (deque(), deque()))
        return {
            "node_ms_p50": _percentile(node, 0.5),
            "node_ms_p95": _percentile(node, 0.95),
            "transport_ms_p50": _percentile(transport, 0.5),
            "decisions": len(node),
        }

    # --- from the server ---------------------------------------------------------------------------

    def snapshot(self) -> dict:
        """Everything a page needs to start: tracks, publishers, the timeline's last lines, the feed's counts."""
        with self.lock:
            return {
                "tracks": [dict(t) for t in self.tracks.values()],
                "publishers": [dict(p) for p in self.publishers.values()],
                "timeline": list(self.timeline),
                "feed": dict(self.feed),
            }


class _Keyed:
    """The two fields ``LiveState._track`` reads, for a track first heard of in a status event."""

    def __init__(self, publisher: str, track: str) -> None:
        self.publisher = publisher
        self.track = track
        self.payload: dict = {}
