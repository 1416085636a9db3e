"""A SelfGait pre-training run: a silhouette dataset folder in, a run folder out (checkpoints, losses, model).

Why not ``engines.train.loop.train``: that loop takes skeleton windows of one length; SelfGait learns from
whole silhouette sequences of any length (views are cut from them each step). The epochs are the loop's own
(``engines.train.loop.run_epochs``): seeded, a checkpoint after every epoch that resumes only the very same run,
``losses.json``/``losses.png``, and a final ``model.pt`` that ``engines.checkpoint.load_encoder`` opens like the
other methods'.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from engines.checkpoint import atomic_save
from engines.train.loop import MODEL, Run, run_epochs, seed_everything
from engines.train.selfgait import SelfGaitMethod
from sensors.errors import InputError
from sensors.formats.silhouette_dataset import SequenceKey, dataset_root, layout_of, read_dataset

CASIA_RATE_HZ = 25.0  # CASIA-B's cameras (and the shared clips): the frame rate a crop of T frames spans
CASIA_TRAINING = range(1, 75)  # the protocol's training subjects (engines.casia_b): never learn from 075-124


def load_sequences(data: Path) -> tuple[list[SequenceKey], list[np.ndarray], dict]:
    """The dataset's non-empty sequences to learn from, and what they are for the checkpoint and card.

    Where every subject is numbered as in CASIA-B, only the protocol's training subjects (001-074) are kept,
    so a model trained here can be scored by ``engines.casia_b`` on subjects it never saw."""
    layout = layout_of(dataset_root(data))
    read = [(s.key, s.frames) for s in read_dataset(data, layout) if len(s.frames)]
    casia = bool(read) and all(k.subject.isdigit() and len(k.subject) == 3 for k, _ in read)
    if casia:
        read = [(k, f) for k, f in read if int(k.subject) in CASIA_TRAINING]
    if not read:
        raise InputError(
            f"{data}: no non-empty silhouette sequences to train on" + (" (subjects 001-074)" if casia else "")
        )
    keys = [k for k, _ in read]
    description = {
        "dataset": "silhouettes",
        "data": str(data),
        "layout": layout,
        "subjects": sorted({k.subject for k in keys}),
        "subject_filter": "CASIA-B training subjects 001-074" if casia else None,
        "train_sequences": len(keys),
        "train_windows": len(keys),
        "train_silhouettes": sum(len(f) for _, f in read),
        "rate_hz": CASIA_RATE_HZ,
    }
    return keys, [f for _, f in read], description


def train_selfgait(
    data: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    config_overrides: dict | None = None,
    resume: bool = True,
    show_progress: bool = True,
) -> Path:
    """Pre-train SelfGait with BYOL on every usable sequence of ``data``; returns the final ``model.pt``."""
    method = SelfGaitMethod()
    config = {**method.default_config(), **(config_overrides or {})}
    keys, frames, description = load_sequences(data)
    digest = hashlib.sha256()
    for key, sequence in zip(keys, frames, strict=True):
        digest.update(str(key).encode() + b"\0" + np.ascontiguousarray(sequence).tobytes())
    fingerprint = digest.hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(seed)
    f = config["frames"]
    model = method.build_model(config, f)
    optimizer = method.make_optimizer(model, config)
    sequences = [torch.from_numpy(np.ascontiguousarray(s)) for s in frames]
    final = run_epochs(
        out_dir,
        method.name,
        model,
        optimizer,
        generator,
        Run(config, seed, f, description, fingerprint),
        resume,
        lambda: method.train_epoch(model, optimizer, sequences, generator, config, show_progress),
    )
    atomic_save(final, out_dir / MODEL)
    return out_dir / MODEL
