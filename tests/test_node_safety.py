"""Defects a new user hit with the node's commands: a gallery the demo must not touch, the matcher's
threshold, open-set scoring of a replay, long and interrupted runs, private files, launch-file paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from sensors.errors import InputError
from stream.cli import build_parser
from stream.cli import main as gaitwatch_main
from stream.events import IDENTITY, TRACK_END, TRACK_START
from stream.labels import person_of_identity
from stream.node.cli import threshold_of
from stream.node.launch import launch_argv
from stream.node.printer import EventPrinter
from tests.helpers import GAITWATCH, assert_one_line_error, gaitwatch

ROOT = Path(__file__).resolve().parents[1]


# --- 1. the demo never touches a gallery it did not make ---------------------------------------------


def test_replay_with_a_gallery_but_no_files_refuses_and_leaves_the_gallery_and_its_neighbours(tmp_path, capsys):
    gallery, neighbour = tmp_path / "people.db", tmp_path / "people.db.notes"
    gallery.write_bytes(b"the user's gallery")
    neighbour.write_bytes(b"the user's notes")
    assert gaitwatch_main(["replay", "--gallery", str(gallery), "--pub", "tcp://127.0.0.1:0"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "no files to replay" in error[0]
    assert gallery.read_bytes() == b"the user's gallery" and neighbour.read_bytes() == b"the user's notes"


def test_the_demo_gallery_is_only_ever_a_new_file(tmp_path):
    from engines.runtime.load import open_encoder
    from stream.node.demo import build_demo_gallery, demo_split

    existing, neighbour = tmp_path / "demo.db", tmp_path / "demo.db-wal"
    existing.write_bytes(b"something of the user's")
    neighbour.write_bytes(b"kept")
    with pytest.raises(InputError, match="already exists"):
        build_demo_gallery(existing, open_encoder(), demo_split()[0])
    assert existing.read_bytes() == b"something of the user's" and neighbour.read_bytes() == b"kept"


# --- 2. one matcher threshold per target -------------------------------------------------------------


def _threshold_file(path: Path, sha: str = "abc") -> Path:
    report = {
        "format": "gaitwatch-threshold",
        "version": 2,
        "model": "m.onnx",
        "model_sha256": sha,
        "matcher": {"thresholds": [{"target_far": 0.01, "threshold": 0.0788, "far": 0.009, "dir": 0.7}]},
        "verification": {"thresholds": [{"target_far": 0.01, "threshold": 0.1135, "far": 0.01, "frr": 0.2}]},
    }
    path.write_text(json.dumps(report))
    return path


def test_a_threshold_file_gives_the_matcher_threshold_not_the_verification_one(tmp_path):
    path = _threshold_file(tmp_path / "threshold.json")
    assert threshold_of(str(path), 0.01, "abc") == 0.0788
    with pytest.raises(InputError, match=r"no matcher threshold for --far 0\.1"):
        threshold_of(str(path), 0.1, "abc")
    with pytest.raises(InputError, match=r"calibrated for model 'm\.onnx'"):
        threshold_of(str(path), 0.01, "another model's sha")


def test_a_threshold_file_of_the_old_ambiguous_format_is_refused(tmp_path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"thresholds": [{"target_far": 0.01, "threshold": 0.1135}], "open_set": []}))
    with pytest.raises(InputError, match="calibrate threshold` again"):
        threshold_of(str(old), 0.01)
    for bad in ("-1", "nan", "0"):
        with pytest.raises(InputError, match="positive number"):
            threshold_of(bad, 0.01)


# --- 5. a replay's score is an open-set score --------------------------------------------------------


class _Counters:
    frames = body_frames = tracks = windows = silhouette_windows = decisions = dropped_frames = dropped_windows = 0


class _Publisher:
    sent = dropped = 0


def _walk(printer: EventPrinter, track: str, person: str, identity: int | None, enrolled: bool = False) -> None:
    printer(TRACK_START, {"track": track, "t_capture": 0.0, "labels": {"subject": person}})
    name = None if identity is None else f"id{identity}"
    decision = {"identity": identity, "name": name, "distance": 0.05, "windows": 5}
    known = identity is not None
    printer(IDENTITY, {"track": track, "t_capture": 1.0, "known": known, "enrolled": enrolled, **decision})
    printer(TRACK_END, {"track": track, "t_capture": 2.0, "labels": {"subject": person}, **decision})


def test_the_replay_score_counts_right_unknowns_renamed_and_anonymous_identities_as_right(capsys):
    people = {1: person_of_identity("Alice", {"subject": "07"}), 2: person_of_identity("08", {})}  # 1 was renamed
    printer = EventPrinter(people=lambda: people)
    _walk(printer, "a", "07", 1)  # named right, under its new name
    _walk(printer, "b", "08", 2)  # named right
    _walk(printer, "c", "07", None)  # enrolled but unknown: missed
    _walk(printer, "d", "08", 1)  # named as someone else
    _walk(printer, "e", "09", None)  # not enrolled, rightly unknown
    _walk(printer, "f", "10", 2)  # not enrolled, named as someone
    _walk(printer, "g", "11", 3, enrolled=True)  # not enrolled: enrolled anonymously from this very walk
    _walk(printer, "h", "11", 3)  # ... who is enrolled from then on, and named as that identity when seen again
    score = printer.score
    assert (score.enrolled_right, score.enrolled_wrong, score.enrolled_unknown) == (3, 1, 1)
    assert (score.stranger_unknown, score.stranger_named) == (2, 1)
    out = capsys.readouterr().out
    assert out.count("  right") == 5 and out.count("WRONG") == 2 and out.count("MISSED") == 1
    printer(
        IDENTITY,
        {
            "track": "z",
            "t_capture": 0.0,
            "known": False,
            "identity": None,
            "name": None,
            "distance": None,
            "windows": 1,
        },
    )  # an empty gallery: nothing to compare with
    summary = printer.summary(_Counters(), _Publisher())
    assert "enrolled people named right 3 of 5 tracks (1 named as someone else, 1 unknown)" in summary
    assert "people not enrolled rightly unknown 2 of 3 tracks (1 named as someone)" in summary


# --- 11. long and interrupted runs -------------------------------------------------------------------


def test_a_looping_replay_keeps_no_labels_of_tracks_already_started(tmp_path):
    from engines.runtime.load import open_encoder
    from sensors.replay import Replay
    from stream.events import Publisher
    from stream.node.demo import build_demo_gallery, demo_split
    from stream.node.node import Node, NodeConfig, Source

    encoder = open_encoder()
    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)
    replay = Replay.of(walks[:3], speed=None, loop=True)
    publisher = Publisher("tcp://127.0.0.1:0", "loop")
    config = NodeConfig()
    node = Node([Source(replay, track_labels=replay.track_labels)], encoder, gallery, publisher, config)
    largest = 0

    def watch() -> None:
        nonlocal largest
        while node.counters.tracks < 20 * len(walks[:3]):  # twenty passes
            largest = max(largest, len(replay.track_labels))
            threading.Event().wait(0.01)
        node.stop()

    watcher = threading.Thread(target=watch)
    watcher.start()
    node.run()
    watcher.join()
    publisher.close()
    gallery.close()
    # what is held is bounded by the frames the node may queue (the reader runs ahead of the tracker by at
    # most the frame queue), not by how many passes have been played
    frames_per_pass = sum(walk.num_frames for walk in walks[:3])
    bound = len(walks[:3]) * (config.frame_queue // frames_per_pass + 2)
    assert node.counters.tracks >= 60 and largest <= bound < 60, (largest, bound)


def test_sigterm_ends_the_demo_cleanly_and_removes_its_temporary_gallery(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [str(GAITWATCH), "replay", "--pub", "tcp://127.0.0.1:0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in proc.stdout:  # wait for the node to run, whatever the machine's speed
            if line.startswith("publishing on"):
                break
        assert list(tmp_path.glob("gaitwatch-demo-*")), "the demo's temporary gallery should exist while it runs"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "terminated" in err and "Traceback" not in err
    assert "done: " in out  # what was done until then is summarised
    assert not list(tmp_path.glob("gaitwatch-demo-*"))


# --- 12. files holding biometric data are private ----------------------------------------------------


def test_sensor_calibration_files_are_private_whatever_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        calibration = tmp_path / "sensors.json"
        code = gaitwatch_main(
            ["calibrate", "place", "--calibration", str(calibration), "--sensor-id", "k", "--x", "1", "--z", "2"]
        )
        assert code == 0
    finally:
        os.umask(previous)
    assert calibration.stat().st_mode & 0o777 == 0o600


# --- 14. launch files: every path relative to the file ------------------------------------------------


def test_launch_files_resolve_threshold_and_model_from_their_own_folder(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    path = folder / "node.toml"
    path.write_text(
        '[replay]\npaths = ["a.gwrec"]\ngallery = "~/g.db"\nmodel = "m.onnx"\nthreshold = "cal/threshold.json"\n'
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # anywhere but the launch file's folder
    args = build_parser().parse_args(launch_argv(path, build_parser()))
    assert args.model == str(folder / "m.onnx")
    assert args.threshold == str(folder / "cal" / "threshold.json")
    assert args.gallery == tmp_path / "home" / "g.db"
    path.write_text('[replay]\npaths = ["a.gwrec"]\ngallery = "g.db"\nmodel = "raw"\nthreshold = 0.08\n')
    args = build_parser().parse_args(launch_argv(path, build_parser()))
    assert args.model == "raw" and float(args.threshold) == 0.08


def test_shipped_launch_files_write_nothing_into_the_source_tree():
    parser = build_parser()
    for path in sorted((ROOT / "launch").rglob("*.toml")):
        args = parser.parse_args(launch_argv(path, parser))
        for option in ("gallery", "record", "calibration", "threshold"):
            value = getattr(args, option, None)
            if value is not None and not str(value).startswith("postgresql://"):
                assert not Path(value).resolve().is_relative_to(ROOT), f"{path.name}: {option} = {value}"


def test_enrolling_by_label_keeps_the_label_so_a_renamed_identity_is_still_that_person(tmp_path):
    from sensors.demo import demo_recording_path
    from stream.gallery.gallery import Gallery

    gallery = tmp_path / "g.db"
    assert gaitwatch_main(["gallery", "create", str(gallery)]) == 0
    assert gaitwatch_main(["gallery", "enroll", str(gallery), str(demo_recording_path())]) == 0
    assert gaitwatch_main(["gallery", "rename", str(gallery), "name:07", "Alice"]) == 0
    opened = Gallery.open(gallery)
    people = {person_of_identity(i.name, i.attributes) for i in opened.identities()}
    opened.close()
    assert "07" in people and all(i.isdigit() for i in people)


def test_a_track_shorter_than_a_window_gives_no_window_and_no_error():
    import numpy as np

    from sensors.layouts import KINECT_V1
    from sensors.recording import Recording
    from stream.windows import track_windows

    short = Recording.single_body(KINECT_V1, np.zeros((4, 20, 3), np.float32), 30.0)
    [part] = track_windows(short, 6, 30.0)
    assert part.windows.shape == (0, 6, 20, 3) and part.skipped == 0


def test_values_that_would_silently_mean_nothing_are_refused(tmp_path):
    """A negative matcher threshold in a file, a negative listen timeout, an empty name, an infinite number in a
    launch file: each one clear error instead of a node that names nobody or a listener that never listens."""
    path = _threshold_file(tmp_path / "threshold.json")
    report = json.loads(path.read_text())
    report["matcher"]["thresholds"][0]["threshold"] = -3.0
    path.write_text(json.dumps(report))
    with pytest.raises(InputError, match="no positive distance"):
        threshold_of(str(path), 0.01, "abc")
    assert_one_line_error(gaitwatch("listen", "tcp://127.0.0.1:1", "--timeout", "-1", ok=False), "--timeout")
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, demo_recording(), "--name", "Ana")
    assert_one_line_error(gaitwatch("gallery", "rename", gallery, "Ana", " ", ok=False), "must be some text")
    launch = tmp_path / "node.toml"
    launch.write_text("[replay]\nstride = 1e400\n")
    assert_one_line_error(gaitwatch("launch", launch, ok=False), "stride", "finite number")


def demo_recording() -> Path:
    from sensors.demo import demo_recording_path

    return demo_recording_path()
