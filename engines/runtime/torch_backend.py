"""The reference backend: PyTorch eager on a training checkpoint (or the raw baseline).

Why keep it: every compiled artifact is checked against it (parity tests, ``gaitwatch export``),
and evaluation of a fresh checkpoint needs no export step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from engines.model_card import card_from_checkpoint, file_entry
from engines.runtime.base import check_windows

BATCH = 4096


class TorchEncoder:
    backend = "torch"

    def __init__(self, module: nn.Module, card: dict, source: str) -> None:
        self.module = module.eval()
        self.f = module.f
        self.embedding_dim = module.embedding_dim
        self.card = card
        self.source = source

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> TorchEncoder:
        from engines.checkpoint import load_encoder

        module, info = load_encoder(path)
        card = {**card_from_checkpoint(info, module.f, module.embedding_dim), "file": file_entry(Path(path))}
        return cls(module, card, str(path))

    @classmethod
    def raw(cls, f: int = 6) -> TorchEncoder:
        from engines.models.baseline import RawBaseline

        module = RawBaseline(f)
        card = card_from_checkpoint(None, f, module.embedding_dim)
        card["file"] = {"name": f"raw-f{f}", "bytes": 0, "sha256": f"raw-f{f}"}  # nothing learned: named, not hashed
        return cls(module, card, "raw")

    @torch.inference_mode()
    def encode(self, windows: np.ndarray) -> np.ndarray:
        array = check_windows(windows, self.f, self.source)
        parts = [self.module(torch.from_numpy(array[s : s + BATCH])) for s in range(0, len(array), BATCH)]
        if not parts:
            return np.zeros((0, self.embedding_dim), np.float32)
        return torch.cat(parts).numpy()
