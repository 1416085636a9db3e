"""A whole site from real parts: a PostgreSQL gallery, a hub, and three nodes in separate processes replaying
different walks of the same people; and a node that keeps matching while the database is down."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sensors.formats.gwrec import write_recording
from stream.events import IDENTITY
from stream.node.demo import demo_split
from stream.subscriber import Event, Subscriber
from tests.helpers import GAITWATCH, gaitwatch
from tests.postgres import Server
from tests.test_hub import free_port, heard_from, hub_process

SPEED = "4"


@pytest.fixture(scope="module")
def walks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """The demo's CMU walks as files, one walk each, its sensor named after its subject: node 1 gets each
    subject's first walk, nodes 2 and 3 share the others."""
    folder = tmp_path_factory.mktemp("walks")
    first, others = demo_split()
    split = {"door-1": first, "door-2": others[0::2], "door-3": others[1::2]}
    files: dict[str, list[Path]] = {}
    for node, recordings in split.items():
        for recording in recordings:
            subject = str(recording.metadata["subject"])
            path = folder / f"{node}-{recording.metadata['trial']}.gwrec"
            write_recording(path, dataclasses.replace(recording, sensor_id=f"cmu-{subject}"))
            files.setdefault(node, []).append(path)
    return files


@contextmanager
def node(name: str, files: list[Path], url: str, hub: str, *extra: str) -> Iterator[subprocess.Popen]:
    command = [str(GAITWATCH), "replay", *map(str, files), "--gallery", url, "--hub", hub, "--node-id", name]
    proc = subprocess.Popen(
        [*command, "--speed", SPEED, "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def identity_events(subscriber: Subscriber, seconds: float) -> list[Event]:
    events, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        event = subscriber.receive(timeout_s=0.1)
        if event is not None and event.topic == IDENTITY:
            events.append(event)
    return events


def enrollments_until_exit(door: subprocess.Popen, subscriber: Subscriber, name: str) -> dict[int, str]:
    """identity -> sensor (the subject) of every enrollment ``name`` published, until it exits and a moment after."""
    enrolled: dict[int, str] = {}
    drained = None
    while drained is None or time.monotonic() < drained:
        event = subscriber.receive(timeout_s=0.1)
        if event is not None and event.publisher == name and event.payload.get("enrolled"):
            enrolled[event.identity] = event.payload["sensor"]
        if drained is None and door.poll() is not None:
            drained = time.monotonic() + 2.0  # what it sent last is still on its way
    return enrolled


def test_a_person_enrolled_on_one_node_is_named_by_the_other_nodes(walks, pg_url: str):
    gaitwatch("gallery", "create", pg_url)
    inputs, outputs = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    with (
        hub_process(inputs, outputs),
        Subscriber(outputs) as subscriber,
        node("door-2", walks["door-2"], pg_url, inputs, "--loop") as door2,
        node("door-3", walks["door-3"], pg_url, inputs, "--loop") as door3,
    ):
        assert heard_from(subscriber, {"door-2", "door-3"}) == {"door-2", "door-3"}, (door2.poll(), door3.poll())
        with node("door-1", walks["door-1"], pg_url, inputs, "--enroll-after", "8", "--threshold", "1e-9") as door1:
            enrolled = enrollments_until_exit(door1, subscriber, "door-1")
            assert door1.returncode == 0, door1.stderr.read()
        assert len(enrolled) >= 6, f"door 1 enrolled {len(enrolled)} of 8 subjects"
        later = identity_events(subscriber, 15.0)  # a loop or more of doors 2 and 3 after the enrollments
    for door in ("door-2", "door-3"):
        last = {e.track: e for e in later if e.publisher == door}  # each walk's last decision
        named = [e for e in last.values() if e.identity in enrolled]
        right = [e for e in named if enrolled[e.identity] == e.payload["sensor"]]
        assert named, f"{door} never named anyone door 1 enrolled"
        assert len(right) >= len(last) / 2, f"{door}: {len(right)} of {len(last)} walks named as door 1 enrolled them"


def test_a_node_keeps_matching_while_the_database_is_down_and_enrolls_once_it_is_back(
    walks, pg_url: str, postgres: Server
):
    gaitwatch("gallery", "create", pg_url)
    gaitwatch("gallery", "enroll", pg_url, *walks["door-1"], "--label", "subject")
    inputs, outputs = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    with hub_process(inputs, outputs), Subscriber(outputs) as subscriber:
        enrolling = ("--loop", "--enroll-after", "8", "--threshold", "1e-9")  # every walk unknown: all enroll
        with node("door-2", walks["door-2"], pg_url, inputs, *enrolling) as door:
            assert heard_from(subscriber, {"door-2"}) == {"door-2"}
            postgres.stop()
            try:
                down = identity_events(subscriber, 8.0)
                assert door.poll() is None, door.stderr.read()
                decided = [e for e in down if e.publisher == "door-2" and e.distance is not None]
                assert decided, "no decisions on the replica while the database was down"
                assert not any(e.payload.get("enrolled") for e in down)
            finally:
                postgres.start()
            back = identity_events(subscriber, 20.0)
            assert any(e.publisher == "door-2" and e.payload.get("enrolled") for e in back), "never enrolled again"
        door.wait(timeout=60)
        assert "not enrolled" in door.stderr.read()
    assert "anonymous-" in gaitwatch("gallery", "list", pg_url).stdout
