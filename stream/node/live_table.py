"""``gaitwatch listen``: a live table of a node's tracks and identities (or one line per event), then what arrived
and what did not, per publisher and topic: lost while connected apart from sent before this listener joined."""

from __future__ import annotations

import time

from rich.live import Live
from rich.table import Table

from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START
from stream.subscriber import Event, Subscriber


def listen(endpoint: str, topics: list[str] | None, plain: bool, timeout: float | None, until_finished: bool) -> int:
    with Subscriber(endpoint, topics, timeout_s=timeout) as events:
        view = _Plain() if plain else _Table()
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
    received = sum(count.received for count in events.counts.values())
    restarts = f"; {events.restarts} publisher restarts" if events.restarts else ""
    lines = [
        f"{received} events; {events.gaps} lost (sequence gaps); {events.missed_before_join} missed before joining; "
        f"{malformed}{restarts}"
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
            who = p["name"] if p["known"] else "unknown"
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
    """Tracks and their current identity, refreshed as events arrive; the status line on top."""

    def __init__(self) -> None:
        self.tracks: dict[str, dict] = {}
        self.status = "waiting for the node's first event ..."
        self.live = Live(self._render(), refresh_per_second=8, transient=False)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def show(self, event: Event, subscriber: Subscriber) -> None:
        p = event.payload
        if event.topic == STATUS:  # the full current state: a late subscriber catches up here
            self.tracks = {row["track"]: {**row, "seen": time.monotonic()} for row in p["tracks"]}
            rates = p["rates"]
            self.status = (
                f"node {event.publisher}: {rates.get('body_frames', 0):.0f} body-frames/s, "
                f"{rates.get('windows', 0):.0f} windows/s, queues {p['queues']}, dropped {p['dropped']}, "
                f"lost here {subscriber.gaps}, missed before joining {subscriber.missed_before_join}"
            )
        elif event.topic == IDENTITY:
            self.tracks[p["track"]] = {**p, "seen": time.monotonic()}
        elif event.topic == TRACK_START:
            self.tracks[p["track"]] = {"track": p["track"], "name": None, "distance": None, "windows": 0}
        elif event.topic == TRACK_END:
            self.tracks.pop(p["track"], None)
        self.live.update(self._render())

    def _render(self) -> Table:
        table = Table(title=self.status, title_justify="left")
        for column in ("track", "identity", "distance", "windows"):
            table.add_column(column, justify="right" if column in ("distance", "windows") else "left")
        for key, row in sorted(self.tracks.items()):
            name = row.get("name") if row.get("identity") is not None or row.get("known") else "unknown"
            table.add_row(key, name or "unknown", _distance(row.get("distance")), str(row.get("windows", 0)))
        return table
