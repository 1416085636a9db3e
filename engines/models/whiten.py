"""PCA whitening of embeddings, fitted once on the training windows and then part of the encoder.

Why: AGE's context vectors are LSTM outputs whose dimensions differ in scale by orders of
magnitude and are strongly correlated, so a plain Euclidean distance is dominated by a few
directions. Whitening with the training windows' own statistics (no labels) makes every principal
direction count alike; ``eps`` (relative to the largest eigenvalue) keeps near-empty directions
from being blown up into noise. The choice and ``eps`` were selected on the validation split drawn
from the training walks (``engines.protocol.validation_split``), never on probe or gallery walks.
"""

from __future__ import annotations

import torch
from torch import nn


class Whitening(nn.Module):
    """x [N, D] -> (x - mean) @ projection; the identity until ``fit`` is called.

    After ``fit`` every principal direction stronger than eps x lambda_max has about that variance
    (eps x lambda_max); weaker directions keep theirs. No direction is amplified.
    """

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"whitening needs eps > 0 (the variance floor relative to the strongest), got {eps}")
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("projection", torch.eye(dim))

    @torch.no_grad()
    def fit(self, embeddings: torch.Tensor) -> None:
        """Set mean and projection from embeddings [N, D] (float64 covariance, eigenvalues floored at eps x max)."""
        x = embeddings.double()
        mean = x.mean(dim=0)
        centred = x - mean
        covariance = centred.T @ centred / max(len(x) - 1, 1)
        values, vectors = torch.linalg.eigh(covariance)
        values = values.clamp(min=0.0)
        floor = self.eps * values.max()
        # Gains sqrt(floor / (lambda + floor)) <= 1: strong directions are shrunk to the floor's variance
        # instead of weak ones being raised (the same ranking: only a global scale differs), so float
        # rounding in the input is never amplified, and compiled runtimes agree with torch as closely.
        projection = vectors * torch.sqrt(floor / (values + floor))
        self.mean.copy_(mean.float())
        self.projection.copy_(projection.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.projection
