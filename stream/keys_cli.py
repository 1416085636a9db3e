"""``gaitwatch keys create | show``: the CURVE key pairs a site's hub, nodes and subscribers authenticate with."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="CURVE key pairs for authenticated, encrypted event sockets")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new key pair: NAME.key (public, to share) and NAME.key_secret (0600)")
    create.add_argument("name", help="what the pair is for, e.g. hub, node-door1, dashboard")
    create.add_argument("--dir", type=Path, required=True, help="folder for the two files (created 0700)")
    create.set_defaults(func=run_create)
    show = actions.add_parser("show", help="the public key of a key file (public or secret)")
    show.add_argument("file", type=Path, help="a .key or .key_secret file")
    show.set_defaults(func=run_show)


def run_create(args: argparse.Namespace) -> int:
    from stream.keys import create_key_pair

    public, secret = create_key_pair(args.dir, args.name)
    print(f"wrote {public} (public: give it to the peers that must accept this one)")
    print(f"wrote {secret} (secret, 0600: keep it on this machine only)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from stream.keys import read_key_pair

    pair = read_key_pair(args.file)
    print(f"{pair.public.decode()}  ({'secret and public' if pair.secret else 'public'} key file)")
    return 0
