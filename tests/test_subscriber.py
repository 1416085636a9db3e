"""Reading events over real loopback sockets: losses per publisher and topic, late joins, restarts,
malformed messages skipped and counted (by the library and by ``gaitwatch listen``)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import zmq

from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START, Publisher, schema
from stream.subscriber import Event, Subscriber
from tests.helpers import GAITWATCH

FIELDS = {
    IDENTITY: {
        "sensor": "s",
        "track": "s/1",
        "t_capture": 0.5,
        "t_arrival": 1.0,
        "identity": 3,
        "name": "ann",
        "known": True,
        "distance": 0.1,
        "threshold": None,
        "windows": 2,
        "candidates": [{"identity": 3, "name": "ann", "distance": 0.1}],
    },
    TRACK_START: {"sensor": "s", "track": "s/1", "t_capture": 0.5, "labels": {}},
    TRACK_END: {"sensor": "s", "track": "s/1", "t_capture": 2.5, "identity": 3, "name": "ann", "distance": 0.1,
                "windows": 4},
    STATUS: {
        "uptime_s": 1.0,
        "rates": {"frames": 30.0, "body_frames": 30.0, "windows": 1.0, "decisions": 1.0},
        "queues": {"frames": 0, "work": 0},
        "dropped": {"frames": 0, "windows": 0, "events": 0},
        "tracks": [{"track": "s/1", "identity": 3, "name": "ann", "distance": 0.1, "windows": 2}],
        "finished": False,
    },
}  # fmt: skip


def payload(topic: str, seq: int, topic_seq: int, publisher: str = "rogue", **fields: object) -> dict:
    stamp = {"schema": 2, "topic": topic, "publisher": publisher, "seq": seq, "topic_seq": topic_seq, "t_emit": 1.0}
    return {**stamp, **FIELDS[topic], **fields}


def message(topic: str, seq: int, topic_seq: int, publisher: str = "rogue", **fields: object) -> list[bytes]:
    return [topic.encode(), json.dumps(payload(topic, seq, topic_seq, publisher, **fields)).encode()]


@contextmanager
def rogue_publisher() -> Iterator[tuple[zmq.Socket, str]]:
    """A bare PUB socket on a free loopback port, sending whatever a test writes."""
    sock = zmq.Context.instance().socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield sock, f"tcp://127.0.0.1:{port}"
    finally:
        sock.close()


def until_received(send: Callable[[], None], subscriber: Subscriber, deadline_s: float = 20.0) -> Event:
    """Send probes until one arrives: the subscription has then reached the publisher."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        send()
        if (event := subscriber.receive(timeout_s=0.05)) is not None:
            return event
    raise AssertionError(f"nothing arrived within {deadline_s} s")


def connected(sock: zmq.Socket, subscriber: Subscriber) -> None:
    """Probes come from a publisher of their own, so the streams a test counts stay as it sends them."""
    probes = iter(range(1, 10**6))
    until_received(lambda: sock.send_multipart(message(STATUS, (n := next(probes)), n, "probe")), subscriber)


def received(subscriber: Subscriber, count: int) -> list[Event]:
    """The next ``count`` events other than probes."""
    events: list[Event] = []
    while len(events) < count:
        event = subscriber.receive(timeout_s=20)
        assert event is not None, f"{len(events)} of {count} events arrived"
        if event.publisher != "probe":
            events.append(event)
    return events


def test_test_payloads_follow_the_schema():
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    for topic in FIELDS:
        validator.validate(payload(topic, 1, 1))


def test_losses_are_counted_per_publisher_and_topic_apart_from_a_late_join_and_a_restart():
    with rogue_publisher() as (sock, endpoint), Subscriber(endpoint) as subscriber:
        connected(sock, subscriber)
        sent = [
            message(IDENTITY, 10, 4),  # joined late: 3 identities and ...
            message(STATUS, 11, 2),  # ... 1 status came before
            message(IDENTITY, 12, 5),
            message(IDENTITY, 15, 8),  # identities 6 and 7 (seq 13, 14) lost while connected
            message(STATUS, 16, 3),
            message(IDENTITY, 1, 1, "other"),  # another node, its own count
            message(IDENTITY, 1, 1),  # "rogue" restarted: seq back to 1 is no loss
            message(STATUS, 3, 2),  # its first status since the restart: 1 before (re)joining
        ]
        for parts in sent:
            sock.send_multipart(parts)
        events = received(subscriber, len(sent))
    assert [e.topic_seq for e in events] == [4, 2, 5, 8, 3, 1, 1, 2]
    assert [e.missed for e in events] == [0, 0, 0, 2, 0, 0, 0, 0]
    assert [e.missed_before_join for e in events] == [3, 1, 0, 0, 0, 0, 0, 1]
    probes_before = subscriber.counts["probe", STATUS].before_join  # probes sent before the subscription took
    assert subscriber.gaps == 2 and subscriber.missed_before_join == 5 + probes_before and subscriber.restarts == 1
    counts = {key: (c.received, c.lost, c.before_join) for key, c in subscriber.counts.items() if key[0] != "probe"}
    assert counts == {("rogue", IDENTITY): (4, 2, 3), ("rogue", STATUS): (3, 0, 2), ("other", IDENTITY): (1, 0, 0)}


def test_a_topic_filter_sees_no_loss_in_the_other_topics_and_counts_a_late_join():
    publisher = Publisher("tcp://127.0.0.1:0", "node")
    try:
        for _ in range(5):  # before anyone listens
            publisher.publish(IDENTITY, FIELDS[IDENTITY])
            publisher.publish(STATUS, FIELDS[STATUS])
        with Subscriber(publisher.endpoint, topics=[IDENTITY]) as subscriber:
            first = until_received(lambda: publisher.publish(IDENTITY, FIELDS[IDENTITY]), subscriber)
            assert first.topic_seq > 5 and first.missed_before_join == first.topic_seq - 1
            probes = publisher.seq - 10
            for i in range(30):
                publisher.publish(IDENTITY, FIELDS[IDENTITY])
                publisher.publish(STATUS if i % 2 else TRACK_START, FIELDS[STATUS if i % 2 else TRACK_START])
            events = [first]
            while events[-1].topic_seq < 5 + probes + 30:
                event = subscriber.receive(timeout_s=20)
                assert event is not None
                events.append(event)
    finally:
        publisher.close()
    assert {e.topic for e in events} == {IDENTITY}
    assert [e.topic_seq for e in events] == list(range(first.topic_seq, 5 + probes + 31))
    assert all(e.missed == 0 for e in events) and subscriber.gaps == 0
    count = subscriber.counts[("node", IDENTITY)]
    assert (count.received, count.lost, count.before_join) == (len(events), 0, first.topic_seq - 1)


def without(fields: dict, key: str) -> dict:
    return {k: v for k, v in fields.items() if k != key}


MALFORMED = [
    ("missing field", [IDENTITY.encode(), json.dumps(without(payload(IDENTITY, 2, 2), "track")).encode()]),
    ("wrong type", message(IDENTITY, 3, 3, distance="near")),
    ("publisher as list", message(IDENTITY, 4, 4, publisher=["rogue"])),
    ("nested 100k deep", [STATUS.encode(), b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"]),
    ("not UTF-8", [STATUS.encode(), b'{"schema":2,"topic":"\xff\xfe"}']),
    ("topic not UTF-8", [b"gaitwatch.\xff", json.dumps(payload(STATUS, 5, 5)).encode()]),
    ("not JSON", [STATUS.encode(), b"{not json"]),
    ("not an object", [STATUS.encode(), b"[1, 2, 3]"]),
    ("three parts", [*message(STATUS, 6, 6), b"extra"]),
    ("one part", [STATUS.encode()]),
    ("seq as bool", message(STATUS, True, 7)),
    ("status row mistyped", message(STATUS, 8, 8, tracks=[{"track": 5, "identity": None, "name": None,
                                                            "distance": None, "windows": 0}])),
    ("candidate without distance", message(IDENTITY, 9, 9, candidates=[{"identity": 1, "name": "bo"}])),
    ("schema unknown", message(STATUS, 10, 10, schema=99)),
]  # fmt: skip


def test_malformed_messages_are_skipped_and_counted_and_a_good_one_still_arrives():
    with rogue_publisher() as (sock, endpoint), Subscriber(endpoint) as subscriber:
        connected(sock, subscriber)
        for _, parts in MALFORMED:
            sock.send_multipart(parts)
        sock.send_multipart(message(IDENTITY, 20, 20, distance=None, known=False, name=None, identity=None))
        [good] = received(subscriber, 1)
    assert good.seq == 20 and good.distance is None
    assert subscriber.malformed == len(MALFORMED)
    assert sum(subscriber.malformed_kinds.values()) == len(MALFORMED)


def test_listen_plain_survives_malformed_events_and_reports_what_it_missed():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with rogue_publisher() as (sock, endpoint):
        command = [str(GAITWATCH), "listen", endpoint, "--plain", "--until-finished", "--timeout", "60"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        probes = iter(range(1, 10**6))
        end = time.monotonic() + 60
        while not lines and proc.poll() is None and time.monotonic() < end:  # until listen has subscribed
            n = next(probes)
            sock.send_multipart(message(STATUS, n, n, "probe", rates={}))
            time.sleep(0.05)
        for _, parts in MALFORMED:
            sock.send_multipart(parts)
        sock.send_multipart(message(IDENTITY, 7, 3, distance=None, known=False, name=None, identity=None))
        sock.send_multipart(message(IDENTITY, 9, 5))
        sock.send_multipart(message(STATUS, 10, 4, finished=True))
        proc.wait(timeout=120)
        reader.join(timeout=10)
        err = proc.stderr.read()
    out = "".join(lines)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "unknown" in out and "ann" in out
    assert f"{len(MALFORMED)} malformed" in out
    assert f"rogue {IDENTITY}: 2 received, 1 lost while connected, 2 missed before joining" in out
    assert f"rogue {STATUS}: 1 received, 0 lost while connected, 3 missed before joining" in out


def test_a_stream_of_malformed_messages_does_not_hold_off_the_timeout():
    """--timeout counts from the last well-formed event: a rogue publisher's junk must not keep a listener waiting."""
    with rogue_publisher() as (sock, endpoint), Subscriber(endpoint) as subscriber:
        connected(sock, subscriber)
        stop = threading.Event()

        def spam() -> None:
            end = time.monotonic() + 30  # a bounded loop: without the fix, the wait ends only with the junk
            while not stop.is_set() and time.monotonic() < end:
                sock.send_multipart([b"gaitwatch.identity", b"not json"])
                time.sleep(0.01)

        spammer = threading.Thread(target=spam)
        spammer.start()
        try:
            assert subscriber.receive(timeout_s=0.5) is None
            still_spamming = spammer.is_alive()  # the junk had not stopped: the timeout ended the wait
        finally:
            stop.set()
            spammer.join()
        assert still_spamming and subscriber.malformed > 0
