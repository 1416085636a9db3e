"""Reading a node's events: typed events, topic filters, sequence-gap detection.

    from stream.subscriber import Subscriber
    with Subscriber("tcp://127.0.0.1:5557", topics=["gaitwatch.identity"]) as events:
        for event in events:
            print(event.track, event.name, event.distance)

Why sequence numbers are checked per publisher: ZeroMQ PUB/SUB drops silently when a subscriber
falls behind; ``Event.missed`` says how many messages went missing just before this one (exact
when subscribed to every topic; with a topic filter, a jump counts the other topics too, so only
``Subscriber.gaps`` across all topics is meaningful then).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from sensors.errors import InputError
from stream.events import PREFIX, SCHEMA_VERSION


@dataclass(frozen=True)
class Event:
    topic: str
    publisher: str
    seq: int
    t_emit: float
    payload: dict  # the whole JSON payload, topic-specific fields included
    missed: int = 0  # messages of this publisher lost just before this one (all topics subscribed)

    @property
    def track(self) -> str | None:
        return self.payload.get("track")

    @property
    def identity(self) -> int | None:
        return self.payload.get("identity")

    @property
    def name(self) -> str | None:
        return self.payload.get("name")

    @property
    def distance(self) -> float | None:
        return self.payload.get("distance")


class MalformedEvent(InputError):
    """A message that is not a gaitwatch event of a schema version this library reads."""


def parse(frames: list[bytes], last_seq: dict[str, int] | None = None) -> Event:
    """One multipart message -> Event; MalformedEvent naming what is wrong."""
    if len(frames) != 2:
        raise MalformedEvent(f"expected 2 message parts [topic, payload], got {len(frames)}")
    try:
        topic = frames[0].decode()
        payload = json.loads(frames[1])
    except (UnicodeDecodeError, ValueError) as err:
        raise MalformedEvent(f"unreadable message on topic {frames[0][:40]!r}: {err}") from None
    if not isinstance(payload, dict):
        raise MalformedEvent(f"{topic}: payload is {type(payload).__name__}, expected a JSON object")
    if payload.get("schema") != SCHEMA_VERSION:
        raise MalformedEvent(f"{topic}: schema version {payload.get('schema')!r}, this library reads {SCHEMA_VERSION}")
    missing = [k for k in ("publisher", "seq", "t_emit") if k not in payload]
    if missing or not isinstance(payload.get("seq"), int):
        raise MalformedEvent(f"{topic}: payload lacks {', '.join(missing) or 'an integer seq'}")
    missed = 0
    if last_seq is not None:
        previous = last_seq.get(payload["publisher"])
        if previous is not None and payload["seq"] > previous + 1:
            missed = payload["seq"] - previous - 1
        last_seq[payload["publisher"]] = payload["seq"]
    return Event(topic, payload["publisher"], payload["seq"], payload["t_emit"], payload, missed)


class Subscriber:
    def __init__(self, endpoint: str, topics: list[str] | None = None, timeout_s: float | None = None) -> None:
        """Subscribe to ``topics`` (prefixes; default: everything under the gaitwatch prefix).

        ``timeout_s``: iteration stops when nothing arrives for that long (None: wait forever)."""
        import zmq

        self._zmq = zmq
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, 100_000)
        self.socket.setsockopt(zmq.LINGER, 0)
        for topic in topics or [PREFIX]:
            self.socket.setsockopt_string(zmq.SUBSCRIBE, topic)
        try:
            self.socket.connect(endpoint)
        except zmq.ZMQError as err:
            self.socket.close()
            raise InputError(f"{endpoint}: cannot connect ({err})") from None
        self.timeout_s = timeout_s
        self.gaps = 0  # messages known lost, all publishers
        self.malformed = 0
        self._last_seq: dict[str, int] = {}

    def receive(self, timeout_s: float | None = None) -> Event | None:
        """The next well-formed event, or None after ``timeout_s`` without one; malformed ones are counted, skipped."""
        wait = None if timeout_s is None else int(timeout_s * 1000)
        while self.socket.poll(wait):
            try:
                event = parse(self.socket.recv_multipart(), self._last_seq)
            except MalformedEvent:
                self.malformed += 1
                continue
            self.gaps += event.missed
            return event
        return None

    def __iter__(self) -> Iterator[Event]:
        while (event := self.receive(self.timeout_s)) is not None:
            yield event

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
