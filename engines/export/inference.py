"""Inference forms of the encoders: the same function, arranged to cost less once no gradient is needed.

SimMC, two exact rewrites (parity with the training form is checked at every export, limit 1e-5):

- Root-centring is linear (each joint minus the HipCenter of its frame), and the MLP's first layer
  is linear, so the centring is folded into that layer's weights: W (x - R x) + b = (W - W R) x + b.
  The graph still takes raw canonical coordinates and still normalises them; it just does so
  inside the first matrix product instead of a broadcast subtraction that ONNX Runtime runs slowly
  (more than half the time of a batch of 64 before the fold).
- The window embedding is the mean over frames of the last (affine) layer's output; a mean commutes
  with an affine map, so the last layer runs once on the pooled hidden features instead of f times.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.models.preprocess import HIP_CENTER
from engines.models.simmc import SimMCEncoder


def centring_matrix(joints: int = 20, root: int = HIP_CENTER) -> torch.Tensor:
    """C [3J, 3J] with C x = x minus the root joint's coordinates, for a frame flattened joint-major."""
    dim = 3 * joints
    root_of = torch.zeros(dim, dim, dtype=torch.float64)
    for joint in range(joints):
        for axis in range(3):
            root_of[3 * joint + axis, 3 * root + axis] = 1.0
    return torch.eye(dim, dtype=torch.float64) - root_of


class FoldedSimMC(nn.Module):
    """SimMC with the root-centring folded into its first layer and pooling before its last one."""

    def __init__(self, encoder: SimMCEncoder) -> None:
        super().__init__()
        self.f = encoder.f
        self.embedding_dim = encoder.embedding_dim
        layers = list(encoder.frame_mlp)
        first, last = layers[0], layers[-1]
        if not (isinstance(first, nn.Linear) and isinstance(last, nn.Linear) and len(layers) >= 3):
            raise TypeError("SimMC's frame MLP must start and end with linear layers")
        folded = nn.Linear(first.in_features, first.out_features)
        with torch.no_grad():
            weight = first.weight.double() @ centring_matrix(first.in_features // 3)
            folded.weight.copy_(weight.float())
            folded.bias.copy_(first.bias)
        self.hidden_layers = nn.Sequential(folded, *layers[1:-1])
        self.last = last

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden_layers(windows.flatten(2))  # raw coordinates: the centring is in the weights
        return self.last(hidden.mean(dim=1))


def inference_form(encoder: nn.Module) -> nn.Module:
    """The cheapest exact arrangement of ``encoder`` for export (itself where there is none), in eval mode."""
    if isinstance(encoder, SimMCEncoder):
        return FoldedSimMC(encoder).eval()
    return encoder.eval()
