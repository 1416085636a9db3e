"""Reading a node's events: typed events, topic filters, losses counted per publisher and topic.

    from stream.subscriber import Subscriber
    with Subscriber("tcp://127.0.0.1:5557", topics=["gaitwatch.identity"]) as events:
        for event in events:
            print(event.track, event.name, event.distance)

Why counts per publisher and topic: ZeroMQ PUB/SUB drops silently when a subscriber falls behind, and
a subscriber never sees what was sent before it joined. Each payload's ``topic_seq`` counts its
publisher's messages of that topic, so a jump in it is a loss while connected (``Event.missed``),
exact with a topic filter too, and the first one seen tells how many came before the join
(``Event.missed_before_join``). ``seq`` or ``topic_seq`` going back is a restarted publisher, no loss.

Why every message is checked before it is handed on: the socket reads whatever a publisher sends.
A message that is not a well-formed event (each known topic's fields and their types as
``stream/events.schema.json`` says) is skipped and counted by kind, never raised out of iteration.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sensors.errors import InputError
from stream.events import MAX_EVENT_BYTES, PREFIX, schema

if TYPE_CHECKING:
    from stream.curve import Curve

READABLE_VERSIONS = (1, 2)  # version 1 has no topic_seq: its losses are counted over all topics, as before


@dataclass(frozen=True)
class Event:
    topic: str
    publisher: str
    seq: int
    t_emit: float
    payload: dict  # the whole JSON payload, topic-specific fields included
    missed: int = 0  # this publisher's events of this topic lost while connected, just before this one
    topic_seq: int | None = None  # None: a version-1 payload
    missed_before_join: int = 0  # first seen of its publisher and topic: how many of them came before
    restarted: bool = False  # its publisher started again (sequence numbers back to the start) before this one

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


@dataclass
class TopicCount:
    """One publisher's events of one topic, as this subscriber saw them."""

    received: int = 0
    lost: int = 0  # while connected: jumps in topic_seq
    before_join: int = 0  # sent before this subscriber joined (or before the publisher restarted)


class MalformedEvent(InputError):
    """A message that is not a gaitwatch event of a schema version this library reads.

    ``kind`` is one of a few words, so that counts by kind stay few: wrong part count, not UTF-8, not JSON,
    too deeply nested, not an object, unknown schema version, missing field, wrong type, bad value."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass
class _Sequences:
    """The last sequence numbers seen of one publisher: its ``seq``, and per topic its ``topic_seq``."""

    seq: int
    topics: dict[str | None, int] = field(default_factory=dict)  # None: version 1, all topics


def parse(frames: list[bytes], seen: dict[str, _Sequences] | None = None) -> Event:
    """One multipart message -> Event, its losses counted against ``seen``; MalformedEvent naming what is wrong."""
    if len(frames) != 2:
        raise MalformedEvent("wrong part count", f"expected 2 message parts [topic, payload], got {len(frames)}")
    topic, payload = _decode(frames)
    _check_fields(topic, payload)
    publisher, seq, topic_seq = payload["publisher"], payload["seq"], payload.get("topic_seq")
    missed, before_join, restarted = 0, 0, False
    if seen is not None:
        missed, before_join, restarted = _count(seen, publisher, seq, topic, topic_seq)
    return Event(topic, publisher, seq, payload["t_emit"], payload, missed, topic_seq, before_join, restarted)


def _decode(frames: list[bytes]) -> tuple[str, dict]:
    try:
        topic = frames[0].decode()
        text = frames[1].decode()
    except UnicodeDecodeError as err:
        raise MalformedEvent("not UTF-8", f"unreadable message on topic {frames[0][:40]!r}: {err}") from None
    try:
        payload = json.loads(text)
    except ValueError as err:
        raise MalformedEvent("not JSON", f"unreadable message on topic {topic[:40]!r}: {err}") from None
    except RecursionError:
        raise MalformedEvent(
            "too deeply nested", f"unreadable message on topic {topic[:40]!r}: nested too deep"
        ) from None
    if not isinstance(payload, dict):
        raise MalformedEvent("not an object", f"{topic}: payload is {type(payload).__name__}, expected a JSON object")
    return topic, payload


def _envelopes() -> dict[int, dict]:
    """Per schema version, the rule for the fields every payload has (from the shipped schema)."""
    whole = schema()
    properties = {k: v for k, v in whole["properties"].items() if k != "schema"}
    version_1 = [k for k in whole["required"] if k not in ("schema", "topic_seq")]
    version_2 = [k for k in whole["required"] if k != "schema"]
    return {1: {"required": version_1, "properties": properties}, 2: {"required": version_2, "properties": properties}}


def _topic_rules() -> dict[str, dict]:
    """Per topic, the rule for its own fields: the ``then`` of the shipped schema's branch for it."""
    rules = {}
    for branch in schema()["allOf"]:
        condition = branch["if"]["properties"]["topic"]
        for topic in condition.get("enum", [condition.get("const")]):
            rules[topic] = branch["then"]
    return rules


_ENVELOPES = _envelopes()
_TOPIC_RULES = _topic_rules()


def _check_fields(topic: str, payload: dict) -> None:
    """The envelope of the payload's version, then the fields of its topic (a topic this library does not know:
    the envelope only). The message's topic decides, since it is what a subscriber filters and dispatches on."""
    version = payload.get("schema")
    if not _is(version, "integer") or version not in READABLE_VERSIONS:
        raise MalformedEvent(
            "unknown schema version", f"{topic}: schema version {version!r}, this library reads {READABLE_VERSIONS}"
        )
    _check(payload, _ENVELOPES[version], f"{topic}: payload")
    if topic in _TOPIC_RULES:
        _check(payload, _TOPIC_RULES[topic], f"{topic}: payload")


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: object, kind: str) -> bool:
    if kind in ("integer", "number"):  # JSON true is no number
        number = int if kind == "integer" else (int, float)
        return isinstance(value, number) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _check(value: object, rule: dict, where: str) -> None:
    """MalformedEvent unless ``value`` meets ``rule``: the JSON Schema keywords the shipped schema uses for its
    fields (type, enum, minimum, required, properties, additionalProperties, items)."""
    kinds = rule.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds is not None and not any(_is(value, kind) for kind in kinds):
        raise MalformedEvent("wrong type", f"{where} is {type(value).__name__}, expected {' or '.join(kinds)}")
    if "enum" in rule and value not in rule["enum"]:
        raise MalformedEvent("bad value", f"{where} is {value!r}, expected one of {rule['enum']}")
    if "minimum" in rule and _is(value, "number") and value < rule["minimum"]:
        raise MalformedEvent("bad value", f"{where} is {value}, expected at least {rule['minimum']}")
    if isinstance(value, dict):
        _check_object(value, rule, where)
    elif isinstance(value, list) and "items" in rule:
        quick = _quick(rule["items"])
        for i, item in enumerate(value):
            if quick is None or not quick(item):
                _check(item, rule["items"], f"{where}[{i}]")


# JSON values by exact type: json.loads makes no subclasses, and True is no number
_EXACT = {"integer": (int,), "number": (int, float), "string": (str,), "boolean": (bool,), "null": (type(None),)}
_QUICK: dict[int, Callable[[object], bool] | None] = {}


def _quick(rule: dict) -> Callable[[object], bool] | None:
    """A fast yes/no check of a rule made of "type" and "items" alone (a skeleton's nested lists of numbers), or
    None for any other rule. Why: the identity event's window holds 360 numbers; checking each through
    ``_check`` cost a subscriber 0.6 ms an event. A no is checked again by ``_check``, which says what is wrong."""
    key = id(rule)
    if key in _QUICK:
        return _QUICK[key]
    kinds = rule.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    check = None
    if not set(rule) - {"type", "description", "items"} and kinds:
        if kinds == ["array"] and "items" in rule:
            inner = _quick(rule["items"])
            leaf = _QUICK_TYPES.get(id(rule["items"]))
            if leaf is not None:
                check = lambda v: type(v) is list and all(type(x) in leaf for x in v)  # noqa: E731
            elif inner is not None:
                check = lambda v: type(v) is list and all(inner(x) for x in v)  # noqa: E731
        elif "items" not in rule and all(kind in _EXACT for kind in kinds):
            types = _QUICK_TYPES[key] = tuple(t for kind in kinds for t in _EXACT[kind])
            check = lambda v: type(v) in types  # noqa: E731
    _QUICK[key] = check
    return check


_QUICK_TYPES: dict[int, tuple[type, ...]] = {}  # the types of each leaf rule ``_quick`` has seen


def _check_object(value: dict, rule: dict, where: str) -> None:
    missing = [key for key in rule.get("required", ()) if key not in value]
    if missing:
        raise MalformedEvent("missing field", f"{where} lacks {', '.join(missing)}")
    properties = rule.get("properties", {})
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], f"{where}.{key}")
        elif isinstance(rule.get("additionalProperties"), dict):
            _check(item, rule["additionalProperties"], f"{where}.{key}")


def _count(
    seen: dict[str, _Sequences], publisher: str, seq: int, topic: str, topic_seq: int | None
) -> tuple[int, int, bool]:
    """(lost just before, sent before joining, publisher restarted) of one message; ``seen`` takes its numbers."""
    stream, number = (topic, topic_seq) if topic_seq is not None else (None, seq)
    last = seen.get(publisher)
    restarted = last is not None and (seq <= last.seq or number <= last.topics.get(stream, 0))
    if last is None or restarted:
        last = seen[publisher] = _Sequences(seq)
    last.seq = seq
    previous = last.topics.get(stream)
    last.topics[stream] = number
    if previous is None:
        return 0, number - 1, restarted
    return number - previous - 1, 0, restarted


class Subscriber:
    def __init__(
        self,
        endpoint: str,
        topics: list[str] | None = None,
        timeout_s: float | None = None,
        curve: Curve | None = None,
    ) -> None:
        """Subscribe to ``topics`` (prefixes; default: everything under the gaitwatch prefix) of a node's ``--pub``
        or a hub's output.

        ``timeout_s``: iteration stops when nothing arrives for that long (None: wait forever). ``curve``: this
        subscriber's keys and the server's public key (``stream.curve.Curve``) where the server requires CURVE;
        with a key the server does not accept, nothing arrives."""
        import zmq

        from stream.curve import connect_as_client

        self._zmq = zmq
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, 100_000)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_EVENT_BYTES)  # a bigger frame: the connection closes at its header
        self.socket.setsockopt(zmq.LINGER, 0)
        for topic in topics or [PREFIX]:
            self.socket.setsockopt_string(zmq.SUBSCRIBE, topic)
        try:
            if curve is not None:
                connect_as_client(self.socket, curve)
            self.socket.connect(endpoint)
        except InputError:
            self.socket.close()
            raise
        except zmq.ZMQError as err:
            self.socket.close()
            raise InputError(f"{endpoint}: cannot connect ({err})") from None
        self.timeout_s = timeout_s
        self.counts: dict[tuple[str, str], TopicCount] = {}  # per (publisher, topic)
        self.restarts = 0
        self.malformed_kinds: Counter[str] = Counter()
        self.last_malformed: str | None = None  # the reason the last malformed message was skipped
        self._seen: dict[str, _Sequences] = {}

    @property
    def received(self) -> int:
        """Well-formed events received, all publishers and topics."""
        return sum(count.received for count in self.counts.values())

    @property
    def gaps(self) -> int:
        """Events known lost while connected, all publishers and topics."""
        return sum(count.lost for count in self.counts.values())

    @property
    def missed_before_join(self) -> int:
        """Events sent before this subscriber joined (or its publisher restarted), all publishers and topics."""
        return sum(count.before_join for count in self.counts.values())

    @property
    def malformed(self) -> int:
        return sum(self.malformed_kinds.values())

    def receive(self, timeout_s: float | None = None) -> Event | None:
        """The next well-formed event, or None after ``timeout_s`` without one; malformed ones are counted, skipped."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s  # malformed ones do not extend it
        while self.socket.poll(None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))):
            try:
                event = parse(self.socket.recv_multipart(), self._seen)
            except MalformedEvent as err:
                self.malformed_kinds[err.kind] += 1
                self.last_malformed = str(err)
                continue
            self._tally(event)
            return event
        return None

    def _tally(self, event: Event) -> None:
        count = self.counts.setdefault((event.publisher, event.topic), TopicCount())
        count.received += 1
        count.lost += event.missed
        count.before_join += event.missed_before_join
        self.restarts += event.restarted

    def __iter__(self) -> Iterator[Event]:
        while (event := self.receive(self.timeout_s)) is not None:
            yield event

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
