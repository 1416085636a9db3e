"""``gaitwatch keys``: CURVE key pairs stored privately, readable by ZeroMQ, and usable on a real socket."""

from __future__ import annotations

from pathlib import Path

import pytest
import zmq
import zmq.auth

from sensors.errors import FormatError, InputError
from stream.keys import create_key_pair, read_key_pair
from tests.helpers import assert_one_line_error, gaitwatch


def test_a_key_pair_is_private_where_it_must_be_and_zeromq_reads_it(tmp_path: Path):
    folder = tmp_path / "keys"
    public, secret = create_key_pair(folder, "hub")
    assert (folder.stat().st_mode & 0o777, secret.stat().st_mode & 0o777) == (0o700, 0o600)
    pub_only, pub_and_secret = zmq.auth.load_certificate(public), zmq.auth.load_certificate(secret)
    assert pub_only[1] is None and pub_and_secret[0] == pub_only[0]
    assert zmq.curve_public(pub_and_secret[1]) == pub_only[0]
    assert read_key_pair(secret).public == read_key_pair(public).public == pub_only[0]


def test_keys_are_never_overwritten_and_names_are_checked(tmp_path: Path):
    public, secret = create_key_pair(tmp_path, "node-1")
    before = secret.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        create_key_pair(tmp_path, "node-1")
    assert secret.read_bytes() == before and public.is_file()
    for bad in ("", "../escape", "a b", "-flag"):
        with pytest.raises(InputError, match="key name"):
            create_key_pair(tmp_path, bad)


def test_the_keys_authenticate_a_real_curve_connection(tmp_path: Path):
    server_public, server_secret = (read_key_pair(p) for p in create_key_pair(tmp_path, "hub"))
    client = read_key_pair(create_key_pair(tmp_path, "listener")[1])
    context = zmq.Context()
    try:
        server, peer = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
        server.curve_server, server.curve_secretkey, server.curve_publickey = (
            True,
            server_secret.secret,
            server_public.public,
        )
        port = server.bind_to_random_port("tcp://127.0.0.1")
        peer.curve_serverkey, peer.curve_publickey, peer.curve_secretkey = (
            server_public.public,
            client.public,
            client.secret,
        )
        peer.connect(f"tcp://127.0.0.1:{port}")
        peer.send(b"hello")
        assert server.poll(10_000) and server.recv() == b"hello"  # waits for the handshake, assumes no speed
    finally:
        context.destroy(linger=0)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("metadata\ncurve\n", "no public-key"),
        ('curve\n    public-key = "short"\n', "line 2"),
        ("\udcff", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_certificate_is_one_clear_error(tmp_path: Path, text: str, where: str):
    path = tmp_path / "bad.key"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(FormatError, match=where):
        read_key_pair(path)


def test_a_secret_that_does_not_match_its_public_key_is_refused(tmp_path: Path):
    one = create_key_pair(tmp_path, "one")[1].read_text()
    other = read_key_pair(create_key_pair(tmp_path, "two")[1])
    mixed = tmp_path / "mixed.key_secret"
    mixed.write_text(one.split("secret-key")[0] + f'secret-key = "{other.secret.decode()}"\n')
    with pytest.raises(FormatError, match="does not belong"):
        read_key_pair(mixed)


def test_the_keys_command(tmp_path: Path):
    printed = gaitwatch("keys", "create", "dashboard", "--dir", tmp_path).stdout
    assert "dashboard.key_secret" in printed and "0600" in printed
    shown = gaitwatch("keys", "show", tmp_path / "dashboard.key").stdout
    assert read_key_pair(tmp_path / "dashboard.key").public.decode() in shown
    assert_one_line_error(gaitwatch("keys", "create", "dashboard", "--dir", tmp_path, ok=False), "already exists")
    assert_one_line_error(gaitwatch("keys", "show", tmp_path / "absent.key", ok=False), "no such key file")
