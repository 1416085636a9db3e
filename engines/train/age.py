"""Self-supervised training of AGE (Rao et al., IJCAI 2020; authors' code: github.com/Kali-Hac/SGE-LA).

Why these losses: reconstructing the window in reverse order is the pretext task, and the
locality-aware attention loss makes the decoder attend around the mirrored source step (the one it
is reconstructing), with a Gaussian of width sigma = D/2 around it: temporally adjacent frames are
the most correlated ("locality"), and the context vectors built from those alignments are the gait
encoding.

Objective, as in the authors' ``train.py`` (per axis there; our three axis models have disjoint
weights, so summing their losses trains each exactly as if alone):

- reconstruction = 1/2 sum (S_hat - S_reversed)^2 over steps and joints (``tf.nn.l2_loss``);
- locality = 1/2 sum (A - A * G)^2 over decoder and source steps, with the alignment matrix A and the
  mask G[t, s] = exp(-(s - (f-1-t))^2 / (2 (D/2)^2)), 1 at the mirrored step. The paper's objective
  alignment is A * G; the loss is zero exactly when all attention sits on the mirrored step. (The
  code fills G only within D of the centre and leaves 1 beyond; with f <= D + 1, as for f = 6,
  D = 6, that never happens; here G is the Gaussian everywhere.)
- both summed over the batch in the code; here averaged over windows, so the code's L2 weight decay
  (0.02 x 1/2 sum w^2 over all trainable variables, biases included) becomes 0.02 / 128 per window.
- Adam, learning rate 5e-4 (the value the code feeds at every step, which also makes its "halve on
  plateau" op ineffective), gradients clipped by value to [-5, 5], batches of 128.

The code trains for up to 400 epochs with early stopping on a held-out batch; the default here is
short enough for a CPU (see ``DEFAULT_EPOCHS``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from engines.models.age import AGEEncoder, AGEModel
from engines.train.settings import COUNT, NON_NEGATIVE, POSITIVE, Bounds, out_of_bounds
from sensors.progress import progress

# One epoch over 63,000 windows [6, 20, 3] (hidden 256, batch 128) took about 160 s on the 2-core
# development machine (torch 2.13 CPU, 493 batches); 3 epochs keep a default run near 8 minutes.
DEFAULT_EPOCHS = 3


def locality_mask(f: int, d: float) -> torch.Tensor:
    """Gaussian mask G [f, f]: row t (decoder step) centred on the mirrored source step f-1-t, sigma = d/2."""
    steps = torch.arange(f, dtype=torch.float32)
    centre = (f - 1) - steps
    distance = steps[None, :] - centre[:, None]
    return torch.exp(-(distance**2) / (2 * (d / 2) ** 2))


def locality_loss(alignments: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1/2 sum (A - A*G)^2 per window (summed over axes and steps), averaged over windows.

    alignments [N, ..., f, f] with the decoder step before the source step; mask [f, f]."""
    per_window = 0.5 * (alignments * (1 - mask)).pow(2).flatten(1).sum(1)
    return per_window.mean()


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/2 sum of squared errors per window, averaged over windows."""
    return 0.5 * (reconstruction - target).pow(2).flatten(1).sum(1).mean()


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """1/2 sum of squared parameters (the code regularises every trainable variable)."""
    return 0.5 * sum(p.pow(2).sum() for p in model.parameters())


class AgeMethod:
    """AGE / SGE-LA: reverse reconstruction with locality-aware attention, per axis."""

    name = "age"
    uses_tracks = False
    setting_bounds: ClassVar[dict[str, Bounds]] = {
        "hidden": COUNT,
        "layers": COUNT,
        "locality_d": POSITIVE,
        "la_weight": NON_NEGATIVE,
        "l2_weight": NON_NEGATIVE,
        "lr": POSITIVE,
        "clip_value": POSITIVE,
        "batch_size": COUNT,
        "epochs": COUNT,
        "whiten_eps": POSITIVE,
    }

    @classmethod
    def setting_problems(cls, config: dict, f: int) -> list[str]:
        return out_of_bounds(config, cls.setting_bounds)

    @staticmethod
    def default_config() -> dict:
        return {
            "hidden": 256,
            "layers": 2,
            "locality_d": 6.0,  # D; the Gaussian's sigma is D / 2
            "la_weight": 1.0,
            "l2_weight": 0.02 / 128,
            "lr": 5e-4,
            "clip_value": 5.0,
            "batch_size": 128,
            "epochs": DEFAULT_EPOCHS,
            "teacher_forcing": False,
            # PCA whitening of the encoding, eigenvalues floored at 1e-3 x the largest: chosen over none,
            # L2, per-axis L2, z-score and eps 1e-4 / 1e-5 on the validation split of the training walks.
            "whiten_eps": 1e-3,
        }

    @staticmethod
    def build_model(config: dict, f: int) -> AGEModel:
        encoder = AGEEncoder(f, config["hidden"], config["layers"], config["teacher_forcing"], config.get("whiten_eps"))
        return AGEModel(encoder)

    @staticmethod
    def make_optimizer(model: nn.Module, config: dict) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=config["lr"])

    @staticmethod
    def losses(model: AGEModel, windows: torch.Tensor, config: dict) -> dict[str, torch.Tensor]:
        """The objective on one batch: {"loss", "reconstruction", "locality", "weight_decay"}, where
        loss = reconstruction + la_weight * locality + weight_decay (already weighted)."""
        reconstruction, target, alignments = model(windows)
        mask = locality_mask(windows.shape[1], config["locality_d"]).to(alignments)
        parts = {
            "reconstruction": reconstruction_loss(reconstruction, target),
            "locality": locality_loss(alignments, mask),
            "weight_decay": config["l2_weight"] * l2_penalty(model),
        }
        parts["loss"] = parts["reconstruction"] + config["la_weight"] * parts["locality"] + parts["weight_decay"]
        return parts

    @staticmethod
    @torch.no_grad()
    def finalise(model: AGEModel, windows: torch.Tensor, config: dict, show_progress: bool) -> None:
        """Fit the encoding's whitening on every training window (no labels), once training has ended."""
        encoder = model.encoder
        if encoder.whiten is None:
            return
        encoder.eval()
        size = 4096
        chunks = range(0, len(windows), size)
        parts = [
            encoder.contexts(windows[s : s + size])
            for s in progress(chunks, "AGE whitening", total=len(chunks), enabled=show_progress)
        ]
        encoder.whiten.fit(torch.cat(parts))

    @classmethod
    def train_epoch(
        cls,
        model: AGEModel,
        optimizer: torch.optim.Optimizer,
        windows: torch.Tensor,
        generator: torch.Generator,
        config: dict,
        show_progress: bool,
        tracks: torch.Tensor | None = None,  # unused: this method learns from windows alone
    ) -> dict[str, float]:
        """One pass over shuffled mini-batches; returns the window-weighted mean of each loss."""
        model.train()
        n, size = windows.shape[0], config["batch_size"]
        order = torch.randperm(n, generator=generator)
        batches = math.ceil(n / size)
        totals: dict[str, float] = {}
        for b in progress(range(batches), "AGE epoch", total=batches, enabled=show_progress):
            batch = windows[order[b * size : (b + 1) * size]]
            parts = cls.losses(model, batch, config)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            nn.utils.clip_grad_value_(model.parameters(), config["clip_value"])
            optimizer.step()
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + value.item() * batch.shape[0]
        return {key: value / n for key, value in totals.items()}
