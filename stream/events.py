"""Identity events over ZeroMQ: topics, the versioned payload, and the publisher.

Messages are multipart ``[topic, payload]``: the topic is UTF-8 text under one prefix so that
subscribers filter by prefix in ZeroMQ itself, the payload is JSON following
``stream/events.schema.json`` (version ``SCHEMA_VERSION``). Every payload carries the publisher id
and a sequence number counting every message that publisher sent, whatever the topic, so a
subscriber of all topics can detect a lost message.

Why a PUB socket that never blocks: a slow or absent subscriber must not stall the node; a message
ZeroMQ cannot queue is dropped and counted (``dropped``) and the count goes out in the status topic.
"""

from __future__ import annotations

import json
import time
from importlib.resources import files

SCHEMA_VERSION = 1
PREFIX = "gaitwatch"
IDENTITY = f"{PREFIX}.identity"
TRACK_START = f"{PREFIX}.track.start"
TRACK_END = f"{PREFIX}.track.end"
STATUS = f"{PREFIX}.status"
TOPICS = (IDENTITY, TRACK_START, TRACK_END, STATUS)


def schema() -> dict:
    """The JSON Schema of every payload (shipped with the package)."""
    return json.loads((files("stream") / "events.schema.json").read_text())


class Publisher:
    def __init__(self, endpoint: str, publisher_id: str, high_water_mark: int = 10_000) -> None:
        import zmq

        self._zmq = zmq
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, high_water_mark)
        self.socket.setsockopt(zmq.LINGER, 1000)
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError as err:
            self.socket.close()
            from sensors.errors import InputError

            raise InputError(f"--pub {endpoint}: cannot bind ({err})") from None
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)  # resolves tcp://*:0 to the real port
        self.publisher_id = publisher_id
        self.seq = 0
        self.sent = 0
        self.dropped = 0

    def publish(self, topic: str, payload: dict) -> None:
        """Stamp ``payload`` (schema, publisher, seq, emit time) and send it without blocking."""
        self.seq += 1
        message = {
            "schema": SCHEMA_VERSION,
            "topic": topic,
            "publisher": self.publisher_id,
            "seq": self.seq,
            "t_emit": time.time(),
            **payload,
        }
        try:
            self.socket.send_multipart(
                [topic.encode(), json.dumps(message, separators=(",", ":")).encode()], flags=self._zmq.NOBLOCK
            )
            self.sent += 1
        except self._zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self.socket.close()
