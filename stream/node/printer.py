"""What ``gaitwatch replay`` prints while its node runs: tracks starting and ending, identity changes."""

from __future__ import annotations

from sensors.cli import track_label
from stream.events import IDENTITY, TRACK_END, TRACK_START


class EventPrinter:
    """Called with every published event (in the node's encoding thread); prints the ones a person wants."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._named: dict[str, str | None] = {}
        self.ended = 0
        self.expected_known = 0  # ended tracks whose labels name a person ...
        self.named_right = 0  # ... and whose last decision named that person

    def __call__(self, topic: str, payload: dict) -> None:
        if topic == TRACK_START:
            self._named[payload["track"]] = None
            where = track_label(payload["labels"])
            self._say(f"t={payload['t_capture']:8.2f}s  {payload['track']:>14}  started  ({where})")
        elif topic == IDENTITY:
            name = payload["name"] if payload["known"] else "unknown"
            if self._named.get(payload["track"]) != name:
                self._named[payload["track"]] = name
                self._say(
                    f"t={payload['t_capture']:8.2f}s  {payload['track']:>14}  -> {name}  "
                    f"(distance {payload['distance']:.3f}, {payload['windows']} windows)"
                )
        elif topic == TRACK_END:
            self.ended += 1
            person = _person(payload["labels"])
            verdict = ""
            if person is not None:
                self.expected_known += 1
                right = payload["name"] is not None and person in payload["name"].split()
                self.named_right += right
                verdict = "  right" if right else f"  WRONG (it was {person})"
            self._named.pop(payload["track"], None)
            self._say(
                f"{'':12}{payload['track']:>14}  ended    {payload['name'] or 'unknown'}, "
                f"{payload['windows']} windows{verdict}"
            )

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def summary(self, counters, publisher) -> str:
        named = ""
        if self.expected_known:
            named = f"; named right {self.named_right} of {self.expected_known} labelled tracks"
        return (
            f"done: {counters.frames} frames, {counters.body_frames} body-frames, {counters.tracks} tracks, "
            f"{counters.windows} windows, {counters.decisions} decisions, {publisher.sent} events sent{named}; "
            f"dropped {counters.dropped_frames} frames, {counters.dropped_windows} windows, {publisher.dropped} events"
        )


def _person(labels: dict) -> str | None:
    """The person a replayed track's labels name (CMU subject, KGBD person), if any."""
    for key in ("subject", "person"):
        if key in labels:
            return str(labels[key])
    return None
