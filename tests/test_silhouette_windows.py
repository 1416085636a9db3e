"""Silhouette windows per track: f silhouettes of one person, never across a gap, on the model's time grid."""

from __future__ import annotations

import numpy as np
import pytest

from sensors.errors import InputError
from sensors.formats.gwsil import SilhouetteRecords
from sensors.layouts import MEDIAPIPE_POSE
from sensors.recording import Recording
from sensors.silhouette_windows import SilhouetteRing, on_grid, track_silhouettes, windows_of


def numbered(n: int) -> np.ndarray:
    """Silhouettes whose pixels say which frame they are."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None], (n, 64, 44)).copy()


def test_windows_are_whole_and_never_span_a_gap():
    t = np.r_[np.arange(10) / 25, 2.0 + np.arange(7) / 25]  # 10 frames, a gap of 1.6 s, 7 frames
    windows, t_start, t_end = windows_of(t, numbered(17), f=4, stride=2)
    firsts = windows[:, :, 0, 0]
    assert firsts.tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9], [10, 11, 12, 13],
                               [12, 13, 14, 15]]  # fmt: skip
    assert t_start[4] == pytest.approx(2.0) and t_end[0] == pytest.approx(3 / 25)


def test_a_track_shorter_than_a_window_has_none():
    windows, t_start, _ = windows_of(np.arange(3) / 25, numbered(3), f=4)
    assert windows.shape == (0, 4, 64, 44) and len(t_start) == 0


def test_a_slower_camera_repeats_frames_on_the_model_grid_and_a_faster_one_skips():
    picks, times = on_grid(np.arange(5) / 25, rate_hz=75)  # 25 fps camera, 75 Hz model
    assert picks.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    assert np.diff(times) == pytest.approx(np.full(12, 1 / 75))
    picks, _ = on_grid(np.arange(9) / 100, rate_hz=50)
    assert picks.tolist() == [0, 2, 4, 6, 8]


def test_times_must_increase():
    with pytest.raises(InputError, match="must increase"):
        windows_of(np.array([0.0, 0.04, 0.04]), numbered(3), f=2)


def test_the_live_ring_cuts_what_the_offline_cut_does():
    t = np.r_[np.arange(10) / 25, 2.0 + np.arange(7) / 25]
    frames = numbered(17)
    offline, starts, _ = windows_of(t, frames, f=4, stride=2)
    ring = SilhouetteRing(f=4, stride=2)
    live = [w for w in (ring.push(float(ti), s) for ti, s in zip(t, frames, strict=True)) if w is not None]
    assert len(live) == len(offline)
    for (window, start), expected, expected_start in zip(live, offline, starts, strict=True):
        assert np.array_equal(window, expected) and start == pytest.approx(expected_start)
    assert ring.restarts == 1


def test_silhouettes_follow_the_tracks_of_their_recording():
    # two people in every frame: body 0 is track 7, body 1 is track 9; one silhouette missing (track 9, frame 3)
    n = 8
    recording = Recording(
        layout=MEDIAPIPE_POSE,
        t=np.arange(n) / 25,
        seq=np.arange(100, 100 + n),
        body_offsets=np.arange(0, 2 * n + 1, 2),
        track_ids=np.tile([7, 9], n),
        joints=np.zeros((2 * n, 33, 3), np.float32),
        confidence=np.ones((2 * n, 33), np.float32),
    )
    rows = [(i, b) for i in range(n) for b in (0, 1) if (i, b) != (3, 1)]
    silhouettes = np.stack([np.full((64, 44), 10 * b + i, np.uint8) for i, b in rows])
    records = SilhouetteRecords(
        seq=np.array([100 + i for i, _ in rows]),
        body_index=np.array([b for _, b in rows]),
        t=np.array([i / 25 for i, _ in rows]),
        boxes=np.zeros((len(rows), 4), np.int32),
        silhouettes=silhouettes,
        header={},
    )
    found = {w.track: w for w in track_silhouettes(records, recording, f=4, stride=4)}
    assert set(found) == {7, 9}
    assert found[7].windows[:, :, 0, 0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert found[9].windows[:, :, 0, 0].tolist() == [[10, 11, 12, 14]]  # a missing image is no gap of 0.2 s
