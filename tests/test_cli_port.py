"""A --pub port already in use is one line with a way out, said before the model loads or the demo builds its
gallery."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from stream.cli import main
from tests.helpers import assert_one_line_error, gaitwatch_process


@pytest.fixture
def held_endpoint() -> Iterator[str]:
    """A loopback TCP port another program is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield f"tcp://127.0.0.1:{holder.getsockname()[1]}"


def test_the_demo_reports_a_port_in_use_before_loading_anything(held_endpoint, monkeypatch, capsys):
    import engines.runtime.load
    import stream.node.demo

    def too_early(*args, **kwargs):
        raise AssertionError("loaded before the port was bound")

    monkeypatch.setattr(engines.runtime.load, "open_encoder", too_early)
    monkeypatch.setattr(stream.node.demo, "build_demo_gallery", too_early)
    assert main(["replay", "--pub", held_endpoint]) == 2
    out, err = capsys.readouterr()
    [line] = err.strip().splitlines()
    assert held_endpoint in line and "in use" in line and "--pub tcp://127.0.0.1:0" in line
    assert "demo:" not in out


def test_a_port_in_use_through_the_installed_command(held_endpoint, tmp_path):
    proc = gaitwatch_process("replay", tmp_path / "none.gwrec", "--gallery", tmp_path / "g.db", ok=False)
    assert_one_line_error(proc, "none.gwrec: no such file")  # input errors still come first
    assert_one_line_error(gaitwatch_process("replay", "--pub", held_endpoint, ok=False), held_endpoint, "in use")
    camera = ("camera", "--source", "0", "--gallery", tmp_path / "g.db", "--pub", held_endpoint)
    proc = gaitwatch_process(*camera, ok=False)
    assert_one_line_error(proc, held_endpoint, "tcp://127.0.0.1:0")
    assert not (tmp_path / "g.db").exists()
