"""Walking-pace augmentation: a training window re-timed as if the person walked faster or slower.

Why: two walks of one person differ in pace (a hurry, a slope, a bag), and TrackCon only ever pulls windows of
*one* walk together, so what a change of pace does to the joints is never taught. Re-timing a window by a
random factor teaches it; the frame rate is not what changes (the node resamples every sensor to the model's
rate), the walker's cadence is.

A window of ``f`` frames holds too little to be slowed down *and* sped up, so each window is first extended
by the frames of the next window of its track that continue it (windows are cut with overlap: the next one
starts ``shift`` frames later and repeats the rest exactly), or, for a track's last window, by the previous
one's. The re-timed window is ``f`` frames read at a spacing of ``rate`` frames, by linear interpolation, from
a random start in the extended clip; a window with no neighbour is only slowed down. ``tempo`` t draws
the rate log-uniformly from [1 / (1 + t), 1 + t]; 0 leaves every window as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Clips:
    """Each window extended by the frames that continue it in its track: ``frames`` [N, L, J, 3], of which the
    first ``lengths`` [N] are real (at least the window's own ``f``)."""

    frames: torch.Tensor
    lengths: torch.Tensor


def extended_clips(windows: torch.Tensor, tracks: torch.Tensor) -> Clips:
    """``windows`` [N, f, J, 3] with ``tracks`` [N] -> every window with the frames of its neighbour that
    continue it. Neighbours are found by content (the overlap must repeat exactly), so the windows' order
    within a track only decides how many are found, never what is joined."""
    n, f = windows.shape[:2]
    frames = torch.cat([windows, windows[:, -1:].expand(-1, f, -1, -1)], dim=1)  # room for f more
    lengths = torch.full((n,), f, dtype=torch.int64)
    if n < 2:
        return Clips(frames, lengths)
    same_track = tracks[1:] == tracks[:-1]
    for shift in range(1, f):
        overlap = f - shift
        continues = same_track & _repeats(windows[:-1, shift:], windows[1:, :overlap])  # window i + 1 goes on from i
        joined = continues & (lengths[:-1] == f)
        if joined.any():  # window i continues into window i + 1: append i + 1's last `shift` frames
            index = torch.nonzero(joined).squeeze(1)
            frames[index, f : f + shift] = windows[index + 1, overlap:]
            lengths[index] = f + shift
        # a track's last window: the previous window's first `shift` frames go before it
        last = continues & (lengths[1:] == f)
        last &= torch.cat([~same_track[1:], torch.ones(1, dtype=torch.bool)])  # no window follows in the track
        if last.any():
            index = torch.nonzero(last).squeeze(1) + 1
            frames[index, : f + shift] = torch.cat([windows[index - 1, :shift], windows[index]], dim=1)
            lengths[index] = f + shift
    return Clips(frames, lengths)


def _repeats(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N] True where ``a[i]`` and ``b[i]`` hold the same frames."""
    return (a == b).flatten(1).all(dim=1)


def retimed_windows(
    clips: Clips, index: torch.Tensor, f: int, tempo: float, generator: torch.Generator
) -> torch.Tensor:
    """The windows ``index`` [n] re-timed (module docstring): [n, f, J, 3]."""
    frames = clips.frames[index]
    lengths = clips.lengths[index].to(frames.dtype)
    n = len(index)
    if f < 2:
        return frames[:, :f]
    spread = math.log1p(tempo)
    rate = torch.exp((torch.rand(n, generator=generator) * 2 - 1) * spread)
    rate = torch.minimum(rate, (lengths - 1) / (f - 1))  # the span must fit the clip
    room = lengths - 1 - rate * (f - 1)
    start = torch.rand(n, generator=generator) * room
    position = start[:, None] + rate[:, None] * torch.arange(f, dtype=frames.dtype)  # [n, f], within the clip
    below = position.floor().long().clamp(max=frames.shape[1] - 2)
    weight = (position - below).clamp(0, 1)[:, :, None, None]
    rows = torch.arange(n)[:, None]
    return frames[rows, below] * (1 - weight) + frames[rows, below + 1] * weight
