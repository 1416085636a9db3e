"""Helpers of the dashboard tests and benchmark: a synthetic node publishing schema-valid events on a real
ZeroMQ socket, and reading a page's WebSocket until a condition holds (never a fixed sleep)."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable

from stream.dashboard.app import Dashboard
from stream.dashboard.clients import Clients
from stream.dashboard.feed import Feed
from stream.dashboard.live import LiveState
from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START, Publisher
from stream.subscriber import Subscriber
from tests.helpers import subscribed

HEARTBEAT_S = 0.05


def standing_window(f: int = 6, x: float = 0.0) -> list:
    """A person standing ``x`` metres to the side, [f, 20, 3]: enough for a skeleton to draw."""
    body = [
        (0, 1.0, 3), (0, 1.2, 3), (0, 1.5, 3), (0, 1.7, 3), (-0.2, 1.45, 3), (-0.3, 1.2, 3), (-0.3, 1.0, 3),
        (-0.3, 0.9, 3), (0.2, 1.45, 3), (0.3, 1.2, 3), (0.3, 1.0, 3), (0.3, 0.9, 3), (-0.1, 0.95, 3),
        (-0.1, 0.5, 3), (-0.1, 0.1, 3), (-0.1, 0.05, 2.9), (0.1, 0.95, 3), (0.1, 0.5, 3), (0.1, 0.1, 3),
        (0.1, 0.05, 2.9),
    ]  # fmt: skip
    return [[[x + a + 0.01 * k * math.sin(j), b, c] for j, (a, b, c) in enumerate(body)] for k in range(f)]


def identity_payload(track: str, identity: int | None, name: str | None, distance: float = 0.2, windows: int = 3,
                     sensor: str = "cam", enrolled: bool = False) -> dict:  # fmt: skip
    now = time.time()
    return {
        "sensor": sensor,
        "track": f"{sensor}/{track}",
        "t_capture": now,
        "t_arrival": now - 0.01,
        "identity": identity,
        "name": name,
        "known": identity is not None,
        "distance": distance,
        "threshold": 0.3,
        "windows": windows,
        "enrolled": enrolled,
        "candidates": [] if identity is None else [{"identity": identity, "name": name, "distance": distance}],
        "window": {"joints": standing_window()},
    }


class FakeNode:
    """A real ``Publisher`` driven by a thread: what is ``send``-ed goes out in order, and a status event every
    ``HEARTBEAT_S`` lists the tracks started and not ended (as a node's does), so a page always has a next
    message to read. The socket is used by that thread only once it runs."""

    def __init__(self, endpoint: str = "tcp://127.0.0.1:0", node_id: str = "node-a") -> None:
        self.publisher = Publisher(endpoint, node_id)
        self.endpoint = self.publisher.endpoint
        self.tracks: dict[str, dict] = {}
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FakeNode:
        self._thread.start()
        return self

    def send(self, topic: str, payload: dict) -> None:
        self._queue.put((topic, payload))

    def start_track(self, track: str, sensor: str = "cam") -> None:
        self.send(TRACK_START, {"sensor": sensor, "track": f"{sensor}/{track}", "t_capture": 0.0, "labels": {}})

    def end_track(self, track: str, sensor: str = "cam") -> None:
        self.send(TRACK_END, {"sensor": sensor, "track": f"{sensor}/{track}", "t_capture": 1.0, "windows": 3,
                              "identity": None, "name": None, "distance": None})  # fmt: skip

    def _run(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            try:
                topic, payload = self._queue.get(timeout=HEARTBEAT_S)
                self._publish(topic, payload)
            except queue.Empty:
                pass
            if time.monotonic() >= next_beat:
                self._publish(STATUS, self._status())
                next_beat = time.monotonic() + HEARTBEAT_S

    def _publish(self, topic: str, payload: dict) -> None:
        key = payload.get("track")
        if topic == TRACK_START:
            self.tracks[key] = {"track": key, "identity": None, "name": None, "distance": None, "windows": 0}
        elif topic == TRACK_END:
            self.tracks.pop(key, None)
        elif topic == IDENTITY and key in self.tracks:
            self.tracks[key] = {k: payload[k] for k in ("identity", "name", "distance", "windows")} | {"track": key}
        self.publisher.publish(topic, payload)

    def _status(self) -> dict:
        return {
            "uptime_s": 1.0,
            "rates": {"frames": 30.0, "body_frames": 30.0, "windows": 5.0, "decisions": 5.0},
            "queues": {"frames": 0, "work": 0},
            "dropped": {"frames": 0, "windows": 0, "events": self.publisher.dropped},
            "tracks": list(self.tracks.values()),
            "finished": False,
        }

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.publisher.close()


def dashboard_of(node: FakeNode, desk=None, token: str | None = "a-test-token-of-some-length", det=None) -> Dashboard:
    """A dashboard subscribed to ``node`` (the handshake done: nothing it sends from now on is missed)."""
    subscriber = subscribed(node.publisher, lambda: Subscriber(node.endpoint))
    state, clients = LiveState(), Clients()
    return Dashboard(state, clients, Feed(subscriber, state, clients), node.endpoint, desk, det, token)


def read_until(socket, condition: Callable[[dict], bool], messages: int = 1200, seen: list | None = None) -> dict:
    """Messages of a page's WebSocket until one meets ``condition`` (each kept in ``seen``); fails after
    ``messages`` without (a minute of status heartbeats)."""
    for _ in range(messages):
        message = socket.receive_json()
        if seen is not None:
            seen.append(message)
        if condition(message):
            return message
    raise AssertionError(f"no message met the condition in {messages}")


def changes_of(message: dict, kind: str) -> list[dict]:
    if message["type"] == "snapshot":
        return []
    return [c for c in message["changes"] if c["kind"] == kind]


def has_track(message: dict, predicate: Callable[[dict], bool]) -> bool:
    if message["type"] == "snapshot":
        return any(predicate(t) for t in message["state"]["tracks"])
    return any(predicate(c["track"]) for c in changes_of(message, "track"))
