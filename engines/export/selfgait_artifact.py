"""A trained SelfGait checkpoint -> its online backbone as ONNX (uint8 [N, T, 64, 44]) with a model card.

Why its own card: skeleton cards (``engines.model_card.card_from_checkpoint``) describe canonical windows
in metres; a silhouette encoder takes aligned masks as stored, and its card says so, with what it was
trained on (for a fine-tuned one: that labels were used, whose, and the pre-training run it started from, by
sha256). Parity with torch is measured on silhouette-like windows and recorded; an artifact that
misses it is deleted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engines.checkpoint import describe, encoder_from, load
from engines.export.silhouette_onnx import INPUT_NAME, export_silhouette_onnx
from engines.model_card import card_path, write_card
from sensors.errors import InputError
from sensors.silhouette import HEIGHT, WIDTH

PARITY_LIMIT = 1e-4  # relative to the largest |embedding| value (tests/test_selfgait.py asks the same)
TRAINING_KEYS = (
    "dataset",
    "data",
    "layout",
    "subjects",
    "subject_filter",
    "train_sequences",
    "train_silhouettes",
    "seed",
    "epoch",
    "train_seconds",
    "torch_threads",
    "torch_cpu",
    "config",
    "labelled_fraction",
    "labelled_count",
    "training_subjects",
    "labelled_subjects",
    "pretrained_sha256",
    "pretraining",
)
PRETRAINING_OBJECTIVE = "BYOL pre-training, no labels (engines/train/selfgait.py)"


def parity_windows(seed: int) -> list[np.ndarray]:
    """Blocky silhouette-like windows at several batches and lengths (the exported example's and others)."""
    rng = np.random.default_rng(seed)
    windows = []
    for n, t in ((1, 30), (3, 12), (2, 45)):
        coarse = rng.random((n, t, 8, 11)) < 0.4
        windows.append((coarse.repeat(8, axis=2).repeat(4, axis=3) * 255).astype(np.uint8))
    return windows


def selfgait_card(info: dict, embedding_dim: int) -> dict:
    """What every card of a selfgait encoder says, exported or run from its checkpoint: method, window length, rate,
    layout, D, metric, and how it was trained (``info``: ``engines.checkpoint.describe`` of its checkpoint)."""
    from engines.runtime.silhouette_backend import LAYOUT, METHOD

    return {
        "method": METHOD,
        "f": int(info["f"]),
        "rate_hz": float(info.get("rate_hz", 25.0)),
        "layout": LAYOUT,
        "embedding_dim": embedding_dim,
        "metric": "euclidean",
        "training": {
            "objective": info.get("objective", PRETRAINING_OBJECTIVE),
            **{k: info[k] for k in TRAINING_KEYS if k in info},
        },
    }


def export_selfgait(model: str | Path, out: Path) -> dict:
    """Export ``model`` (a selfgait ``model.pt`` or run folder) to ``out`` with its card; returns the card."""
    import onnxruntime as ort

    path = Path(model)
    path = path / "model.pt" if path.is_dir() else path
    data = load(path)
    if data["method"] != "selfgait":
        raise InputError(f"{path}: a {data['method']} checkpoint, not selfgait")
    encoder = encoder_from(data, path)
    export_silhouette_onnx(encoder, out)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    for windows in parity_windows(0):
        (got,) = session.run(None, {INPUT_NAME: windows})
        with torch.no_grad():
            expected = encoder(torch.from_numpy(windows)).numpy()
        worst = max(worst, float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-12)))
    if worst > PARITY_LIMIT:
        out.unlink(missing_ok=True)
        card_path(out).unlink(missing_ok=True)
        raise InputError(f"{out}: ONNX Runtime differs from torch by {worst:.2e} (relative), over {PARITY_LIMIT:g}")
    card = {
        **selfgait_card(describe(data), int(encoder.embedding_dim)),
        "input": {
            "name": INPUT_NAME,
            "shape": ["N", "T", HEIGHT, WIDTH],
            "dtype": "uint8",
            "units": "aligned silhouettes 0..255 (sensors.silhouette.align), T >= 2 frames, any length",
            "normalisation": "inside the model (/255)",
        },
        "parity": {"reference": "torch", "backend": "onnxruntime", "max_relative_diff": worst, "limit": PARITY_LIMIT},
    }
    write_card(out, card)
    return card
