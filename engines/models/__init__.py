"""Encoders: every model honours one contract, ``forward(windows [N, f, 20, 3] metres) -> [N, D]``."""

from __future__ import annotations

import torch


@torch.no_grad()
def embed_in_batches(encoder: torch.nn.Module, windows: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """Every window's embedding, ``batch`` windows at a time, in eval mode; the encoder's own mode is restored."""
    was_training = encoder.training
    encoder.eval()
    embeddings = torch.cat([encoder(windows[s : s + batch]) for s in range(0, len(windows), batch)])
    encoder.train(was_training)
    return embeddings
