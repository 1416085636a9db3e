"""Re-identification evaluation: window level (the papers' numbers) and walk level (what a live user sees).

Window level: every probe window is matched against every gallery window.
Walk level: each walk is one embedding, the mean of its windows' embeddings.
No probe or gallery sample is dropped; distances are Euclidean.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engines.metrics import ReidResult, pool_by_group, reid_metrics_embeddings
from engines.protocol import ProtocolData


@torch.no_grad()
def embed(encoder: nn.Module, windows: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Embeddings [N, D] of windows [N, f, 20, 3], in batches."""
    encoder.eval()
    out = [
        encoder(torch.from_numpy(np.ascontiguousarray(windows[s : s + batch], np.float32)))
        for s in range(0, len(windows), batch)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def _walk_level(emb: np.ndarray, walks: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pooled, walk_ids = pool_by_group(emb, walks)
    label_of = dict(zip(walks.tolist(), labels.tolist(), strict=True))  # every window of a walk has its label
    return pooled, np.array([label_of[w] for w in walk_ids.tolist()])


def evaluate(encoder: nn.Module, data: ProtocolData) -> dict[str, ReidResult]:
    probe, gallery = embed(encoder, data.probe), embed(encoder, data.gallery)
    window = reid_metrics_embeddings(probe, gallery, data.probe_labels, data.gallery_labels)
    probe_walks, probe_walk_labels = _walk_level(probe, data.probe_walk, data.probe_labels)
    gallery_walks, gallery_walk_labels = _walk_level(gallery, data.gallery_walk, data.gallery_labels)
    walk = reid_metrics_embeddings(probe_walks, gallery_walks, probe_walk_labels, gallery_walk_labels)
    return {"window": window, "walk": walk}
