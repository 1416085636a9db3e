"""The raw baseline every learned encoder must beat: root-centred joint coordinates, flattened."""

from __future__ import annotations

import torch
from torch import nn

from engines.models.preprocess import RootCentre


class RawBaseline(nn.Module):
    """[N, f, 20, 3] -> [N, f * 60]: each frame's joints relative to its HipCenter, nothing learned."""

    method = "raw"

    def __init__(self, f: int = 6, joints: int = 20) -> None:
        super().__init__()
        self.f = f
        self.embedding_dim = f * joints * 3
        self.preprocess = RootCentre()

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.preprocess(windows).flatten(1)
