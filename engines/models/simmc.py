"""SimMC encoder (Rao & Miao, IJCAI 2022): a per-frame MLP whose frame features are mean-pooled.

The encoder is tiny on purpose (about 0.08 M parameters; the training predictor adds
0.07 M): skeleton windows are short (f = 6) and the paper shows a plain MLP with
masked prototype contrast beats heavier graph and recurrent encoders.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.models.preprocess import RootCentre


class SimMCEncoder(nn.Module):
    """[N, f, 20, 3] canonical windows (metres) -> [N, hidden] embeddings."""

    method = "simmc"

    def __init__(self, f: int = 6, joints: int = 20, hidden: int = 256, layers: int = 1) -> None:
        super().__init__()
        self.f = f
        self.embedding_dim = hidden
        self.preprocess = RootCentre()
        blocks: list[nn.Module] = []
        width = joints * 3
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        blocks.append(nn.Linear(width, hidden))
        self.frame_mlp = nn.Sequential(*blocks)

    def frame_features(self, windows: torch.Tensor) -> torch.Tensor:
        """Per-frame features [N, f, hidden], before pooling (masking picks frames from these)."""
        return self.frame_mlp(self.preprocess(windows).flatten(2))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.frame_features(windows).mean(dim=1)


class SimMCModel(nn.Module):
    """What is trained: the encoder plus the predictor of the masked intra-sequence loss."""

    def __init__(self, encoder: SimMCEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = nn.Linear(encoder.embedding_dim, encoder.embedding_dim)
