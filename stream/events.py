"""Identity events over ZeroMQ: topics, the versioned payload, the publisher and what it lets peers do.

Messages are multipart ``[topic, payload]``: the topic is UTF-8 text under one prefix so that
subscribers filter by prefix in ZeroMQ itself, the payload is JSON following
``stream/events.schema.json`` (version ``SCHEMA_VERSION``). Every payload carries the publisher id,
``seq`` (every message of that publisher, whatever the topic) and ``topic_seq`` (that publisher's
messages of this topic), so a subscriber of some topics only still sees what it lost, and one that
joined late sees how much it missed (``stream/subscriber.py`` counts both).

Why a PUB socket that never blocks: a slow or absent subscriber must not stall the node; a message
ZeroMQ cannot queue is dropped and counted (``dropped``) and the count goes out in the status topic.

Why bounds on the socket: it reads whatever a peer sends it (unbounded, one 10 MiB subscription made
ZeroMQ hold half a gigabyte, and a frame claiming 1 GiB was buffered as it arrived). A peer's frame over
``PEER_MAX_BYTES`` closes its connection at the frame's header, and the queues per peer are bounded
(``high_water_mark`` events out, ``PEER_QUEUE`` subscriptions in). Not bounded: ZeroMQ keeps every
distinct subscription a connected peer sent (XPUB's manual mode too); only authentication limits that.
"""

from __future__ import annotations

import ipaddress
import json
import time
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.curve import Curve

SCHEMA_VERSION = 2
# Additive revisions of SCHEMA_VERSION: optional fields only, so every reader of version 2 reads them (a reader
# ignores fields it does not know; raising SCHEMA_VERSION would make each one skip every event). Revision 1 added
# ``schema_minor`` itself and the identity event's ``window``; revision 2 its ``channels`` (fusing nodes).
SCHEMA_MINOR = 2
PREFIX = "gaitwatch"
IDENTITY = f"{PREFIX}.identity"
TRACK_START = f"{PREFIX}.track.start"
TRACK_END = f"{PREFIX}.track.end"
STATUS = f"{PREFIX}.status"
TOPICS = (IDENTITY, TRACK_START, TRACK_END, STATUS)

MAX_EVENT_BYTES = 2**20  # the largest payload sent, and accepted by subscribers (events are a few kB)
PEER_MAX_BYTES = 1024  # the largest frame read from a subscriber: subscriptions (topic prefixes, < 32 bytes)
# and the ZMTP handshake's commands (a READY is about 40 bytes) fit
PEER_QUEUE = 100  # subscription messages queued per peer until the publishing thread applies them


def schema() -> dict:
    """The JSON Schema of every payload (shipped with the package)."""
    return json.loads((files("stream") / "events.schema.json").read_text())


def window_field(joints) -> dict:
    """The identity event's ``window``: the newest window its decision rests on, canonical joints [f, 20, 3] in
    metres to the millimetre (a lost joint: null), so a subscriber can draw the skeleton that was matched (about
    2 kB as JSON for f = 6)."""
    import numpy as np

    rounded = np.round(np.asarray(joints, np.float64), 3)
    if np.isfinite(rounded).all():
        return {"joints": rounded.tolist()}
    frames = rounded.tolist()
    return {"joints": [[[v if np.isfinite(v) else None for v in joint] for joint in frame] for frame in frames]}


def exposed(endpoint: str) -> bool:
    """Whether binding ``endpoint`` may let other machines connect: anything but loopback TCP, ipc and inproc.

    ``*``, ``0.0.0.0``, ``::``, interface and host names count as exposed: they may reach beyond this machine."""
    transport, _, address = endpoint.partition("://")
    if transport in ("ipc", "inproc"):
        return False
    if transport != "tcp":
        return True
    host = address.rpartition(":")[0].removeprefix("[").removesuffix("]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class Publisher:
    """The node's PUB socket. Only the thread that publishes may use it: ZeroMQ sockets are not thread-safe.

    It binds ``endpoint`` (subscribers connect to the node), or with ``to_hub`` connects to a hub's input
    (``gaitwatch hub``), which every subscriber of the site reads. ``curve``: CURVE keys (``stream.curve``);
    without them, binding beyond loopback needs ``insecure``."""

    def __init__(
        self,
        endpoint: str,
        publisher_id: str,
        high_water_mark: int = 10_000,
        curve: Curve | None = None,
        to_hub: bool = False,
        insecure: bool = False,
    ) -> None:
        import zmq

        from sensors.errors import InputError
        from stream.curve import check_exposure, connect_as_client, serve

        self._zmq = zmq
        self.context = zmq.Context.instance()
        option = "--hub" if to_hub else "--pub"
        check_exposure(endpoint, curve, insecure, option, connecting=to_hub)
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, high_water_mark)  # per subscriber: a slow one loses events instead
        self.socket.setsockopt(zmq.RCVHWM, PEER_QUEUE)
        self.socket.setsockopt(zmq.MAXMSGSIZE, PEER_MAX_BYTES)
        self.socket.setsockopt(zmq.LINGER, 1000)
        try:
            if to_hub:
                self.socket.setsockopt(zmq.IMMEDIATE, 1)  # nothing queued for a hub that is down: stale events
                if curve is not None:
                    connect_as_client(self.socket, curve)
                self.socket.connect(endpoint)
            else:
                if curve is not None:
                    serve(self.socket, curve)
                self.socket.bind(endpoint)
        except InputError:
            self.socket.close()
            raise
        except zmq.ZMQError as err:
            self.socket.close()
            raise InputError(f"{option} {endpoint}: cannot {'connect' if to_hub else 'bind'} ({err})") from None
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)  # resolves tcp://*:0 to the real port
        self.to_hub = to_hub
        self.publisher_id = publisher_id
        self.seq = 0
        self.topic_seq: dict[str, int] = {}
        self.sent = 0
        self.dropped = 0

    def publish(self, topic: str, payload: dict) -> None:
        """Stamp ``payload`` (schema, publisher, sequence numbers, emit time) and send it without blocking.

        One over ``MAX_EVENT_BYTES`` is dropped and counted: subscribers would hang up on it."""
        self.seq += 1
        self.topic_seq[topic] = self.topic_seq.get(topic, 0) + 1
        message = {
            "schema": SCHEMA_VERSION,
            "schema_minor": SCHEMA_MINOR,
            "topic": topic,
            "publisher": self.publisher_id,
            "seq": self.seq,
            "topic_seq": self.topic_seq[topic],
            "t_emit": time.time(),
            **payload,
        }
        body = json.dumps(message, separators=(",", ":")).encode()
        if len(body) > MAX_EVENT_BYTES:
            self.dropped += 1
            return
        try:
            self.socket.send_multipart([topic.encode(), body], flags=self._zmq.NOBLOCK)
            self.sent += 1
        except self._zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self.socket.close()
