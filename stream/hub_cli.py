"""``gaitwatch hub``: the site's event bus, until interrupted; its counts on the way out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_IN = "tcp://127.0.0.1:5558"
DEFAULT_OUT = "tcp://127.0.0.1:5559"


def add_commands(commands: argparse._SubParsersAction) -> None:
    hub = commands.add_parser(
        "hub", help="the site's event bus: nodes publish into --in (--hub of a node), subscribers read --out"
    )
    hub.add_argument("--in", default=DEFAULT_IN, help=f"endpoint nodes publish to (default {DEFAULT_IN})")
    hub.add_argument("--out", default=DEFAULT_OUT, help=f"endpoint subscribers read (default {DEFAULT_OUT})")
    hub.add_argument("--keys", type=Path, help="the hub's .key_secret file: CURVE on both endpoints")
    hub.add_argument("--allow-nodes", type=Path, help="with --keys: folder of the public .key files of nodes")
    hub.add_argument(
        "--allow-subscribers", type=Path, help="with --keys: folder of the public .key files of subscribers"
    )
    hub.add_argument(
        "--insecure", action="store_true", help="allow binding beyond loopback without --keys (with a warning)"
    )
    hub.add_argument("--report-every", type=float, default=0.0, help="print the counts every N seconds (0: at the end)")
    hub.set_defaults(func=run_hub)


def run_hub(args: argparse.Namespace) -> int:
    from sensors.errors import InputError
    from stream.curve import Curve
    from stream.hub import Hub

    keys = Curve.of(args.keys)
    if keys is not None and (args.allow_nodes is None or args.allow_subscribers is None):
        raise InputError("--keys needs --allow-nodes and --allow-subscribers: the public keys each side accepts")
    if keys is None and (args.allow_nodes or args.allow_subscribers):
        raise InputError("--allow-nodes and --allow-subscribers need --keys (the hub's own .key_secret file)")
    nodes = subscribers = None
    if keys is not None:
        nodes = Curve.of(args.keys, allow=args.allow_nodes)
        subscribers = Curve.of(args.keys, allow=args.allow_subscribers)
    options = vars(args)  # "in" is a Python keyword: no args.in
    hub = Hub(options["in"], options["out"], nodes, subscribers, args.insecure).start()
    secured = "CURVE" if keys is not None else "plain (loopback)" if not args.insecure else "plain"
    print(f"hub: nodes publish to {hub.input_endpoint}, subscribers read {hub.output_endpoint} ({secured})", flush=True)
    try:
        while hub.running:
            time.sleep(args.report_every or 0.5)
            if args.report_every:
                print(_counts(hub.statistics()), flush=True)
    finally:
        last = hub.stop()
        if last is not None:
            print(_counts(last), flush=True)
    return 0


def _counts(stats) -> str:
    return (
        f"hub: {stats.frames_in // 2} events in ({stats.bytes_in} bytes), "
        f"{stats.frames_out // 2} delivered to subscribers ({stats.bytes_out} bytes)"
    )
