"""``gaitwatch dashboard``: a node's or a hub's events in a browser, and the gallery managed from there."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sensors.errors import InputError
from stream.gallery.location import gallery_location

DEFAULT_SUB = "tcp://127.0.0.1:5557"
DEFAULT_HTTP = "127.0.0.1:8080"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``dashboard`` (registered by ``stream.cli``)."""
    from stream.node.cli import add_curve_options

    dashboard = commands.add_parser("dashboard", help="watch a node's events in a browser and manage the gallery")
    dashboard.add_argument("--sub", default=DEFAULT_SUB, help="the node's --pub, or a hub's --out, to read events from")
    add_curve_options(dashboard, "nothing (the dashboard connects)")
    dashboard.add_argument("--gallery", type=gallery_location, help="the gallery to list and change: file or URL")
    dashboard.add_argument(
        "--threshold", type=Path, help="the node's threshold.json (`gaitwatch calibrate`), for the DET plot"
    )
    dashboard.add_argument("--http", default=DEFAULT_HTTP, help="HOST:PORT the page is served on (port 0: any free)")
    dashboard.add_argument(
        "--insecure", action="store_true", help="allow --http beyond loopback (plain HTTP, with a warning)"
    )
    dashboard.add_argument(
        "--token-file",
        type=Path,
        help="the write token: read from this file, or made and written there (0600) where it does not exist "
        "(default: a new token, printed once)",
    )
    dashboard.add_argument("--read-only", action="store_true", help="accept no gallery change at all")
    dashboard.set_defaults(func=run_dashboard)


def run_dashboard(args: argparse.Namespace) -> int:
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("starlette", "uvicorn", "websockets")):
        raise InputError(
            "the dashboard needs the 'dashboard' extra: pip install -c constraints.txt '.[dashboard]' (in the checkout)"
        )
    from stream.curve import Curve
    from stream.dashboard.access import check_http_exposure, new_token, parse_http, token_from_file
    from stream.dashboard.app import Dashboard, build_app
    from stream.dashboard.clients import Clients
    from stream.dashboard.det import read_det
    from stream.dashboard.feed import Feed
    from stream.dashboard.live import LiveState
    from stream.dashboard.server import bind, serve, url_of
    from stream.subscriber import Subscriber

    if args.allow is not None:
        raise InputError("--allow: the dashboard connects, it accepts nobody; give --keys and --server-key")
    if args.read_only and args.token_file is not None:
        raise InputError("--token-file: a --read-only dashboard takes no token")
    host, port = parse_http(args.http)
    exposed = check_http_exposure(args.http, host, port, args.insecure)
    det = read_det(args.threshold) if args.threshold is not None else None
    curve = Curve.of(args.keys, None, args.server_key)
    token, made = (
        (None, False)
        if args.read_only
        else (token_from_file(args.token_file) if args.token_file is not None else (new_token(), True))
    )
    desk = None
    if args.gallery is not None:
        from stream.dashboard.desk import Desk

        desk = Desk(args.gallery, writable=not args.read_only)
    sock = bind(args.http, host, port)
    subscriber = Subscriber(args.sub, curve=curve)
    state, clients = LiveState(), Clients()
    hosts = ["*"] if exposed else _loopback_hosts(host)
    dashboard = Dashboard(state, clients, Feed(subscriber, state, clients), args.sub, desk, det, token, hosts)
    url = url_of(sock)
    print(f"dashboard: {url} reading {args.sub}" + (f", gallery {desk.where}" if desk else "") + "; ^C stops")
    if token is not None and desk is not None:
        if args.token_file is None:
            print(f"write token (shown once): {token}  -- or open {url}#token={token}")
        else:
            print(f"write token {'written to' if made else 'read from'} {args.token_file}")
    sys.stdout.flush()
    try:
        serve(build_app(dashboard), sock)
    finally:
        if desk is not None:
            desk.close()
    return 0


def _loopback_hosts(host: str) -> list[str]:
    """The Host headers a loopback dashboard answers: its own names only (a DNS-rebinding page gets 400)."""
    return sorted({host, "127.0.0.1", "localhost", "::1", "[::1]"})
