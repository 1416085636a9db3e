"""``gaitwatch listen``: a live table of a node's tracks and identities (or one line per event), then what arrived
and what did not, per publisher and topic: lost while connected apart from sent before this listener joined."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START
from stream.subscriber import Event, Subscriber

if TYPE_CHECKING:
    from stream.curve import Curve


def listen(
    endpoint: str,
    topics: list[str] | None,
    plain: bool,
    timeout: float | None,
    until_finished: bool,
    curve: Curve | None = None,
) -> int:
    with Subscriber(endpoint, topics, timeout_s=timeout, curve=curve) as events:
        view = _Plain() if plain else _Table(endpoint)
        with view:
            for event in events:
                view.show(event, events)
                if until_finished and event.topic == STATUS and event.payload.get("finished"):
                    break
        print(summary(events, endpoint))
    return 0


def summary(events: Subscriber, endpoint: str) -> str:
    """Totals, then a line per publisher and topic; a listener that received nothing cannot tell what it missed."""
    malformed = f"{events.malformed} malformed"
    if events.malformed:
        malformed += f" ({', '.join(f'{n} {kind}' for kind, n in events.malformed_kinds.most_common())})"
    if not events.counts:
        return f"no events received from {endpoint}; {malformed}"
    restarts = f"; {events.restarts} publisher restarts" if events.restarts else ""
    lines = [
        f"{events.received} events; {events.gaps} lost (sequence gaps); "
        f"{events.missed_before_join} missed before joining; {malformed}{restarts}"
    ]
    for (publisher, topic), count in sorted(events.counts.items()):
        lines.append(
            f"  {publisher} {topic}: {count.received} received, {count.lost} lost while connected, "
            f"{count.before_join} missed before joining"
        )
    return "\n".join(lines)


def _distance(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class _Plain:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def show(self, event: Event, _: Subscriber) -> None:
        p = event.payload
        if event.missed_before_join:
            print(f"        {event.missed_before_join} {event.topic} events were sent before this listener joined")
        if event.missed:
            print(f"        {event.missed} {event.topic} events lost before this one")
        if event.topic == IDENTITY:
            who = (p["name"] if p["known"] else "unknown") + _silhouettes(p)
            print(
                f"{event.seq:>7} {p['track']:>14}  {who}  distance {_distance(p['distance'])}  windows {p['windows']}"
            )
        elif event.topic in (TRACK_START, TRACK_END):
            what = "start" if event.topic == TRACK_START else f"end    {p.get('name') or 'unknown'}"
            print(f"{event.seq:>7} {p['track']:>14}  {what}")
        elif event.topic == STATUS:
            rate = p["rates"].get("body_frames", 0)
            print(f"{event.seq:>7} status  {rate:.0f} body-frames/s  {len(p['tracks'])} tracks  dropped {p['dropped']}")


class _Table:
    """What a person watching a site wants on one screen: the node's health in words, the people tracked
    now with their identity, and the tracks that ended last; cut to the terminal's height, never scrolling."""

    HISTORY = 8  # ended tracks kept on screen

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.tracks: dict[str, dict] = {}
        self.ended: deque[dict] = deque(maxlen=self.HISTORY)
        self.node = "waiting for the node's first event ..."
        self.finished: str | None = None
        self.console = Console()
        self.live = Live(self._render(None), console=self.console, refresh_per_second=8, transient=False)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def show(self, event: Event, subscriber: Subscriber) -> None:
        p = event.payload
        if event.topic == STATUS:  # the full current state: a late subscriber catches up here
            self.tracks = {row["track"]: {**self.tracks.get(row["track"], {}), **row} for row in p["tracks"]}
            self.node = _node_line(event.publisher, p)
            if p.get("finished"):
                self.finished = f"node {event.publisher} finished: its sources ended"
        elif event.topic == IDENTITY:
            self.tracks[p["track"]] = {**self.tracks.get(p["track"], {}), **p}
        elif event.topic == TRACK_START:
            self.tracks[p["track"]] = {"track": p["track"], "sensor": p.get("sensor"), "windows": 0}
        elif event.topic == TRACK_END:
            self.tracks.pop(p["track"], None)
            self.ended.appendleft({**p, "ended": time.strftime("%H:%M:%S")})
        self.live.update(self._render(subscriber))

    def _render(self, subscriber: Subscriber | None) -> Group:
        height = self.console.size.height
        received = "" if subscriber is None else _received_line(subscriber)
        header = [Text(f"gaitwatch listen {self.endpoint}", style="bold"), Text(self.node), Text(received)]
        lines = sum(len(str(text).splitlines()) or 1 for text in header)
        if self.finished:
            header.append(Text(self.finished, style="bold yellow"))
            lines += 1
        history_rows = min(len(self.ended), self.HISTORY)
        room = max(1, height - lines - history_rows - 10)  # titles, rules and borders of two tables
        return Group(*header, self._now(room), self._history())

    def _now(self, room: int) -> Table:
        table = Table(title=f"tracked now: {len(self.tracks)}", title_justify="left", expand=True)
        for column in ("track", "sensor", "identity", "distance", "windows"):
            table.add_column(column, justify="right" if column in ("distance", "windows") else "left", no_wrap=True)
        rows = sorted(self.tracks.items())
        shown = rows if len(rows) <= room else rows[: room - 1]
        for key, row in shown:
            table.add_row(
                key, str(row.get("sensor") or ""), _who(row), _distance(row.get("distance")), str(row.get("windows", 0))
            )
        if len(shown) < len(rows):
            table.add_row(f"... and {len(rows) - len(shown)} more", "", "", "", "")
        return table

    def _history(self) -> Table:
        table = Table(title="ended", title_justify="left", expand=True)
        for column in ("ended", "track", "identity", "distance", "windows"):
            table.add_column(column, justify="right" if column in ("distance", "windows") else "left", no_wrap=True)
        for row in self.ended:
            table.add_row(
                row["ended"], row["track"], _who(row), _distance(row.get("distance")), str(row.get("windows", 0))
            )
        return table


def _who(row: dict) -> str:
    """A track's identity in words: its name, "unknown" after a decision, "deciding" before the first; where the
    node fused silhouettes, what the silhouette channel said."""
    if row.get("identity") is not None:
        who = str(row.get("name"))
    else:
        who = "unknown" if row.get("distance") is not None or row.get("known") is False else "deciding ..."
    return who + _silhouettes(row)


def _silhouettes(payload: dict) -> str:
    """What the silhouette channel alone said of a fused decision (nothing without one)."""
    channels = payload.get("channels") or {}
    silhouette = channels.get("silhouette")
    if silhouette is None:
        return ""
    return " (silhouettes agree)" if channels.get("agree") else f" (silhouettes: {silhouette.get('name') or '-'})"


def _node_line(publisher: str, status: dict) -> str:
    rates, queues, dropped = status.get("rates", {}), status.get("queues", {}), status.get("dropped", {})
    return (
        f"node {publisher}: {rates.get('body_frames', 0):.0f} body-frames/s, {rates.get('windows', 0):.0f} windows/s, "
        f"{rates.get('decisions', 0):.0f} decisions/s\n"
        f"  queued {queues.get('frames', 0)} frames, {queues.get('work', 0)} windows; "
        f"dropped {dropped.get('frames', 0)} frames, {dropped.get('windows', 0)} windows, "
        f"{dropped.get('events', 0)} events"
    )


def _received_line(subscriber: Subscriber) -> str:
    return (
        f"here: {subscriber.received} events received, {subscriber.gaps} lost, "
        f"{subscriber.missed_before_join} sent before this listener joined, {subscriber.malformed} malformed"
    )
