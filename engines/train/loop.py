"""The training loop shared by every method: seeding, epochs, checkpoints with resume, loss log and plot.

Only unlabeled training windows reach this loop; there is no early stopping and no
model selection: a run trains for its configured number of epochs and the last epoch
is the model (so the probe and gallery walks never influence which model we report).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engines.checkpoint import atomic_save, load
from engines.models import embed_in_batches
from engines.plotting import pyplot
from engines.train.methods import get_method
from engines.train.settings import check_settings
from sensors.errors import InputError

logger = logging.getLogger("gaitwatch.train")

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
MACHINE_KEYS = ("n_threads", "cpu")  # in an epoch's log row: what of the machine its sums depend on


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def train(
    method_name: str,
    windows: np.ndarray,
    out_dir: Path,
    *,
    seed: int,
    description: dict,
    config_overrides: dict | None = None,
    resume: bool = True,
    show_progress: bool = True,
    tracks: np.ndarray | None = None,
) -> Path:
    """Train on unlabeled windows [N, f, 20, 3]; returns the path of the final ``model.pt``.

    ``tracks`` [N] names the track (walk) each window was cut from, for methods that learn from it
    (no identity: two tracks of one person are two tracks)."""
    method = get_method(method_name)
    f = windows.shape[1]
    config = checked_config(method_name, config_overrides, f)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(seed)
    model = method.build_model(config, f)
    optimizer = method.make_optimizer(model, config)
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    digest = hashlib.sha256(windows.tobytes())
    if tracks is not None:
        tracks = np.ascontiguousarray(tracks, dtype=np.int64)
        if tracks.shape != (len(windows),):
            raise ValueError(f"tracks: expected one per window ({len(windows)}), got shape {tracks.shape}")
        if method.uses_tracks:  # what it learns from is part of the run; others' runs resume as before
            digest.update(tracks.tobytes())
    data = torch.from_numpy(windows)
    track_ids = None if tracks is None else torch.from_numpy(tracks)
    final = run_epochs(
        out_dir,
        method_name,
        model,
        optimizer,
        generator,
        Run(config, seed, f, description, digest.hexdigest()),
        resume,
        lambda: method.train_epoch(model, optimizer, data, generator, config, show_progress, tracks=track_ids),
    )
    method.finalise(model, data, config, show_progress)
    final["model_state"] = model.state_dict()
    if track_ids is not None:
        final["impostor_shape"] = _track_shape(model.encoder, data, tracks)
    atomic_save(final, out_dir / MODEL)
    return out_dir / MODEL


def checked_config(method_name: str, config_overrides: dict | None, f: int) -> dict:
    """The method's defaults with the overrides, refused whole (``check_settings``) if it cannot train; the CLI
    calls it before reading any data, so a bad setting costs no load."""
    method = get_method(method_name)
    config = {**method.default_config(), **(config_overrides or {})}
    check_settings(method_name, method.setting_problems(config, f))
    return config


@dataclass(frozen=True)
class Run:
    """What makes a run the same run (``_check_same_run``), recorded in every checkpoint."""

    config: dict
    seed: int
    f: int
    description: dict
    fingerprint: str  # sha256 of what it learns from


def run_epochs(
    out_dir: Path,
    method_name: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    run: Run,
    resume: bool,
    one_epoch: Callable[[], dict[str, float]],
) -> dict:
    """Every method's epochs: resume the very same run found in ``out_dir``, call ``one_epoch`` for each epoch
    left, write a checkpoint and the loss log after each; returns the last state, ``model`` holding its weights,
    without what only resuming needs (optimiser and random state)."""
    log: list[dict] = []
    start_epoch, seconds = 0, 0.0
    state_path = out_dir / CHECKPOINT
    if resume and state_path.exists():
        state = load(state_path)
        _check_same_run(state_path, state, method_name, run.config, run.seed, run.description, run.fingerprint)
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        generator.set_state(state["rng_state"])
        log, start_epoch, seconds = state["log"], state["epoch"], state["train_seconds"]
    epochs = run.config["epochs"]
    for epoch in range(start_epoch, epochs):
        began = time.perf_counter()
        stats = one_epoch()
        seconds += time.perf_counter() - began
        # torch's CPU thread count and the instruction set its kernels dispatch on change the order of its sums,
        # so a run repeats exactly only where both are the same
        log.append({"epoch": epoch + 1, "seconds": round(seconds, 2), **stats, **_machine()})
        logger.info("epoch %d/%d  %s", epoch + 1, epochs, "  ".join(f"{k} {v:.4g}" for k, v in stats.items()))
        state = {
            "method": method_name,
            "config": run.config,
            "seed": run.seed,
            "f": run.f,
            "epoch": epoch + 1,
            "train_seconds": seconds,
            "torch_threads": sorted({row["n_threads"] for row in log if "n_threads" in row}),
            "torch_cpu": sorted({row["cpu"] for row in log if "cpu" in row}),
            "log": log,
            "model_state": model.state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "rng_state": generator.get_state(),
            "windows_sha256": run.fingerprint,
            **run.description,
        }
        atomic_save(state, state_path)
        write_loss_log(out_dir, method_name, log)
    final = load(state_path)
    final.pop("optimizer_state")
    final.pop("rng_state")
    model.load_state_dict(final["model_state"])
    return final


def _machine() -> dict:
    """What of the machine an epoch's sums depend on: torch's CPU thread count and its kernels' instruction set."""
    return dict(zip(MACHINE_KEYS, (torch.get_num_threads(), torch.backends.cpu.get_cpu_capability()), strict=True))


def _track_shape(encoder: torch.nn.Module, windows: torch.Tensor, tracks: np.ndarray) -> dict:
    """The trained encoder's distances between different training tracks, as ``engines.impostors`` records them."""
    from engines.impostors import track_shape

    return track_shape(embed_in_batches(encoder, windows).numpy(), tracks)


def _check_same_run(
    path: Path, state: dict, method: str, config: dict, seed: int, description: dict, fingerprint: str
) -> None:
    """Resume only the very run that is in the folder: same method, config, seed, split and training data."""

    def without_epochs(c: dict) -> dict:
        return {k: v for k, v in c.items() if k != "epochs"}

    differences = [
        name
        for name, same in (
            ("method", state["method"] == method),
            ("config", without_epochs(state["config"]) == without_epochs(config)),
            ("seed", state["seed"] == seed),
            ("split", all(state.get(k) == v for k, v in description.items())),
            ("training windows", state.get("windows_sha256") == fingerprint),
        )
        if not same
    ]
    if differences:
        raise InputError(f"{path}: a different run ({', '.join(differences)}) is in this folder; use a new --out")
    if state["epoch"] > config["epochs"]:
        raise InputError(f"{path}: already trained {state['epoch']} epochs, more than the {config['epochs']} asked for")


def write_loss_log(out_dir: Path, method_name: str, log: list[dict]) -> None:
    """losses.json and losses.png (every logged quantity that is a loss, per epoch)."""
    (out_dir / "losses.json").write_text(json.dumps(log, indent=1) + "\n")
    plt = pyplot()

    keys = [k for k in log[0] if k not in ("epoch", "seconds", *MACHINE_KEYS) and not k.startswith("n_")]
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [row["epoch"] for row in log]
    for key in keys:
        ax.plot(epochs, [row[key] for row in log], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"{method_name} training losses")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "losses.png", dpi=100)
    plt.close(fig)
