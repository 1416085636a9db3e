"""The site's event bus: one XSUB/XPUB proxy that every node publishes into and every subscriber reads from.

Why a hub: with several nodes a subscriber would need every node's address and keys; through the hub it
needs one address and one server key, and nodes come and go without subscribers noticing. The proxy is
ZeroMQ's own (``zmq.proxy_steerable``, C code, one thread): it adds no copy of its own, and subscriptions
travel upstream so nodes still filter by topic at the source.

Both sides bind; with CURVE each side has its own allow-list, so a subscriber's key cannot publish (forge
events) and a node's key need not read. Bounds: frames from nodes up to ``MAX_EVENT_BYTES`` (what a
publisher sends at most), from subscribers up to ``PEER_MAX_BYTES`` (subscriptions); a bigger frame closes
that peer's connection at its header, so a 100 MB message never reaches memory.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from dataclasses import dataclass

import zmq

from sensors.errors import InputError
from stream.curve import Curve, check_exposure, serve
from stream.events import MAX_EVENT_BYTES, PEER_MAX_BYTES, PEER_QUEUE

HIGH_WATER_MARK = 100_000  # messages queued per peer each way before the slowest peer loses some


@dataclass(frozen=True)
class HubStatistics:
    """Frames (an event is two: topic, payload) and bytes through the proxy since it started (libzmq's STATISTICS)."""

    frames_in: int
    bytes_in: int
    frames_out: int  # to all subscribers together
    bytes_out: int


class Hub:
    """A bound XSUB (``inputs``, nodes connect) and XPUB (``outputs``, subscribers connect), proxied in a thread.

    ``nodes`` and ``subscribers``: this hub's keys with the allow-list of each side (None: plain sockets, only
    on loopback unless ``insecure``)."""

    def __init__(
        self,
        inputs: str,
        outputs: str,
        nodes: Curve | None = None,
        subscribers: Curve | None = None,
        insecure: bool = False,
    ) -> None:
        check_exposure(inputs, nodes, insecure, "--in")
        check_exposure(outputs, subscribers, insecure, "--out")
        self.context = zmq.Context.instance()
        self.inputs = self._bind(zmq.XSUB, inputs, nodes, "nodes", "--in", MAX_EVENT_BYTES)
        try:
            self.outputs = self._bind(zmq.XPUB, outputs, subscribers, "subscribers", "--out", PEER_MAX_BYTES)
        except BaseException:
            self.inputs.close()
            raise
        self.inputs.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK)
        self.outputs.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
        self.outputs.setsockopt(zmq.RCVHWM, PEER_QUEUE)
        self.input_endpoint = self.inputs.getsockopt_string(zmq.LAST_ENDPOINT)
        self.output_endpoint = self.outputs.getsockopt_string(zmq.LAST_ENDPOINT)
        address = f"inproc://gaitwatch-hub-{id(self)}"
        self._control = self.context.socket(zmq.PAIR)  # this side: the caller's thread only
        self._control.bind(address)
        self._proxy_control = self.context.socket(zmq.PAIR)  # the proxy thread's side
        self._proxy_control.connect(address)
        self._thread = threading.Thread(target=self._proxy, name="gaitwatch-hub", daemon=True)

    def _bind(self, kind: int, endpoint: str, curve: Curve | None, domain: str, option: str, max_bytes: int):
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.MAXMSGSIZE, max_bytes)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            if curve is not None:
                serve(socket, curve, domain)
            socket.bind(endpoint)
        except InputError:
            socket.close()
            raise
        except zmq.ZMQError as err:
            socket.close()
            raise InputError(f"{option} {endpoint}: cannot bind ({err})") from None
        return socket

    def start(self) -> Hub:
        self._thread.start()
        return self

    def _proxy(self) -> None:
        with contextlib.suppress(zmq.ContextTerminated):
            zmq.proxy_steerable(self.inputs, self.outputs, None, self._proxy_control)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def statistics(self) -> HubStatistics:
        """Counts so far, asked of the running proxy."""
        self._control.send(b"STATISTICS")
        frames = self._control.recv_multipart()
        counts = [struct.unpack("=Q", frame)[0] for frame in frames]
        # libzmq: frontend in (messages, bytes), frontend out, backend in, backend out
        return HubStatistics(counts[0], counts[1], counts[6], counts[7])

    def stop(self) -> HubStatistics | None:
        """End the proxy, close every socket; the last counts (None where the proxy had not started)."""
        last = None
        if self._thread.is_alive():
            last = self.statistics()
            self._control.send(b"TERMINATE")
            self._thread.join()
        for socket in (self._control, self._proxy_control, self.inputs, self.outputs):
            socket.close()
        return last
