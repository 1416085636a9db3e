"""The node end to end with real sockets: the demo, KGBD probe walks at real-time pace, drops, the commands."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engines.runtime.load import open_encoder
from sensors.replay import Replay
from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START, Publisher, schema
from stream.gallery.gallery import Gallery
from stream.node.demo import build_demo_gallery, demo_split
from stream.node.node import Node, NodeConfig, Source
from stream.subscriber import Subscriber
from tests.helpers import assert_one_line_error, gaitwatch, subscribed
from tests.shared_data import KGBD_ZIP


@pytest.fixture(scope="module")
def encoder():
    return open_encoder()


def run_with_subscriber(node_for) -> tuple[list, Subscriber, Publisher, object]:
    """Bind a publisher on a free loopback port, connect a subscriber, run the node, collect every event.

    The subscriber reads until the node's last status says it finished (however slow the machine is);
    the long timeout only ends a run whose node never says so."""
    publisher = Publisher("tcp://127.0.0.1:0", "test-node")
    subscriber = subscribed(publisher, lambda: Subscriber(publisher.endpoint, timeout_s=300.0))
    events: list = []

    def read() -> None:
        for event in subscriber:
            events.append(event)
            if event.topic == STATUS and event.payload.get("finished"):
                return

    reader = threading.Thread(target=read)
    reader.start()
    node = node_for(publisher)
    counters = node.run()
    reader.join()
    publisher.close()
    subscriber.close()
    return events, subscriber, publisher, counters


def test_demo_events_all_arrive_follow_the_schema_and_name_the_walkers(tmp_path: Path, encoder):
    import jsonschema

    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)
    replay = Replay.of(walks, speed=None)
    events, subscriber, publisher, counters = run_with_subscriber(
        lambda pub: Node([Source(replay, track_labels=replay.track_labels)], encoder, gallery, pub, NodeConfig())
    )
    assert len(events) == publisher.sent and subscriber.gaps == 0 and publisher.dropped == 0
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    validator = jsonschema.Draft202012Validator(schema())
    for event in events:
        validator.validate(event.payload)
    ends = [e.payload for e in events if e.topic == TRACK_END]
    assert len(ends) == len(walks) == counters.tracks
    right = sum(end["name"] == f"CMU subject {end['labels']['subject']}" for end in ends)
    assert right >= 15, f"named {right} of {len(ends)} demo walks right"
    assert events[-1].topic == STATUS and events[-1].payload["finished"]


def test_a_live_source_drops_the_oldest_frames_when_the_node_falls_behind(tmp_path: Path, encoder):
    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)
    frames = list(Replay.of(walks * 3, speed=None))
    config = NodeConfig(frame_queue=8)
    events, _, _, counters = run_with_subscriber(
        lambda pub: Node([Source(iter(frames), live=True)], encoder, gallery, pub, config)
    )
    assert counters.dropped_frames > 0 and counters.frames + counters.dropped_frames == len(frames)
    assert events[-1].payload["dropped"]["frames"] == counters.dropped_frames


def test_a_failing_source_ends_the_node_with_its_error(tmp_path: Path, encoder):
    from sensors.errors import InputError

    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)

    def frames_then_failure():
        yield from list(Replay.of(walks[:2], speed=None))
        raise InputError("camera.avi: frame 61 is corrupt")

    publisher = Publisher("tcp://127.0.0.1:0", "failing")
    node = Node([Source(frames_then_failure())], encoder, gallery, publisher, NodeConfig())
    with pytest.raises(InputError, match="frame 61 is corrupt"):
        node.run()
    publisher.close()
    assert node.counters.frames > 0 and node.counters.tracks >= 1  # what came before the failure went through


def test_a_track_too_short_for_a_window_is_never_announced(tmp_path: Path, encoder):
    from sensors.recording import Recording

    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)
    walk = walks[0]
    glimpse = Recording.single_body(walk.layout, walk.joints[:4], walk.rate_hz)  # 4 frames: less than a window
    replay = Replay.of([glimpse, walk, glimpse], speed=None)
    events: list[tuple[str, dict]] = []
    publisher = Publisher("tcp://127.0.0.1:0", "glimpses")
    node = Node(
        [Source(replay, track_labels=replay.track_labels)],
        encoder,
        gallery,
        publisher,
        NodeConfig(),
        on_event=lambda topic, payload: events.append((topic, payload)),
    )
    counters = node.run()
    publisher.close()
    topics = [(topic, payload.get("track")) for topic, payload in events if topic != STATUS]
    assert topics[0] == (TRACK_START, "replay/1") and topics[-1] == (TRACK_END, "replay/1")  # the walk alone
    assert {track for _, track in topics} == {"replay/1"} and counters.tracks == 1
    assert all(track["track"] == "replay/1" for topic, p in events if topic == STATUS for track in p["tracks"])
    assert [p["windows"] for topic, p in events if topic == TRACK_END] == [counters.windows]


@pytest.mark.slow
@pytest.mark.skipif(not KGBD_ZIP.exists(), reason=f"KGBD not found at {KGBD_ZIP}")
def test_kgbd_probe_walks_at_real_time_pace_match_the_offline_walk_level_evaluation(tmp_path: Path, encoder):
    from engines.evaluate import evaluate
    from engines.protocol import TRIM_FRAMES, load_protocol, load_split
    from sensors.formats.kgbd import KgbdDataset, walk_recording
    from stream.kgbd_scores import enroll_gallery_walks

    split = load_split("kgbd:0")
    data = load_protocol(KGBD_ZIP, split, progress=False)
    offline = evaluate(encoder, data)["walk"].top1 * 100
    gallery = Gallery.create(tmp_path / "g.db", encoder.card)
    enroll_gallery_walks(gallery, encoder, data)
    dataset = KgbdDataset(KGBD_ZIP)
    walks = {(w.person, w.walk): w for w in dataset.walks}
    sources = []
    for person, number in split.walks("probe"):  # every probe walk is its own sensor, all at once, in real time
        joints = dataset.read(walks[(person, number)]).joints[TRIM_FRAMES:-TRIM_FRAMES]  # as the protocol cuts
        recording = walk_recording(joints, person, number, "kgbd")
        replay = Replay.of([recording], speed=1.0, sensor_id=f"{person}/{number}")
        sources.append(Source(replay, track_labels=replay.track_labels))
    events, subscriber, publisher, counters = run_with_subscriber(
        lambda pub: Node(sources, encoder, gallery, pub, NodeConfig())
    )
    assert subscriber.gaps == 0 and len(events) == publisher.sent and publisher.dropped == 0
    assert counters.dropped_frames == counters.dropped_windows == 0
    ends = [e.payload for e in events if e.topic == TRACK_END]
    assert len(ends) == len(sources)
    live = 100 * np.mean([end["name"] == end["labels"]["person"] for end in ends])
    assert abs(live - offline) <= 1.0, f"live walk-level top-1 {live:.2f} vs offline {offline:.2f}"
    identities = [e for e in events if e.topic == IDENTITY]
    assert len(identities) > 1000
    print(f"live walk-level top-1 {live:.2f} %, offline {offline:.2f} %, {len(ends)} walks, {len(events)} events")


def test_a_late_subscriber_gets_the_current_tracks_from_the_next_status(tmp_path: Path, encoder):
    from stream.node.bench import crowd

    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)
    recording = crowd(walks, sensor=0, bodies=6, seconds=60.0)  # far longer than the test needs: stopped below
    publisher = Publisher("tcp://127.0.0.1:0", "late")
    node = Node([Source(Replay.of([recording], speed=1.0))], encoder, gallery, publisher, NodeConfig())
    runner = threading.Thread(target=node.run)
    runner.start()
    while node.counters.decisions < 12:  # every track identified before this subscriber exists
        assert runner.is_alive(), "the node ended before identifying its tracks"
        time.sleep(0.05)
    with Subscriber(publisher.endpoint, topics=[STATUS], timeout_s=30.0) as late:
        status = late.receive(timeout_s=30.0)
    node.stop()
    runner.join()
    publisher.close()
    assert status is not None and len(status.payload["tracks"]) == 6
    assert all(track["name"].startswith("CMU subject") for track in status.payload["tracks"])


def test_replay_command_runs_the_demo_and_refuses_bad_input(tmp_path: Path):
    recorded = tmp_path / "seen.gwrec"
    out = gaitwatch("replay", "--speed", "max", "--pub", "tcp://127.0.0.1:0", "--quiet", "--record", recorded).stdout
    assert "demo: 8 CMU subjects enrolled" in out and "18 tracks" in out
    from sensors.formats import read_file

    assert f"done: {read_file(recorded).num_frames} frames" in out  # every frame the node saw, recorded
    assert "dropped 0 frames, 0 windows, 0 events" in out
    proc = gaitwatch("replay", tmp_path / "x.gwrec", ok=False)
    assert_one_line_error(proc, "--gallery is required")
    proc = gaitwatch("replay", "--speed", "fast", ok=False)
    assert_one_line_error(proc, "'fast'")
    proc = gaitwatch("replay", "--threshold", tmp_path / "absent.json", ok=False)
    assert_one_line_error(proc, "neither a number nor a readable file")
    bad = tmp_path / "node.toml"
    bad.write_text("[replay]\nspede = 2\n")
    assert_one_line_error(gaitwatch("launch", bad, ok=False), "spede: unknown setting")


def test_listen_prints_what_a_node_publishes(tmp_path: Path):
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a free port for the node to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = subprocess.Popen(
        [sys.executable, "-m", "stream", "listen", f"tcp://127.0.0.1:{port}", "--plain", "--until-finished"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    # at 8x the recorded pace the demo lasts some seconds: the listener has long connected when it ends
    gaitwatch("replay", "--speed", "8", "--pub", f"tcp://127.0.0.1:{port}", "--quiet")
    out, _ = listener.communicate(timeout=120)
    assert "end    CMU subject" in out and "status" in out and "0 lost (sequence gaps)" in out


def test_a_tilted_sensor_names_people_again_once_its_floor_is_calibrated(tmp_path: Path, encoder):
    """The demo walks as a sensor pitched 60 degrees down sees them (a ceiling mount): the encoders were trained on
    sensors within 10 degrees of level, so the tilt costs identities (the shipped model named 16 of 18 at 45
    degrees, 10 at 60); the floor fitted from the same frames levels them again."""
    from dataclasses import replace

    from calibration.floor import fit_floor
    from calibration.mapping import to_canonical
    from calibration.sensor_pose import SensorPose
    from sensors.formats.gwrec import write_recording
    from sensors.recording import Recording
    from tests.helpers import seen_by, turn

    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)
    tilted = seen_by([to_canonical(w) for w in walks], SensorPose(turn(-60, 0, 0), np.array([0.0, 1.6, 0.0])))
    level = SensorPose.level(fit_floor(tilted))

    def named_right(poses: dict) -> int:
        replay = Replay.of(tilted, speed=None, sensor_id="cam")
        config = NodeConfig(sensor_poses=poses)
        events, *_ = run_with_subscriber(
            lambda pub: Node([Source(replay, track_labels=replay.track_labels)], encoder, gallery, pub, config)
        )
        ends = [e.payload for e in events if e.topic == TRACK_END]
        assert len(ends) == len(walks)
        return sum(end["name"] == f"CMU subject {end['labels']['subject']}" for end in ends)

    as_sensed, calibrated = named_right({}), named_right({"cam": level})
    assert calibrated >= 15, f"calibrated: {calibrated} of {len(walks)} named right"
    assert as_sensed <= calibrated - 4, f"tilted: {as_sensed}, calibrated: {calibrated}"

    # the same through the commands: calibrate the recording's sensor, replay it with --calibration
    recording = tmp_path / "tilted.gwrec"
    write_recording(recording, replace(Recording.concatenate(tilted), sensor_id="lab-cam"))
    calibration = tmp_path / "sensors.json"
    gaitwatch("calibrate", "floor", recording, "--calibration", calibration)
    common = ("replay", recording, "--gallery", tmp_path / "demo.db", "--speed", "max", "--pub", "tcp://127.0.0.1:0")
    proc = gaitwatch(*common, "--calibration", calibration)
    assert "no calibration" not in proc.stderr and "18 tracks" in proc.stdout
    other = tmp_path / "other.json"
    gaitwatch("calibrate", "place", "--calibration", other, "--sensor-id", "elsewhere")
    proc = gaitwatch(*common, "--calibration", other, "--quiet")
    assert "sensor 'lab-cam' has no calibration" in proc.stderr
    gaitwatch("gallery", "create", tmp_path / "lab.db")
    enrolled = gaitwatch("gallery", "enroll", tmp_path / "lab.db", recording, "--calibration", other, "--name", "x")
    assert "sensor 'lab-cam' has no calibration" in enrolled.stderr and "enrolled" in enrolled.stdout


def test_a_failure_in_the_encoding_thread_ends_the_node_with_its_error(tmp_path: Path, encoder):
    """A gallery that refuses a write (here: opened read-only) while the node enrolls an unknown walker: run()
    raises that error, instead of a dead thread behind a node that goes on and exits as if all went well."""
    from sensors.errors import InputError

    enroll, walks = demo_split()
    build_demo_gallery(tmp_path / "demo.db", encoder, enroll).close()
    readonly = Gallery.open(tmp_path / "demo.db", encoder.card, writable=False)
    publisher = Publisher("tcp://127.0.0.1:0", "failing")
    config = NodeConfig(threshold=1e-9, enroll_after=3)  # nobody is near enough: every walker is enrolled
    node = Node([Source(Replay.of(walks * 3, speed=None))], encoder, readonly, publisher, config)
    with pytest.raises(InputError, match="read-only"):
        node.run()
    publisher.close()
    readonly.close()
