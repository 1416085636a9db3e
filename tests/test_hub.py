"""The site hub over real sockets: events of many nodes to one address, CURVE allow-lists, bounds, restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sensors.errors import InputError
from stream.curve import Curve
from stream.events import IDENTITY, STATUS, Publisher
from stream.hub import Hub
from stream.keys import create_key_pair
from stream.subscriber import Subscriber
from tests.helpers import GAITWATCH, assert_one_line_error, gaitwatch
from tests.zmtp import MiB, hung_up, long_frame, send_until_refused, zmtp_peer

STATUS_FIELDS = {"uptime_s": 1.0, "rates": {}, "queues": {}, "dropped": {}, "tracks": []}
ANY = "tcp://127.0.0.1:0"


def publish_until(publisher: Publisher, subscriber: Subscriber, wanted: int, deadline_s: float = 30.0) -> set[int]:
    """Publish status events until ``subscriber`` got ``wanted`` of them (or the deadline); the seqs it got."""
    got: set[int] = set()
    end = time.monotonic() + deadline_s
    while len(got) < wanted and time.monotonic() < end:
        publisher.publish(STATUS, STATUS_FIELDS)
        while (event := subscriber.receive(timeout_s=0.02)) is not None:
            if event.publisher == publisher.publisher_id:
                got.add(event.seq)
    return got


class Keys:
    """A site's key pairs in one folder, and allow-list folders of their public keys."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def pair(self, name: str) -> tuple[Path, Path]:
        return create_key_pair(self.root / name, name)

    def allow(self, folder: str, *names: str) -> Path:
        allowed = self.root / folder
        allowed.mkdir()
        for name in names:
            (allowed / f"{name}.key").write_bytes((self.root / name / f"{name}.key").read_bytes())
        return allowed

    def client(self, name: str, server: str) -> Curve:
        return Curve.of(self.root / name / f"{name}.key_secret", server_key=self.root / server / f"{server}.key")


@pytest.fixture
def site_keys(tmp_path: Path) -> Keys:
    keys = Keys(tmp_path / "keys")
    for name in ("hub", "door", "dashboard", "intruder"):
        keys.pair(name)
    return keys


def secured_hub(keys: Keys) -> Hub:
    secret = keys.root / "hub" / "hub.key_secret"
    nodes = Curve.of(secret, allow=keys.allow("nodes", "door"))
    subscribers = Curve.of(secret, allow=keys.allow("subscribers", "dashboard"))
    return Hub(ANY, ANY, nodes, subscribers).start()


def test_events_of_two_nodes_reach_a_subscriber_at_one_address():
    hub = Hub(ANY, ANY).start()
    doors = [Publisher(hub.input_endpoint, name, to_hub=True) for name in ("door-a", "door-b")]
    try:
        with Subscriber(hub.output_endpoint) as subscriber:
            for door in doors:
                assert len(publish_until(door, subscriber, 3)) >= 3, f"nothing of {door.publisher_id} came through"
            counts = subscriber.counts
        assert {publisher for publisher, _ in counts} == {"door-a", "door-b"}
        stats = hub.statistics()
        assert stats.frames_in >= 12 and stats.frames_out >= 12  # two frames an event
    finally:
        for door in doors:
            door.close()
        hub.stop()


def test_with_curve_only_allowed_subscribers_read_and_only_allowed_nodes_publish(site_keys: Keys):
    hub = secured_hub(site_keys)
    door = Publisher(hub.input_endpoint, "door", to_hub=True, curve=site_keys.client("door", "hub"))
    forger = Publisher(hub.input_endpoint, "forger", to_hub=True, curve=site_keys.client("dashboard", "hub"))
    plain_forger = Publisher(hub.input_endpoint, "plain-forger", to_hub=True)
    outsiders = [
        Subscriber(hub.output_endpoint, curve=site_keys.client("intruder", "hub")),  # a key not on the list
        Subscriber(hub.output_endpoint, curve=site_keys.client("door", "hub")),  # a node's key: nodes do not read
        Subscriber(hub.output_endpoint),  # no key at all
    ]
    try:
        with Subscriber(hub.output_endpoint, curve=site_keys.client("dashboard", "hub")) as dashboard:
            assert len(publish_until(door, dashboard, 5)) >= 5
            for _ in range(50):
                forger.publish(IDENTITY, {})
                plain_forger.publish(IDENTITY, {})
                door.publish(STATUS, STATUS_FIELDS)
            last_seq = door.seq
            while (event := dashboard.receive(timeout_s=2)) is not None and event.seq < last_seq:
                pass
            assert event is not None and event.seq == last_seq  # the door's events all came, in order
            assert {publisher for publisher, _ in dashboard.counts} == {"door"}
            assert dashboard.malformed == 0  # the forgers' events (malformed on purpose) never arrived
        for outsider in outsiders:
            assert outsider.receive(timeout_s=0.5) is None
            assert outsider.received == 0 and outsider.malformed == 0
    finally:
        for peer in [door, forger, plain_forger, *outsiders]:
            peer.close()
        hub.stop()


def test_a_subscriber_with_a_wrong_server_key_gets_nothing(site_keys: Keys):
    hub = secured_hub(site_keys)
    door = Publisher(hub.input_endpoint, "door", to_hub=True, curve=site_keys.client("door", "hub"))
    fooled = Subscriber(hub.output_endpoint, curve=site_keys.client("dashboard", "intruder"))
    try:
        with Subscriber(hub.output_endpoint, curve=site_keys.client("dashboard", "hub")) as dashboard:
            assert publish_until(door, dashboard, 3)
        assert fooled.receive(timeout_s=0.5) is None
    finally:
        door.close()
        fooled.close()
        hub.stop()


def test_curve_options_that_do_not_fit_are_one_clear_error(site_keys: Keys, tmp_path: Path):
    public = site_keys.root / "hub" / "hub.key"
    with pytest.raises(InputError, match="a public key file"):
        Curve.of(public)
    with pytest.raises(InputError, match="need --keys"):
        Curve.of(None, allow=site_keys.root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no \.key files"):
        Curve.of(site_keys.root / "hub" / "hub.key_secret", allow=empty)
    with pytest.raises(InputError, match="needs --allow"):
        Publisher(ANY, "door", curve=Curve.of(site_keys.root / "door" / "door.key_secret"))
    with pytest.raises(InputError, match="needs --server-key"):
        Subscriber(ANY, curve=Curve.of(site_keys.root / "door" / "door.key_secret"))


def test_a_node_sends_to_a_hub_beyond_loopback_only_with_keys_or_insecure(capfd):
    with pytest.raises(InputError, match=r"--hub tcp://192\.0\.2\.1:5558: events would cross the network"):
        Publisher("tcp://192.0.2.1:5558", "door", to_hub=True)
    Publisher("tcp://192.0.2.1:5558", "door", to_hub=True, insecure=True).close()
    assert "unencrypted" in capfd.readouterr().err


def test_the_hub_refuses_to_bind_beyond_loopback_without_keys():
    assert_one_line_error(gaitwatch("hub", "--in", "tcp://0.0.0.0:0", ok=False), "--in tcp://0.0.0.0:0", "--insecure")
    assert_one_line_error(gaitwatch("hub", "--out", "tcp://*:0", ok=False), "--out tcp://*:0", "--keys")
    ran = gaitwatch("hub", "--keys", "missing.key_secret", ok=False)
    assert_one_line_error(ran, "missing.key_secret")
    assert_one_line_error(gaitwatch("listen", "--allow", ".", ok=False), "--allow", "accepts nobody")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def hub_process(inputs: str, outputs: str, *extra: str) -> Iterator[subprocess.Popen]:
    """``gaitwatch hub`` as its own process, once it says it is serving; terminated on the way out."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [str(GAITWATCH), "hub", "--in", inputs, "--out", outputs, *extra]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith("hub: nodes publish to"), (first, proc.stderr.read() if proc.poll() else "")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def rss_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/statm")
def test_the_hub_refuses_a_100_megabyte_message_without_growing_and_keeps_serving():
    inputs, outputs = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    with hub_process(inputs, outputs) as hub, Subscriber(outputs) as subscriber:
        door = Publisher(inputs, "door", to_hub=True)
        try:
            assert publish_until(door, subscriber, 3)
            before = rss_of(hub.pid)
            peer = zmtp_peer(inputs, b"PUB")
            send_until_refused(peer, long_frame(100 * MiB), 100 * MiB)
            closed = hung_up(peer, lambda: None)
            grown = rss_of(hub.pid) - before
            peer.close()
            assert closed, "the hub kept the connection of a peer sending a 100 MB frame"
            assert grown < 32 * MiB, f"the hub grew by {grown / MiB:.0f} MiB"
            assert publish_until(door, subscriber, 3), "the hub stopped serving after the attack"
        finally:
            door.close()
    assert hub.returncode == 128 + signal.SIGTERM
    assert "events in" in hub.stdout.read()


def test_a_restarted_hub_is_rejoined_by_nodes_and_subscribers_count_the_gap():
    inputs, outputs = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    door = Publisher(inputs, "door", to_hub=True)
    stop = threading.Event()

    def keep_publishing() -> None:  # the node's own pace, whatever the hub does
        while not stop.is_set():
            door.publish(STATUS, STATUS_FIELDS)
            time.sleep(0.005)

    try:
        with Subscriber(outputs) as subscriber:
            with hub_process(inputs, outputs):
                assert publish_until(door, subscriber, 3)
            publisher = threading.Thread(target=keep_publishing)
            publisher.start()
            time.sleep(0.5)  # events published while no hub runs: lost
            with hub_process(inputs, outputs):
                end = time.monotonic() + 60
                while subscriber.gaps == 0 and time.monotonic() < end:
                    subscriber.receive(timeout_s=0.1)
                stop.set()
                publisher.join()
            assert subscriber.gaps > 0, "the events lost while the hub was down were not counted"
            assert subscriber.restarts == 0  # the node never restarted: its sequence went on
    finally:
        stop.set()
        door.close()


def test_a_node_killed_mid_stream_leaves_the_hub_and_the_other_nodes_serving():
    inputs, outputs = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    with hub_process(inputs, outputs) as hub, Subscriber(outputs) as subscriber:
        nodes = {
            name: subprocess.Popen(
                [str(GAITWATCH), "replay", "--hub", inputs, "--node-id", name, "--loop", "--speed", "4", "--quiet"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for name in ("door-a", "door-b")
        }
        try:
            assert heard_from(subscriber, set(nodes)) == set(nodes), "both nodes publish through the hub"
            nodes["door-a"].send_signal(signal.SIGKILL)
            nodes["door-a"].wait(timeout=30)
            publishers_within(subscriber, 1.0)  # what door-a sent before dying is drained
            assert publishers_within(subscriber, 5.0) == {"door-b"}
            assert hub.poll() is None, "the hub died with a node"
        finally:
            for node in nodes.values():
                node.kill()
                node.wait(timeout=30)


def heard_from(subscriber: Subscriber, publishers: set[str], deadline_s: float = 120.0) -> set[str]:
    """The ``publishers`` whose events arrive before the deadline (it ends early once each was heard)."""
    heard: set[str] = set()
    end = time.monotonic() + deadline_s
    while heard != publishers and time.monotonic() < end:
        event = subscriber.receive(timeout_s=0.2)
        if event is not None and event.publisher in publishers:
            heard.add(event.publisher)
    return heard


def publishers_within(subscriber: Subscriber, seconds: float) -> set[str]:
    """The publishers of every event that arrives in the next ``seconds``."""
    seen: set[str] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        event = subscriber.receive(timeout_s=0.05)
        if event is not None:
            seen.add(event.publisher)
    return seen
