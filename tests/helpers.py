"""Helpers shared by the tests: the ``gaitwatch`` command in this process, or as a real process where that matters.

In-process is the default: the same ``main`` a user's shell reaches, its stdout, stderr and exit status, without
a new interpreter importing numpy, onnxruntime and torch for each call. A real process is kept for what only
one can show: signals, the installed entry point, native libraries writing to file descriptor 2.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from calibration.sensor_pose import SensorPose
from sensors.recording import Recording
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin, TrackMeans

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


# --- galleries of synthetic people -----------------------------------------------------------------------


DIM = 16


def card(sha: str = "a" * 64, dim: int = DIM) -> dict:
    return {
        "file": {"sha256": sha, "name": f"model-{sha[:4]}.onnx"},
        "method": "simmc",
        "embedding_dim": dim,
        "metric": "euclidean",
        "f": 6,
    }


def people(n: int, per: int, seed: int = 0, spread: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n, DIM)).astype(np.float32)
    labels = np.repeat(np.arange(n), per)
    return (centres[labels] + spread * rng.normal(size=(len(labels), DIM))).astype(np.float32), labels


def origins(n: int) -> list[Origin]:
    return [Origin("test.gwrec", track="1", t_start=float(i), t_end=float(i) + 0.2) for i in range(n)]


def fill(gallery: Gallery, vectors: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Enroll each label as an identity; returns label -> identity id."""
    ids = {}
    for label in np.unique(labels):
        ids[int(label)] = gallery.add_identity(f"person {label}")
        rows = vectors[labels == label]
        gallery.enroll(ids[int(label)], rows, origins(len(rows)))
    return ids


def assert_tracks_equal_the_store(gallery: Gallery) -> None:
    """The index of track means holds exactly the store's tracks (label, identity, count) and their means."""
    truth, rows = gallery.store.track_means(), gallery.tracks.index
    assert np.array_equal(rows.ids, truth.labels) and np.array_equal(rows.owners, truth.owners)
    assert np.array_equal(rows.counts, truth.counts)
    np.testing.assert_allclose(rows.vectors, truth.means, rtol=1e-6, atol=1e-6)


def exact_nearest_identities(truth: TrackMeans, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Brute force over track means in float64: per query, the k identities nearest by their nearest track mean."""
    means = truth.means.astype(np.float64)
    out = []
    for query in np.asarray(queries, np.float64):
        distances = np.sqrt(((means - query) ** 2).sum(1))
        best: dict[int, float] = {}
        for row in np.argsort(distances, kind="stable"):
            best.setdefault(int(truth.owners[row]), float(distances[row]))
        out.append(sorted(best.items(), key=lambda item: item[1])[:k])
    return out


# --- sensor geometry ---------------------------------------------------------------------------------------


def turn(pitch_deg: float, roll_deg: float, yaw_deg: float) -> np.ndarray:
    p, r, y = (math.radians(v) for v in (pitch_deg, roll_deg, yaw_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    return ry @ rx @ rz


def seen_by(walks: list[Recording], sensor_to_world: SensorPose, sensor_id: str = "cam") -> list[Recording]:
    """The (world-frame) walks as a sensor with this pose records them."""
    to_sensor = sensor_to_world.inverse()
    return [replace(w, joints=to_sensor.apply(w.joints), sensor_id=sensor_id) for w in walks]
