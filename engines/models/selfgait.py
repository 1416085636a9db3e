"""SelfGait's backbone (Liu et al., ICASSP 2021): silhouette windows -> one embedding per window.

Two branches share a small per-frame CNN, as the paper combines them:

- **HPM** (GaitSet's horizontal pyramid mapping): the frames' feature maps are set-pooled (max over the
  window: GaitSet's order-free set), then cut into 1, 2, 4, 8 and 16 horizontal strips (31 in all); each
  strip is pooled (mean + max) and mapped by a fully connected layer of its own.
- **MTB** (GaitPart's micro-motion template builder): each frame's feature map is cut into horizontal
  parts; per part, templates of short motions are pooled over sliding temporal windows of 3 and 5 frames
  (mean + max) and weighted by a learned channel attention; the templates are mean-pooled over the
  sequence, then each part is mapped by a fully connected layer of its own.

The embedding is every strip and part, concatenated. The window's pixels enter as uint8 0..255 (what
``sensors.silhouette`` makes and the readers return) and are scaled inside the graph, so an exported
artifact takes silhouettes as they are stored. Widths are small on purpose (about 0.2 M parameters with
the defaults): a window of 30 silhouettes encodes in milliseconds on a 2-core CPU. The BYOL heads
(projector, predictor, EMA target) belong to training, not here.
"""

from __future__ import annotations

import torch
from torch import nn

from sensors.silhouette import HEIGHT, WIDTH

SCALES = (1, 2, 4, 8, 16)  # HPM's strips per scale (GaitSet)
MOTION_KERNELS = (3, 5)  # MTB's temporal windows (GaitPart)


class FrameEncoder(nn.Module):
    """[M, 1, 64, 44] silhouettes in [0, 1] -> [M, C, 16, 11] feature maps (GaitSet's layout, narrower)."""

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2, bias=False),
            nn.LeakyReLU(0.01),
            nn.Conv2d(c1, c1, 3, padding=1, bias=False),
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.LeakyReLU(0.01),
            nn.Conv2d(c2, c2, 3, padding=1, bias=False),
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False),
            nn.LeakyReLU(0.01),
            nn.Conv2d(c3, c3, 3, padding=1, bias=False),
            nn.LeakyReLU(0.01),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.layers(frames)


class SeparateFC(nn.Module):
    """A fully connected layer per strip or part: [N, S, C] -> [N, S, D] (GaitSet's and GaitPart's separate FCs)."""

    def __init__(self, parts: int, width: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(parts, width, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nsc,scd->nsd", x, self.weight)


class HorizontalPyramid(nn.Module):
    """Set-pooled feature maps [N, C, H, W] -> [N, 31, D]: strips at every scale, mean + max pooled, mapped."""

    def __init__(self, channels: int, dim: int, scales: tuple[int, ...] = SCALES) -> None:
        super().__init__()
        self.scales = scales
        self.fc = SeparateFC(sum(scales), channels, dim)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        n, c = maps.shape[:2]
        strips = []
        for s in self.scales:
            cut = maps.reshape(n, c, s, -1)  # H divisible by every scale: each strip's rows and columns, flat
            strips.append(cut.mean(-1) + cut.amax(-1))
        return self.fc(torch.cat(strips, dim=2).transpose(1, 2))


class MicroMotion(nn.Module):
    """Per-frame part features [N, T, P, C] -> [N, P, D]: GaitPart's micro-motion templates, attention-weighted,
    mean-pooled over the sequence, one FC per part."""

    def __init__(self, channels: int, parts: int, dim: int, reduction: int = 4) -> None:
        super().__init__()
        self.attention = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels, channels // reduction, k, padding=k // 2, bias=False),
                nn.LeakyReLU(0.01),
                nn.Conv1d(channels // reduction, channels, 1, bias=False),
            )
            for k in MOTION_KERNELS
        )
        self.fc = SeparateFC(parts, channels, dim)

    def forward(self, parts: torch.Tensor) -> torch.Tensor:
        n, t, p, c = parts.shape
        x = parts.permute(0, 2, 3, 1).reshape(n * p, c, t)  # a temporal signal per part and channel
        motion = torch.zeros_like(x)
        for k, attention in zip(MOTION_KERNELS, self.attention, strict=True):
            motion = motion + _template(x, k) * torch.sigmoid(attention(x))
        pooled = motion.mean(dim=2).reshape(n, p, c)
        return self.fc(pooled)


class SelfGaitBackbone(nn.Module):
    """[N, T, 64, 44] silhouette windows (uint8 0..255, or float in that range) -> [N, (31 + parts) * dim]."""

    method = "selfgait"

    def __init__(
        self, f: int = 30, channels: tuple[int, int, int] = (16, 32, 64), dim: int = 32, parts: int = 16
    ) -> None:
        super().__init__()
        self.f = f
        self.parts = parts
        self.frames = FrameEncoder(channels)
        self.hpm = HorizontalPyramid(channels[-1], dim)
        self.mtb = MicroMotion(channels[-1], parts, dim)
        self.embedding_dim = (sum(SCALES) + parts) * dim

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        n, t = windows.shape[:2]
        x = windows.to(torch.float32).reshape(n * t, 1, HEIGHT, WIDTH) / 255.0
        maps = self.frames(x)
        maps = maps.reshape(n, t, *maps.shape[1:])  # [N, T, C, H', W']
        strips = self.hpm(maps.amax(dim=1))
        c, h = maps.shape[2], maps.shape[3]
        cut = maps.reshape(n, t, c, self.parts, (h // self.parts) * maps.shape[4])
        part_features = (cut.mean(-1) + cut.amax(-1)).transpose(2, 3)  # [N, T, P, C]
        motion = self.mtb(part_features)
        return torch.cat([strips, motion], dim=1).flatten(1)


def _template(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean + max of each frame's ``k``-frame neighbourhood [.., T], edges repeated. Shifted slices, not
    ``max_pool1d``: the exporter fixes a pooled length to the example's, and windows vary in length."""
    t = x.shape[-1]
    padded = nn.functional.pad(x, (k // 2, k // 2), mode="replicate")
    shifted = torch.stack([padded[..., i : i + t] for i in range(k)])
    return shifted.mean(dim=0) + shifted.amax(dim=0)
