"""``gaitwatch listen``: a live table of a node's tracks and identities (or one line per event)."""

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
        print(f"{view.count} events; {events.gaps} lost (sequence gaps); {events.malformed} malformed")
    return 0


class _Plain:
    count = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def show(self, event: Event, _: Subscriber) -> None:
        self.count += 1
        p = event.payload
        if event.topic == IDENTITY:
            who = p["name"] if p["known"] else "unknown"
            print(f"{event.seq:>7} {p['track']:>14}  {who}  distance {p['distance']:.3f}  windows {p['windows']}")
        elif event.topic in (TRACK_START, TRACK_END):
            what = "start" if event.topic == TRACK_START else f"end    {p.get('name') or 'unknown'}"
            print(f"{event.seq:>7} {p['track']:>14}  {what}")
        elif event.topic == STATUS:
            rates = p["rates"]
            print(
                f"{event.seq:>7} status  {rates['body_frames']:.0f} body-frames/s  {len(p['tracks'])} tracks  "
                f"dropped {p['dropped']}"
            )
        if event.missed:
            print(f"        {event.missed} events lost before this one")


class _Table:
    """Tracks and their current identity, refreshed as events arrive; the status line on top."""

    count = 0

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
        self.count += 1
        p = event.payload
        if event.topic == STATUS:  # the full current state: a late subscriber catches up here
            self.tracks = {row["track"]: {**row, "seen": time.monotonic()} for row in p["tracks"]}
            rates = p["rates"]
            self.status = (
                f"node {event.publisher}: {rates['body_frames']:.0f} body-frames/s, {rates['windows']:.0f} windows/s, "
                f"queues {p['queues']}, dropped {p['dropped']}, lost here {subscriber.gaps}"
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
            distance = "" if row.get("distance") is None else f"{row['distance']:.3f}"
            name = row.get("name") if row.get("identity") is not None or row.get("known") else "unknown"
            table.add_row(key, name or "unknown", distance, str(row.get("windows", 0)))
        return table
