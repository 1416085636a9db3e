"""Re-identification evaluation: window level (the papers' numbers) and walk level (what a live user sees).

Window level: every probe window is matched against every gallery window.
Walk level: each walk is one embedding, the mean of its windows' embeddings, compared by the model's metric
(``engines.track_distance``: Euclidean, or with the body shape fused in; a body-shape model's windows compare by
their embeddings alone, as the bone lengths of one window are a track's feature measured noisily).
No probe or gallery sample is dropped. Any runtime backend can be scored
(torch checkpoints, ONNX, TensorRT engines), so an exported artifact is checked on the same protocol.
"""

from __future__ import annotations

import numpy as np

from engines.metrics import ReidResult, pool_by_group, reid_metrics, reid_metrics_embeddings
from engines.protocol import ProtocolData
from engines.runtime.base import Encoder
from engines.track_distance import TrackDistance


def _walk_level(emb: np.ndarray, walks: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pooled, walk_ids = pool_by_group(emb, walks)
    label_of = dict(zip(walks.tolist(), labels.tolist(), strict=True))  # every window of a walk has its label
    return pooled, np.array([label_of[w] for w in walk_ids.tolist()])


def evaluate(encoder: Encoder, data: ProtocolData) -> dict[str, ReidResult]:
    probe, gallery = encoder.encode(data.probe), encoder.encode(data.gallery)
    probe_walks, probe_walk_labels = _walk_level(probe, data.probe_walk, data.probe_labels)
    gallery_walks, gallery_walk_labels = _walk_level(gallery, data.gallery_walk, data.gallery_labels)
    # as a gallery of these walks would compare them; windows by their embedding part alone
    distance = TrackDistance.fit(encoder.card["metric"], gallery_walks, gallery_walk_labels)
    window = reid_metrics_embeddings(
        distance.embeddings(probe), distance.embeddings(gallery), data.probe_labels, data.gallery_labels
    )
    walk = reid_metrics(distance(probe_walks, gallery_walks), probe_walk_labels, gallery_walk_labels)
    return {"window": window, "walk": walk}
