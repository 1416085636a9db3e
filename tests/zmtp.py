"""A raw ZMTP 3.0 peer for the socket-hardening tests: what a hostile or broken client sends, byte by byte."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

MiB = 2**20


def zmtp_hello(socket_type: bytes) -> bytes:
    """The ZMTP 3.0 greeting (NULL security) and READY command of a ``socket_type`` socket."""
    greeting = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + bytes(32)
    ready = b"\x05READY" + b"\x0bSocket-Type" + len(socket_type).to_bytes(4, "big") + socket_type
    return greeting + b"\x04" + bytes([len(ready)]) + ready


def zmtp_peer(endpoint: str, socket_type: bytes = b"SUB") -> socket.socket:
    """A raw TCP connection that has said what a ``socket_type`` socket says first, nothing more."""
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    peer = socket.create_connection((host, int(port)), timeout=10)
    peer.sendall(zmtp_hello(socket_type))
    return peer


def long_frame(size: int) -> bytes:
    """A ZMTP header of one final message frame of ``size`` bytes."""
    return b"\x02" + size.to_bytes(8, "big")


def send_until_refused(peer: socket.socket, header: bytes, body_bytes: int) -> None:
    """Write ``header`` and then ``body_bytes`` of its body, stopping where the node hangs up."""
    chunk = b"g" * MiB
    try:
        peer.sendall(header)
        for _ in range(body_bytes // MiB):
            peer.sendall(chunk)
    except OSError:  # the node closed the connection: what a bounded node does
        pass


def hung_up(peer: socket.socket, meanwhile: Callable[[], None], deadline_s: float = 30.0) -> bool:
    """Whether the other end closes ``peer`` within the deadline, calling ``meanwhile`` while waiting."""
    peer.settimeout(0.05)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        meanwhile()
        try:
            if peer.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False
