"""A SelfGait pre-training run: a silhouette dataset folder in, a run folder out (checkpoints, losses, model).

Why not ``engines.train.loop.train``: that loop takes skeleton windows of one length; SelfGait learns from
whole silhouette sequences of any length (views are cut from them each step). The rest is the same: seeded,
a checkpoint after every epoch that resumes only the very same run, ``losses.json``/``losses.png``, and a
final ``model.pt`` that ``engines.checkpoint.load_encoder`` opens like the other methods'.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import torch

from engines.checkpoint import atomic_save, load
from engines.train.loop import CHECKPOINT, MODEL, _check_same_run, _seed_everything, write_loss_log
from engines.train.selfgait import SelfGaitMethod
from sensors.errors import InputError
from sensors.formats.silhouette_dataset import SequenceKey, dataset_root, layout_of, read_dataset

logger = logging.getLogger("gaitwatch.train")
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
    generator = _seed_everything(seed)
    f = config["frames"]
    model = method.build_model(config, f)
    optimizer = method.make_optimizer(model, config)
    log: list[dict] = []
    start_epoch, seconds = 0, 0.0
    state_path = out_dir / CHECKPOINT
    if resume and state_path.exists():
        state = load(state_path)
        _check_same_run(state_path, state, method.name, config, seed, description, fingerprint)
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        generator.set_state(state["rng_state"])
        log, start_epoch, seconds = state["log"], state["epoch"], state["train_seconds"]
    sequences = [torch.from_numpy(np.ascontiguousarray(s)) for s in frames]
    for epoch in range(start_epoch, config["epochs"]):
        began = time.perf_counter()
        stats = method.train_epoch(model, optimizer, sequences, generator, config, show_progress)
        seconds += time.perf_counter() - began
        log.append({"epoch": epoch + 1, "seconds": round(seconds, 2), **stats})
        logger.info("epoch %d/%d  loss %.4g", epoch + 1, config["epochs"], stats["loss"])
        state = {
            "method": method.name,
            "config": config,
            "seed": seed,
            "f": f,
            "epoch": epoch + 1,
            "train_seconds": seconds,
            "log": log,
            "model_state": model.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "rng_state": generator.get_state(),
            "windows_sha256": fingerprint,
            **description,
        }
        atomic_save(state, state_path)
        write_loss_log(out_dir, method.name, log)
    final = load(state_path)
    final.pop("optimizer_state")
    final.pop("rng_state")
    atomic_save(final, out_dir / MODEL)
    return out_dir / MODEL
