"""Input normalisation that lives inside every encoder, so training, evaluation and export agree."""

from __future__ import annotations

import torch
from torch import nn

HIP_CENTER = 0  # canonical joint index of HipCenter


class RootCentre(nn.Module):
    """Canonical windows [N, f, 20, 3] -> the same joints relative to each frame's HipCenter."""

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return windows - windows[:, :, HIP_CENTER : HIP_CENTER + 1, :]
