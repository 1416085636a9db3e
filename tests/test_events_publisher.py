"""The node's PUB socket against hostile peers (oversized frames) and endpoints that leave the machine."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sensors.errors import InputError
from stream.events import MAX_EVENT_BYTES, STATUS, Publisher, exposed
from stream.subscriber import Subscriber
from tests.zmtp import MiB, hung_up, long_frame, send_until_refused, zmtp_hello, zmtp_peer

STATUS_FIELDS = {"uptime_s": 1.0, "rates": {}, "queues": {}, "dropped": {}, "tracks": []}


def rss_bytes() -> int:
    """This process's resident memory (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def received_after(publisher: Publisher, subscriber: Subscriber, deadline_s: float = 10.0) -> bool:
    """A well-behaved subscriber still gets what is published from now on."""
    start = publisher.seq
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        publisher.publish(STATUS, STATUS_FIELDS)
        event = subscriber.receive(timeout_s=0.05)
        while event is not None:
            if event.seq > start:
                return True
            event = subscriber.receive(timeout_s=0)
    return False


def assert_bounded(attack: Callable[[socket.socket], None]) -> None:
    publisher = Publisher("tcp://127.0.0.1:0", "bounded")
    subscriber = Subscriber(publisher.endpoint)
    try:
        assert received_after(publisher, subscriber)
        peer = zmtp_peer(publisher.endpoint)
        before = rss_bytes()
        attack(peer)
        closed = hung_up(peer, lambda: publisher.publish(STATUS, STATUS_FIELDS))  # its thread applies what came
        grown = rss_bytes() - before
        peer.close()
        assert grown < 64 * MiB, f"the node grew by {grown / MiB:.0f} MiB"
        assert closed, "the node kept the connection of a peer sending an oversized frame"
        assert received_after(publisher, subscriber)
    finally:
        subscriber.close()
        publisher.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_ten_mebibyte_subscription_is_refused_at_its_header():
    size = 10 * MiB
    assert_bounded(lambda peer: send_until_refused(peer, long_frame(size + 1) + b"\x01", size))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_frame_claiming_a_gibibyte_is_refused_at_its_header():
    assert_bounded(lambda peer: send_until_refused(peer, long_frame(2**30), 256 * MiB))


def test_an_event_too_big_for_subscribers_is_dropped_and_counted():
    publisher = Publisher("tcp://127.0.0.1:0", "big")
    subscriber = Subscriber(publisher.endpoint)
    try:
        assert received_after(publisher, subscriber)
        publisher.publish(STATUS, {**STATUS_FIELDS, "labels": "x" * MAX_EVENT_BYTES})
        assert publisher.dropped == 1
        publisher.publish(STATUS, STATUS_FIELDS)
        last = wait_for(lambda: (e := subscriber.receive(timeout_s=0.05)) is not None and e.seq == publisher.seq and e)
        assert last and last.missed == 1
    finally:
        subscriber.close()
        publisher.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_subscriber_hangs_up_on_a_frame_claiming_a_gibibyte():
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(20)
        subscriber = Subscriber(f"tcp://127.0.0.1:{server.getsockname()[1]}")
        try:
            peer, _ = server.accept()
            peer.sendall(zmtp_hello(b"PUB"))
            before = rss_bytes()
            send_until_refused(peer, long_frame(2**30), 256 * MiB)
            closed = hung_up(peer, lambda: None)
            grown = rss_bytes() - before
            peer.close()
            assert grown < 64 * MiB, f"the subscriber grew by {grown / MiB:.0f} MiB"
            assert closed and subscriber.receive(timeout_s=0) is None
        finally:
            subscriber.close()


def wait_for(condition: Callable[[], object], deadline_s: float = 10.0) -> object:
    """``condition()`` once it is truthy, or None at the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if result := condition():
            return result
    return None


@pytest.mark.parametrize(
    "endpoint",
    ["tcp://0.0.0.0:5557", "tcp://*:5557", "tcp://[::]:5557", "tcp://eth0:5557", "tcp://192.168.1.20:5557",
     "tcp://node.example:5557", "pgm://eth0;239.192.1.1:5555", "tcp://[::ffff:10.0.0.1]:5557"],
)  # fmt: skip
def test_endpoints_beyond_this_machine_are_exposed(endpoint: str):
    assert exposed(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    ["tcp://127.0.0.1:5557", "tcp://127.4.3.2:0", "tcp://localhost:5557", "tcp://[::1]:5557", "ipc:///tmp/gw.sock",
     "inproc://events"],
)  # fmt: skip
def test_loopback_endpoints_are_not_exposed(endpoint: str):
    assert not exposed(endpoint)


def test_binding_beyond_loopback_without_keys_is_refused_and_insecure_warns(capfd):
    Publisher("tcp://127.0.0.1:0", "quiet").close()
    assert capfd.readouterr().err == ""
    with pytest.raises(InputError, match=r"--pub tcp://0.0.0.0:0: reachable from other machines.*--insecure"):
        Publisher("tcp://0.0.0.0:0", "refused")
    Publisher("tcp://0.0.0.0:0", "loud", insecure=True).close()
    err = capfd.readouterr().err
    assert len(err.splitlines()) == 1
    assert "tcp://0.0.0.0:0" in err and "unauthenticated" in err and "unencrypted" in err
