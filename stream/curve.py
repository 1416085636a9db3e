"""CURVE on the site's sockets: which keys a process holds, and how a socket that binds or connects uses them.

A socket that binds is a CURVE *server*: it proves itself with its secret key and accepts only clients whose
public keys are in an allow-list folder (the ``.key`` files of ``gaitwatch keys create``), checked by ZeroMQ's
authentication handler (ZAP) in a thread of this process. A socket that connects is a CURVE *client*: it
proves itself with its own secret key and talks only to a server whose public key it was given. A peer with
a wrong or unlisted key completes no handshake, so it receives nothing and can send nothing.

Why plain sockets need a flag off loopback: events name people; an unauthenticated socket on an interface
other machines reach hands them to anyone there. ``check_exposure`` refuses that unless the user says
``--insecure``, and then warns.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq

from sensors.errors import InputError
from stream.events import exposed
from stream.keys import PUBLIC_SUFFIX, read_key_pair

_authenticators: dict[int, object] = {}  # one ZAP handler per context, started on first use
_auth_lock = threading.Lock()


@dataclass(frozen=True)
class Curve:
    """This process's side of CURVE: its key pair; for binding, the allowed clients; for connecting, the server."""

    public: bytes
    secret: bytes
    allow: Path | None = None  # folder of public .key files accepted (sockets that bind)
    server_key: bytes | None = None  # the server's public key (sockets that connect)

    @classmethod
    def of(cls, keys: Path | None, allow: Path | None = None, server_key: Path | None = None) -> Curve | None:
        """The CURVE settings of command-line options, or None without ``--keys`` (plain sockets).

        One error naming the option when they do not fit together: an allow-list or server key without keys."""
        if keys is None:
            if allow is not None or server_key is not None:
                raise InputError("--allow and --server-key need --keys (this process's own .key_secret file)")
            return None
        pair = read_key_pair(keys)
        if pair.secret is None:
            raise InputError(f"--keys {keys}: a public key file; give the .key_secret file of `gaitwatch keys create`")
        if allow is not None:
            _check_allow_folder(allow)
        server = read_key_pair(server_key).public if server_key is not None else None
        return cls(pair.public, pair.secret, allow, server)


def _check_allow_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(f"--allow {folder}: no such folder (it holds the allowed peers' public .key files)")
    if not any(folder.glob(f"*{PUBLIC_SUFFIX}")):
        raise InputError(f"--allow {folder}: no {PUBLIC_SUFFIX} files in it; nobody could connect")


def serve(socket: zmq.Socket, curve: Curve, domain: str = "gaitwatch") -> None:
    """Make ``socket`` (not yet bound) a CURVE server accepting only ``curve.allow``'s keys, in ZAP ``domain``."""
    if curve.allow is None:
        raise InputError("a socket that binds with --keys needs --allow FOLDER: the public keys it accepts")
    _authenticator(socket.context).configure_curve(domain=domain, location=str(curve.allow))
    socket.zap_domain = domain.encode()
    socket.curve_secretkey = curve.secret
    socket.curve_publickey = curve.public
    socket.curve_server = True


def connect_as_client(socket: zmq.Socket, curve: Curve) -> None:
    """Make ``socket`` (not yet connected) a CURVE client of the server whose public key ``curve`` holds."""
    if curve.server_key is None:
        raise InputError("a socket that connects with --keys needs --server-key FILE: the server's public .key")
    socket.curve_secretkey = curve.secret
    socket.curve_publickey = curve.public
    socket.curve_serverkey = curve.server_key


def check_exposure(endpoint: str, curve: Curve | None, insecure: bool, option: str, connecting: bool = False) -> None:
    """Refuse a plain socket beyond loopback (bound there, or connecting there) unless ``insecure``; then warn."""
    if curve is not None or not exposed(endpoint):
        return
    if not insecure:
        if connecting:
            raise InputError(
                f"{option} {endpoint}: events would cross the network unauthenticated and unencrypted; give --keys "
                "and --server-key (see `gaitwatch keys`), or say --insecure"
            )
        raise InputError(
            f"{option} {endpoint}: reachable from other machines without authentication; give --keys and --allow "
            "(see `gaitwatch keys`), bind tcp://127.0.0.1:PORT, or say --insecure"
        )
    print(
        f"warning: {option} {endpoint}: events are unauthenticated and unencrypted, readable by anyone who can "
        "reach that interface (--keys and --allow make them private)",
        file=sys.stderr,
    )


def _authenticator(context: zmq.Context):
    """This context's ZAP handler (a thread), started once; CURVE servers of every domain share it."""
    from zmq.auth.thread import ThreadAuthenticator

    with _auth_lock:
        auth = _authenticators.get(id(context))
        if auth is None:
            auth = ThreadAuthenticator(context)
            auth.start()
            _authenticators[id(context)] = auth
        return auth
