"""Two views of one silhouette sequence for BYOL: what may change while the person stays the same.

Each view gets, from the training generator (so a seeded run is the same run):

- **a random temporal crop** of ``frames`` consecutive silhouettes (a short sequence is repeated first):
  the two views show the walk at different gait phases and starting points, so the embedding has to
  describe the walk, not one stretch of it (what a live window, cut anywhere in a track, needs);
- **horizontal shift and width jitter**, the same for every frame of a view: alignment (centroid, height)
  is only as good as the mask, and a coat or another segmenter makes a person wider, so a few columns of
  offset or a few per cent of width must not change who it is;
- **a random erased horizontal band** (rows set to background in every frame): a bag, a table or a
  segmenter that loses the trunk (``docs/silhouettes.md``, 002-nm-01) hides a stretch of the body; the
  HPM strips and MTB parts must then identify from the rest.

No flips: a mirrored walker walks the other way, which the views a camera sees keep apart.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.train.settings import NON_NEGATIVE, PAIR, SHARE, Bounds

DEFAULTS = {
    "frames": 20,  # silhouettes per view (a temporal crop): 0.8 s at 25 Hz, about a gait cycle
    "shift_px": 4.0,  # horizontal shift, up to this many columns either way
    "width_jitter": 0.1,  # width scaled by 1 +- up to this
    "erase_p": 0.5,  # chance of an erased band per view
    "erase_min_rows": 4,  # its height in rows, from
    "erase_max_rows": 12,  # to (inclusive)
}
BOUNDS = {
    "frames": PAIR,  # batch norm over time needs two
    "shift_px": NON_NEGATIVE,
    "width_jitter": Bounds(0, 1, open_high=True),
    "erase_p": SHARE,
    "erase_min_rows": NON_NEGATIVE,
    "erase_max_rows": NON_NEGATIVE,
}


def band_problems(config: dict) -> list[str]:
    """What ``BOUNDS`` cannot say of the erased band: its least height must not exceed its greatest."""
    low, high = config["erase_min_rows"], config["erase_max_rows"]
    return [f"erase_min_rows ({low}) must not exceed erase_max_rows ({high})"] if low > high else []


def temporal_crop(sequence: torch.Tensor, frames: int, generator: torch.Generator) -> torch.Tensor:
    """``frames`` consecutive silhouettes [frames, H, W] of a sequence [T, H, W] (T >= 1), from a random start."""
    if len(sequence) < frames:
        sequence = sequence.repeat((frames + len(sequence) - 1) // len(sequence), 1, 1)
    start = int(torch.randint(len(sequence) - frames + 1, (1,), generator=generator))
    return sequence[start : start + frames]


def shift_and_scale(views: torch.Tensor, config: dict, generator: torch.Generator) -> torch.Tensor:
    """[N, T, H, W] float 0..255 -> the same, each view shifted and widened or narrowed about its centre."""
    n, t, h, w = views.shape
    scale = 1.0 + (2 * torch.rand(n, generator=generator) - 1) * config["width_jitter"]
    shift = (2 * torch.rand(n, generator=generator) - 1) * config["shift_px"]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1.0 / scale  # sampling grid: a wider person reads from a narrower stretch
    theta[:, 0, 2] = -2.0 * shift / w / scale
    theta[:, 1, 1] = 1.0
    grid = nn.functional.affine_grid(theta, [n, t, h, w], align_corners=False)
    return nn.functional.grid_sample(views, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def erase_band(views: torch.Tensor, config: dict, generator: torch.Generator) -> torch.Tensor:
    """Set a random band of rows to background in every frame of about ``erase_p`` of the views."""
    n, _, h, _ = views.shape
    low, high = config["erase_min_rows"], config["erase_max_rows"]
    erase = torch.rand(n, generator=generator) < config["erase_p"]
    rows = torch.randint(low, high + 1, (n,), generator=generator)
    tops = (torch.rand(n, generator=generator) * (h - rows + 1)).long()
    index = torch.arange(h)
    band = erase[:, None] & (index[None] >= tops[:, None]) & (index[None] < (tops + rows)[:, None])  # [N, H]
    return views.masked_fill(band[:, None, :, None], 0.0)


def make_views(sequences: list[torch.Tensor], config: dict, generator: torch.Generator) -> torch.Tensor:
    """One augmented view [N, frames, H, W] (float 0..255) of each uint8 sequence [T, H, W]."""
    crops = torch.stack([temporal_crop(s, config["frames"], generator) for s in sequences]).float()
    return erase_band(shift_and_scale(crops, config, generator), config, generator)
