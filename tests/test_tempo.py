"""The walking-pace augmentation: windows are extended only by frames that truly continue them, and re-timed
windows are the walk read at another cadence, within the bounds set."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.adapt import adapt_checkpoint
from engines.checkpoint import load, load_encoder
from engines.train.loop import train
from engines.train.tempo import extended_clips, retimed_windows
from engines.train.trackcon import TrackConMethod
from tests.small_trackcon import SMALL
from tests.synthetic_gait import synthetic_windows

F = 6


def _walk(frames: int, offset: float = 0.0) -> torch.Tensor:
    """A walk whose every coordinate is its frame number (plus ``offset``): [frames, 20, 3]."""
    return (torch.arange(frames, dtype=torch.float32) + offset)[:, None, None].expand(frames, 20, 3).clone()


def _cut(walk: torch.Tensor, stride: int) -> torch.Tensor:
    starts = range(0, len(walk) - F + 1, stride)
    return torch.stack([walk[s : s + F] for s in starts])


def test_windows_are_extended_by_the_frames_that_follow_them_in_their_own_track():
    first, second = _cut(_walk(18), 3), _cut(_walk(12, offset=100.0), 3)  # 5 and 3 windows
    windows = torch.cat([first, second])
    tracks = torch.tensor([0] * len(first) + [1] * len(second))
    clips = extended_clips(windows, tracks)
    assert clips.lengths.tolist() == [9] * 8  # each window + the 3 frames that continue (or precede) it
    torch.testing.assert_close(clips.frames[0, :9, 0, 0], torch.arange(9.0))  # window 0 then window 1's tail
    torch.testing.assert_close(clips.frames[4, :9, 0, 0], torch.arange(9.0, 18.0))  # the last: its predecessor first
    torch.testing.assert_close(clips.frames[7, :9, 0, 0], torch.arange(103.0, 112.0))  # never across tracks


def test_windows_that_do_not_continue_each_other_are_not_joined():
    walk = _walk(30)
    windows = torch.stack([walk[0:6], walk[10:16], walk[20:26]])  # gaps between them
    same_content = torch.stack([walk[0:6], walk[3:9]])  # they do continue each other, but in two tracks
    assert extended_clips(windows, torch.zeros(3, dtype=torch.int64)).lengths.tolist() == [6, 6, 6]
    assert extended_clips(same_content, torch.tensor([0, 1])).lengths.tolist() == [6, 6]


def test_retimed_windows_read_the_walk_at_a_cadence_within_the_bounds():
    windows = _cut(_walk(60), 3)
    clips = extended_clips(windows, torch.zeros(len(windows), dtype=torch.int64))
    index = torch.arange(len(windows)).repeat(20)
    out = retimed_windows(clips, index, F, 0.25, torch.Generator().manual_seed(0))
    frame = out[:, :, 0, 0]  # coordinates are frame numbers: the window's frames as read
    spacing = frame.diff(dim=1)
    assert torch.allclose(spacing, spacing[:, :1].expand_as(spacing), atol=1e-4)  # one cadence per window
    rate = spacing[:, 0]
    assert rate.min() >= 1 / 1.25 - 1e-4 and rate.max() <= 1.25 + 1e-4
    assert rate.min() < 0.85 and rate.max() > 1.15  # both slower and faster are drawn
    start = windows[index][:, 0, 0, 0]
    assert (frame[:, 0] >= start - 3 - 1e-4).all() and (frame[:, -1] <= start + 8 + 1e-4).all()  # within the clip
    assert torch.equal(out[:, :, 5], out[:, :, 0])  # every joint re-timed alike


def test_a_window_with_no_neighbour_is_only_slowed_down():
    walk = _walk(30)
    windows = torch.stack([walk[0:6], walk[12:18]])
    clips = extended_clips(windows, torch.zeros(2, dtype=torch.int64))
    out = retimed_windows(clips, torch.arange(2).repeat(50), F, 0.5, torch.Generator().manual_seed(1))
    rate = out[:, 1, 0, 0] - out[:, 0, 0, 0]
    assert rate.max() <= 1 + 1e-5 and rate.min() >= 1 / 1.5 - 1e-5
    assert (out[:, 0, 0, 0] >= windows[torch.arange(2).repeat(50)][:, 0, 0, 0] - 1e-5).all()


def test_tempo_is_a_setting_off_by_default_and_checked():
    assert TrackConMethod.default_config()["tempo"] == 0.0
    assert "tempo" in " ".join(TrackConMethod.setting_problems({**TrackConMethod.default_config(), "tempo": -0.1}, F))


@pytest.mark.parametrize("tempo", [0.0, 0.2])
def test_training_and_adapting_with_the_pace_augmentation(tmp_path: Path, tempo: float):
    windows, _ = synthetic_windows(people=6, windows_per_person=20)
    walks = np.arange(len(windows)) // 10
    model = train(
        "trackcon", windows, tmp_path, seed=0, description={"split": "synthetic"},
        config_overrides={**SMALL, "epochs": 1, "tempo": tempo}, show_progress=False, tracks=walks,
    )  # fmt: skip
    checkpoint = load(model)
    assert checkpoint["config"]["tempo"] == tempo
    adapted = adapt_checkpoint(checkpoint, windows, walks, steps=3, show_progress=False)
    assert adapted["config"]["tempo"] == tempo
    encoder, _ = load_encoder(model)
    with torch.no_grad():
        assert math.isfinite(float(encoder(torch.from_numpy(windows[:4])).sum()))
