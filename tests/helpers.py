"""Helpers shared by the tests: the ``gaitwatch`` command in this process, or as a real process where that matters.

In-process is the default: the same ``main`` a user's shell reaches, its stdout, stderr and exit status, without
a new interpreter importing numpy, onnxruntime and torch for each call. A real process is kept for what only
one can show: signals, the installed entry point, native libraries writing to file descriptor 2.
"""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

GAITWATCH = Path(sys.executable).with_name("gaitwatch")


@dataclass(frozen=True)
class Ran:
    """What a command printed and returned, as ``subprocess.CompletedProcess`` names it."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def gaitwatch(*args: str | Path, ok: bool = True) -> Ran:
    """Run ``gaitwatch ARGS`` in this process; with ``ok``, assert it succeeded."""
    from stream.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse's usage errors and --help / --version
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    ran = Ran(argv, code, out.getvalue(), err.getvalue())
    if ok:
        assert ran.returncode == 0, ran.stderr
    return ran


def gaitwatch_process(*args: str | Path, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``gaitwatch`` as its own process (for signals, native output, the entry point)."""
    assert GAITWATCH.exists(), f"{GAITWATCH} missing: install with pip install -e '.[dev]'"
    proc = subprocess.run([str(GAITWATCH), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def assert_one_line_error(proc: Ran | subprocess.CompletedProcess, *needles: str) -> None:
    """Exit status 2, no traceback, exactly one line on stderr holding each of ``needles``."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def subscribed(publisher, connect, timeout_s: float = 60.0):
    """``connect()`` (which makes a subscriber to ``publisher``), returned once their handshake is done.

    A SUB socket sends its subscriptions as soon as the handshake is done, so events published after
    this reach it; a fixed sleep would be too short on a loaded machine and wasted on an idle one. The
    publisher's side is watched, from before the subscriber exists, so no handshake can be missed."""
    import time

    import zmq
    from zmq.utils.monitor import recv_monitor_message

    monitor = publisher.socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    try:
        subscriber = connect()
        if not monitor.poll(int(timeout_s * 1000)):
            raise AssertionError(f"no handshake with the publisher within {timeout_s} s")
        recv_monitor_message(monitor)
        time.sleep(0.05)  # the subscription message follows the handshake on the same connection
    finally:
        publisher.socket.disable_monitor()
        monitor.close()
    return subscriber
