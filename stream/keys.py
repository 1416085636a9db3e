"""CURVE key pairs for the site's sockets: made, stored and read in ZeroMQ's certificate format.

Why our own writer: pyzmq's ``zmq.auth.create_certificates`` writes the secret file with the process's
default mode (0644 under the usual umask), and a secret key readable by every user of a machine
authenticates anyone. Here the secret file is created 0600 and never over an existing file; the public
file is the same ZPL text without the secret, so ``zmq.auth.load_certificate`` and an
``Authenticator``'s allow-list folder read both.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path

import zmq

from sensors import atomic
from sensors.errors import FormatError, InputError

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEY_LINE = re.compile(r'^\s*(public|secret)-key\s*=\s*"([0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40})"\s*$')
MAX_CERTIFICATE_BYTES = 64 * 1024


@dataclass(frozen=True)
class KeyPair:
    public: bytes  # Z85, 40 characters
    secret: bytes | None  # None for a public-only certificate


def _certificate(name: str, public: bytes, secret: bytes | None) -> bytes:
    made = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    lines = [
        f"#   gaitwatch CURVE {'secret' if secret else 'public'} certificate for {name}, made {made}",
        "#   ZeroMQ certificate format (ZPL); share the .key file, never the .key_secret one",
        "metadata",
        f'    name = "{name}"',
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    return ("\n".join(lines) + "\n").encode()


def create_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """Make a CURVE key pair ``folder/NAME.key`` (public) and ``folder/NAME.key_secret`` (0600); never overwrites."""
    if not _NAME.match(name):
        raise InputError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', from a letter or digit")
    if not zmq.has("curve"):
        raise InputError("this libzmq has no CURVE support (pyzmq's wheels have it; a system libzmq may not)")
    folder = atomic.private_dir(folder)
    public_path, secret_path = folder / f"{name}{PUBLIC_SUFFIX}", folder / f"{name}{SECRET_SUFFIX}"
    existing = [str(p) for p in (public_path, secret_path) if p.exists()]
    if existing:
        raise InputError(f"{', '.join(existing)}: already exists; keys are never overwritten (pick another name)")
    public, secret = zmq.curve_keypair()
    fd = atomic.open_private(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)  # O_EXCL: a race cannot overwrite
    with os.fdopen(fd, "wb") as stream:
        stream.write(_certificate(name, public, secret))
        stream.flush()
        os.fsync(stream.fileno())
    with open(public_path, "xb") as stream:
        stream.write(_certificate(name, public, None))
    return public_path, secret_path


def read_key_pair(path: Path) -> KeyPair:
    """The keys of a certificate file; one error naming the file and line when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such key file")
    if path.stat().st_size > MAX_CERTIFICATE_BYTES:
        raise FormatError(path, "", f"larger than {MAX_CERTIFICATE_BYTES} bytes: not a key certificate")
    keys: dict[str, bytes] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FormatError(path, "", "not UTF-8 text: not a key certificate") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(("public-key", "secret-key")):
            match = _KEY_LINE.match(line)
            if match is None:
                raise FormatError(path, f"line {number}", 'expected KIND-key = "<40 Z85 characters>"')
            keys[match.group(1)] = match.group(2).encode()
    if "public" not in keys:
        raise FormatError(path, "", "no public-key line: not a ZeroMQ certificate")
    if "secret" in keys and zmq.curve_public(keys["secret"]) != keys["public"]:
        raise FormatError(path, "", "its secret key does not belong to its public key")
    return KeyPair(keys["public"], keys.get("secret"))
