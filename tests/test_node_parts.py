"""The node's parts: ring buffers, the tracker, event parsing, launch files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import InputError
from sensors.frame import Frame
from sensors.layouts import CANONICAL
from stream.cli import build_parser
from stream.node.launch import launch_argv
from stream.node.ring import WindowRing
from stream.node.tracker import Tracker
from stream.subscriber import MalformedEvent, parse

ROOT = Path(__file__).resolve().parents[1]


def walk(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 20, 3)).astype(np.float32)


def test_ring_at_the_model_rate_cuts_whole_windows_every_stride():
    frames, ring, out = walk(40), WindowRing(6, 30.0, 3), []
    for i, joints in enumerate(frames):
        out += ring.push(i / 30, joints)
    assert len(out) == 12  # windows end at frames 5, 8, ..., 38
    for k, (window, t_start, t_end) in enumerate(out):
        np.testing.assert_array_equal(window, frames[3 * k : 3 * k + 6])
        assert t_start == pytest.approx(3 * k / 30) and t_end == pytest.approx((3 * k + 5) / 30)


def test_ring_resamples_a_faster_source_and_restarts_on_gaps_and_missing_joints():
    frames = walk(100)
    ring, out = WindowRing(6, 30.0, 6), []
    for i, joints in enumerate(frames[:48]):  # 120 Hz: every 4th frame lies on the 30 Hz grid
        out += ring.push(i / 120, joints)
    assert len(out) == 2
    np.testing.assert_allclose(out[0][0], frames[0:24:4], atol=1e-6)
    ring, out = WindowRing(6, 30.0, 6), []
    times = [i / 30 for i in range(10)] + [1.0 + i / 30 for i in range(10)]  # a 0.7 s gap after frame 9
    for t, joints in zip(times, frames, strict=False):
        out += ring.push(t, joints)
    assert ring.restarts == 1 and [round(w[2] * 30) for w in out] == [5, 35]  # never across the gap
    bad = frames[:12].copy()
    bad[4, 7] = np.nan
    ring, out = WindowRing(6, 30.0, 6), []
    for i, joints in enumerate(bad):
        out += ring.push(i / 30, joints)
    assert ring.restarts == 1 and len(out) == 1  # 4 frames before the NaN: none; 7 after: one window
    np.testing.assert_array_equal(out[0][0], bad[5:11])


def frame(t: float, ids: list[int], centres: list[float], sensor: str = "s") -> Frame:
    joints = np.stack([np.full((20, 3), c, np.float32) for c in centres]) if centres else np.zeros((0, 20, 3))
    return Frame(sensor, 0, t, CANONICAL, np.asarray(ids, np.int64), joints.astype(np.float32), np.ones((len(ids), 20)))


def test_tracker_keeps_sensor_ids_and_ends_tracks_after_the_timeout():
    tracker = Tracker(timeout_s=0.5)
    first = tracker.update(frame(0.0, [4, 9], [0.0, 3.0]))
    assert first.keys == ["s/4", "s/9"] and first.started == ["s/4", "s/9"]
    assert tracker.update(frame(0.3, [9], [3.0])).ended == []
    later = tracker.update(frame(0.7, [9], [3.0]))
    assert later.ended == [("s/4", 0.0)] and later.keys == ["s/9"]
    assert tracker.end_all() == [("s/9", 0.7)]


def test_tracker_associates_bodies_without_ids_by_position():
    tracker = Tracker(timeout_s=0.5, max_jump_m=0.5)
    start = tracker.update(frame(0.0, [-1, -1], [0.0, 2.0]))
    a, b = start.keys
    assert a != b and len(start.started) == 2
    swapped = tracker.update(frame(0.03, [-1, -1], [2.05, 0.05]))  # listed the other way round, moved a little
    assert swapped.keys == [b, a] and swapped.started == []
    jumped = tracker.update(frame(0.06, [-1], [5.0]))  # too far from both: someone new
    assert jumped.started == jumped.keys and jumped.keys[0] not in (a, b)


def test_track_keys_are_unique_over_a_run_when_a_sensor_reuses_an_id():
    tracker = Tracker(timeout_s=0.5)
    assert tracker.update(frame(0.0, [0], [0.0])).started == ["s/0"]
    again = tracker.update(frame(1.0, [0], [0.0]))  # id 0 after the timeout: the first track ended, a new one
    assert again.ended == [("s/0", 0.0)] and again.started == again.keys == ["s/0#2"]
    assert tracker.update(frame(2.0, [0, 1], [0.0, 3.0])).started == ["s/0#3", "s/1"]
    assert tracker.update(frame(2.0, [0], [0.0], sensor="t")).started == ["t/0"]  # another sensor's own ids
    anonymous = [tracker.update(frame(4.0 + k, [-1], [0.0], sensor=sensor)).started for k, sensor in enumerate("sst")]
    assert anonymous == [["s/a1"], ["s/a2"], ["t/a3"]]


def test_malformed_messages_are_named():
    good = {"schema": 1, "topic": "gaitwatch.status", "publisher": "n", "seq": 3, "t_emit": 1.0}
    with pytest.raises(MalformedEvent, match="2 message parts"):
        parse([b"gaitwatch.status"])
    with pytest.raises(MalformedEvent, match="unreadable message"):
        parse([b"gaitwatch.status", b"{not json"])
    with pytest.raises(MalformedEvent, match="schema version 7"):
        parse([b"gaitwatch.status", json.dumps({**good, "schema": 7}).encode()])
    with pytest.raises(MalformedEvent, match="lacks seq"):
        parse([b"gaitwatch.status", json.dumps({k: v for k, v in good.items() if k != "seq"}).encode()])
    seen: dict[str, int] = {}
    assert parse([b"t", json.dumps(good).encode()], seen).missed == 0
    assert parse([b"t", json.dumps({**good, "seq": 7}).encode()], seen).missed == 3


def test_shipped_launch_files_stand_for_valid_commands():
    parser = build_parser()
    for path in sorted((ROOT / "launch").rglob("*.toml")):
        argv = launch_argv(path, parser)
        args = parser.parse_args(argv)
        assert args.command in ("replay", "listen", "camera", "kinect", "hub", "dashboard")
    demo = launch_argv(ROOT / "launch" / "replay-demo.toml", parser)
    assert demo[:3] == ["replay", "--speed", "1"] and "--pub" in demo


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[replay]\nsped = 2\n", r"\[replay\] sped: unknown setting \(known: .*speed"),
        ("[replay]\nloop = 'yes'\n", r"\[replay\] loop: expected true or false"),
        ("[replay]\npaths = 'a.gwrec'\n", r"\[replay\] paths: expected a list"),
        ("[replay]\nspeed = [1, 2]\n", r"\[replay\] speed: expected one value"),
        ("[replay]\n[listen]\n", "expected exactly one table"),
        ("[train]\n", "expected exactly one table"),
        ("[replay\n", "not valid TOML"),
    ],
)
def test_bad_launch_files_are_one_clear_error(tmp_path: Path, text: str, message: str):
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        launch_argv(path, build_parser())


def test_launch_paths_are_relative_to_the_launch_file(tmp_path: Path):
    path = tmp_path / "sub" / "node.toml"
    path.parent.mkdir()
    path.write_text('[replay]\npaths = ["a.gwrec"]\ngallery = "../g.db"\nloop = true\n')
    argv = launch_argv(path, build_parser())
    assert argv == ["replay", str(path.parent / "a.gwrec"), "--gallery", str(path.parent / "../g.db"), "--loop"]
