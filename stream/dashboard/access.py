"""Who may change the gallery from the dashboard, and where the dashboard may be reached.

Why a token: the page's gallery changes (rename, merge, remove) are changes to biometric records; a token set
at start (made here and printed once, or kept in a private file) must come with each, in the
``Authorization: Bearer`` header, which another site's page in the same browser cannot send for it. Reading
needs none, as ``gaitwatch listen`` needs none on the same machine.

Why loopback unless told: the page is plain HTTP; beyond loopback, people's names and the token would cross
the network unencrypted, so such an address is refused unless ``--insecure`` says so, and then warned about, as
a node's ZeroMQ socket is (``stream.curve.check_exposure``).
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import sys
from pathlib import Path

from sensors import atomic
from sensors.errors import InputError
from stream.events import exposed

TOKEN_BYTES = 24


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port); InputError naming ``--http`` otherwise."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError(f"--http {text}: expected HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free port)")
    return host, int(port)


def check_http_exposure(text: str, host: str, port: int, insecure: bool) -> bool:
    """Refuse an address other machines may reach unless ``insecure``; then warn. Whether it is exposed."""
    if not exposed(f"tcp://{host if ':' not in host else f'[{host}]'}:{port}"):
        return False
    if not insecure:
        raise InputError(
            f"--http {text}: reachable from other machines over plain HTTP (people's names and the write token "
            "would cross the network unencrypted); bind 127.0.0.1:PORT (and reach it through an SSH tunnel), "
            "or say --insecure"
        )
    print(
        f"warning: --http {text}: the dashboard is plain HTTP, readable (names, the write token) by anyone who "
        "can reach that interface",
        file=sys.stderr,
    )
    return True


def token_from_file(path: Path) -> tuple[str, bool]:
    """(the token kept in ``path``, whether it was made now): read where the file exists (it must be private and
    hold one line of at least 16 characters), else made and written there, readable by its owner only."""
    if path.exists():
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"--token-file {path}: cannot read ({err})") from None
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InputError(f"--token-file {path}: readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        if len(text) < 16 or any(c.isspace() for c in text):
            raise InputError(f"--token-file {path}: expected one token of at least 16 characters, no spaces")
        return text, False
    if not path.parent.is_dir():
        raise InputError(f"--token-file {path}: folder {path.parent} does not exist")
    token = new_token()
    atomic.write_bytes(path, (token + "\n").encode(), private=True)
    return token, True


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (compared in constant time)."""
    if token is None or not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
