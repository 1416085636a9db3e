"""A SelfGait run, pre-training or fine-tuning: a silhouette dataset folder in, a run folder out (checkpoints,
losses, model).

Why not ``engines.train.loop.train``: that loop takes skeleton windows of one length; SelfGait learns from
whole silhouette sequences of any length (views are cut from them each step). The epochs are the loop's own
(``engines.train.loop.run_epochs``): seeded, a checkpoint after every epoch that resumes only the very same run,
``losses.json``/``losses.png``, and a final ``model.pt`` that ``engines.checkpoint.load_encoder`` opens like the
other methods'. Fine-tuning (``finetune_selfgait``) starts from a pre-training run's backbone and learns from the
labelled subjects' sequences only (``engines.train.selfgait_finetune``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from engines.checkpoint import atomic_save, encoder_from, load
from engines.train import selfgait_finetune
from engines.train.loop import CHECKPOINT, MODEL, Run, run_epochs, seed_everything
from engines.train.selfgait import SelfGaitMethod
from engines.train.settings import check_settings, out_of_bounds
from engines.train.silhouette_augment import DEFAULTS as AUGMENT_DEFAULTS
from engines.train.silhouette_augment import band_problems
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
    check_settings("selfgait", method.setting_problems(config, config["frames"]))
    keys, frames, description = load_sequences(data)
    fingerprint = data_sha256(keys, frames)
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


def data_sha256(keys: list[SequenceKey], frames: list[np.ndarray]) -> str:
    """What a run learns from (keys, so subject labels, and pixels): a resumed run must learn from the same."""
    digest = hashlib.sha256()
    for key, sequence in zip(keys, frames, strict=True):
        digest.update(str(key).encode() + b"\0" + np.ascontiguousarray(sequence).tobytes())
    return digest.hexdigest()


SCALE_SAMPLE = 64  # labelled sequences (their first crop) that set the start's scale: enough, and quick on a CPU
PRETRAINING_KEYS = ("data", "subjects", "subject_filter", "train_sequences", "seed", "epoch", "config")


def pretrained_start(source: Path) -> tuple[Path, dict]:
    """The pre-training run's ``model.pt`` and its loaded checkpoint; anything else is one line."""
    path = source / MODEL if source.is_dir() else source
    state = load(path)
    if state["method"] != "selfgait":
        raise InputError(f"{path}: a {state['method']} checkpoint; --finetune needs a selfgait pre-training run")
    if state["config"].get("stage") == selfgait_finetune.STAGE:
        raise InputError(
            f"{path}: already fine-tuned with labels (from {state['pretrained']}); fine-tune from a pre-training run"
        )
    return path, state


def labelled_subjects(subjects: list[str], fraction: float) -> list[str]:
    """The first ``fraction`` of the (sorted) training subjects, rounded half up: the only labels fine-tuning uses."""
    count = int(fraction * len(subjects) + 0.5)
    if count < 2:
        raise InputError(
            f"--labelled-fraction {fraction}: labels {count} of the {len(subjects)} training subjects; "
            "a triplet needs at least 2"
        )
    return sorted(subjects)[:count]


def finetune_selfgait(
    data: Path,
    out_dir: Path,
    pretrained: Path,
    *,
    labelled_fraction: float = 1.0,
    seed: int = 0,
    config_overrides: dict | None = None,
    resume: bool = True,
    show_progress: bool = True,
) -> Path:
    """Fine-tune the online backbone of ``pretrained`` (a selfgait run folder or ``model.pt``) with the labels of
    the first ``labelled_fraction`` of ``data``'s training subjects; returns the final ``model.pt``."""
    if not 0.0 < labelled_fraction <= 1.0:
        raise InputError(f"--labelled-fraction: expected a share in (0, 1], got {labelled_fraction}")
    path, start = pretrained_start(pretrained)
    if out_dir.resolve() == path.parent.resolve():
        raise InputError(f"{out_dir}: the pre-training run itself; fine-tune into another --out")
    config = {
        **selfgait_finetune.DEFAULTS,
        "dim": start["config"]["dim"],
        **{k: start["config"][k] for k in AUGMENT_DEFAULTS},
    }
    settable = sorted(set(config) - {"stage", "dim"})  # dim is the pre-trained backbone's
    unknown = sorted(set(config_overrides or {}) - set(settable))
    if unknown:
        raise InputError(f"--set {unknown[0]}: not a fine-tuning setting; those are {', '.join(settable)}")
    config.update(config_overrides or {})
    problems = out_of_bounds(config, selfgait_finetune.BOUNDS) + band_problems(config)
    check_settings("selfgait fine-tuning", problems)
    keys, frames, description = load_sequences(data)
    labelled = labelled_subjects(description["subjects"], labelled_fraction)
    kept = [i for i, k in enumerate(keys) if k.subject in labelled]
    keys, frames = [keys[i] for i in kept], [frames[i] for i in kept]
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    _refuse_other_start(out_dir / CHECKPOINT, sha256, resume)
    description.update(
        objective=selfgait_finetune.OBJECTIVE,
        subjects=labelled,
        train_sequences=len(keys),
        train_windows=len(keys),
        train_silhouettes=sum(len(f) for f in frames),
        training_subjects=len(description["subjects"]),
        labelled_fraction=labelled_fraction,
        labelled_count=len(labelled),
        labelled_subjects=labelled,
        pretrained=str(path),
        pretrained_sha256=sha256,
        pretraining={k: start[k] for k in PRETRAINING_KEYS if k in start},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(seed)
    model = selfgait_finetune.TripletTuned(config, start["f"])
    model.encoder.load_state_dict(encoder_from(start, path).state_dict())
    sample = [torch.from_numpy(frames[i][: config["frames"]]) for i in _spread(len(frames), SCALE_SAMPLE)]
    description["start_scale"] = selfgait_finetune.scale_to(
        model.encoder, sample, config["dim"], config["strip_distance"]
    )
    optimizer = SelfGaitMethod.make_optimizer(model, config)
    sequences = [torch.from_numpy(np.ascontiguousarray(s)) for s in frames]
    subjects = [[i for i, k in enumerate(keys) if k.subject == s] for s in labelled]
    final = run_epochs(
        out_dir,
        SelfGaitMethod.name,
        model,
        optimizer,
        generator,
        Run(config, seed, start["f"], description, data_sha256(keys, frames)),
        resume,
        lambda: selfgait_finetune.train_epoch(model, optimizer, sequences, subjects, generator, config, show_progress),
    )
    atomic_save(final, out_dir / MODEL)
    return out_dir / MODEL


def _spread(n: int, most: int) -> list[int]:
    """Up to ``most`` indices spread evenly over ``range(n)``."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def _refuse_other_start(checkpoint: Path, sha256: str, resume: bool) -> None:
    """A fine-tuning run resumes only from the very pre-training run it started from."""
    if not (resume and checkpoint.exists()):
        return
    began = load(checkpoint).get("pretrained_sha256")
    if began is None:
        raise InputError(f"{checkpoint}: a pre-training run is in this folder; fine-tune into a new --out")
    if began != sha256:
        raise InputError(
            f"{checkpoint}: fine-tunes the pre-training run {began[:12]}, not this --finetune {sha256[:12]}; "
            "use a new --out"
        )
