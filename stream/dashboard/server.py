"""Binding the dashboard's HTTP address and running the application under uvicorn until ^C or SIGTERM.

Why the socket is bound here rather than by uvicorn: a port in use or an address that is no address is one
line said at once (as a node's ``--pub`` is), and port 0 is resolved to the real port before the address is
printed.
"""

from __future__ import annotations

import socket

from sensors.errors import InputError


def bind(text: str, host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening: uvicorn does that)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise InputError(f"--http {text}: no such address ({err.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        hint = "; give another --http, or port 0 for any free port" if err.errno in (98, 48, 10048) else ""
        raise InputError(f"--http {text}: cannot bind ({err.strerror or err}){hint}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(app, sock: socket.socket) -> None:
    """Run ``app`` on ``sock`` until interrupted (uvicorn turns ^C and SIGTERM into a clean shutdown)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", ws_max_size=2**16)
    uvicorn.Server(config).run(sockets=[sock])
