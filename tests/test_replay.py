"""Replay plays recordings as one stream: paced by the recorded clock, fresh tracks, labels kept."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.layouts import KINECT_V1
from sensors.recording import Recording
from sensors.replay import Replay


def walk(n: int, person: str, rate: float = 30.0) -> Recording:
    joints = np.zeros((n, 20, 3), np.float32)
    return Recording.single_body(KINECT_V1, joints, rate, track_id=5, metadata={"person": person})


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_as_fast_as_possible_plays_everything_in_order_with_fresh_tracks():
    replay = Replay.of([walk(10, "ana"), walk(5, "bo")], speed=None, gap_s=1.0)
    frames = list(replay)
    assert [f.seq for f in frames] == list(range(15))
    times = np.array([f.t for f in frames])
    assert np.all(np.diff(times) > 0)
    assert times[10] - times[9] == pytest.approx(1 / 30 + 1.0)
    assert [int(f.track_ids[0]) for f in frames] == [0] * 10 + [1] * 5
    assert replay.track_labels[0]["person"] == "ana" and replay.track_labels[1]["person"] == "bo"
    assert all(f.sensor_id == "replay" for f in frames)


def test_paced_replay_follows_the_recorded_clock_times_speed():
    fake = FakeClock()
    replay = Replay.of([walk(31, "ana")], speed=2.0, clock=fake.clock, sleep=fake.sleep)
    arrivals = []
    for frame in replay:
        arrivals.append((frame.t, fake.now))
    start = arrivals[0][1]
    for t, wall in arrivals:
        assert wall - start == pytest.approx(t / 2.0)
    assert fake.now - start == pytest.approx(0.5)


def test_loop_starts_over_with_new_tracks():
    replay = Replay.of([walk(3, "ana")], speed=None, loop=True)
    frames = []
    for frame in replay:
        frames.append(frame)
        if len(frames) == 9:
            break
    assert [int(f.track_ids[0]) for f in frames] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(replay.track_labels[k]["person"] == "ana" for k in range(3))


def test_bad_speed():
    with pytest.raises(ValueError, match="speed"):
        Replay.of([], speed=0)


def test_bodies_without_an_id_are_recorded_read_and_replayed_as_id_less_people(tmp_path):
    """A pose estimator gives no ids (-1): two people in one frame are two bodies, never one track twice."""
    from sensors.formats.gwrec import read_gwrec, write_recording

    n = 4
    joints = np.zeros((2 * n, 20, 3), np.float32)
    joints[1::2, :, 0] = 2.0  # the second person stands 2 m to the side
    seen = Recording(
        layout=KINECT_V1,
        t=np.arange(n) / 30.0,
        seq=np.arange(n, dtype=np.int64),
        body_offsets=np.arange(0, 2 * n + 1, 2, dtype=np.int64),
        track_ids=np.full(2 * n, -1, np.int64),
        joints=joints,
        confidence=np.ones((2 * n, 20), np.float32),
        rate_hz=30.0,
    )
    write_recording(tmp_path / "two.gwrec", seen)
    back = read_gwrec(tmp_path / "two.gwrec")
    assert back.num_body_frames == 2 * n and (back.track_ids == -1).all()
    frames = list(Replay.of([back], speed=None))
    assert [frame.track_ids.tolist() for frame in frames] == [[-1, -1]] * n
