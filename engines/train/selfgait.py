"""SelfGait pre-training (Liu et al., ICASSP 2021) with BYOL (Grill et al., NeurIPS 2020): no labels at all.

An online network (``SelfGaitBackbone`` and a projector MLP) and a predictor MLP learn to predict, from one
augmented view of a silhouette sequence, what a target network (backbone and projector) makes of another
view of the same sequence. The target is never trained by gradients: after each step it moves towards the
online weights by an exponential moving average whose momentum rises from ``momentum`` (0.99) to 1 along
a cosine over the schedule, as in BYOL, so late in training it is a slow, stable teacher. The loss is
BYOL's symmetric 2 - 2 cos(prediction, target projection), each view predicting the other.

Why BYOL and not a contrastive loss: it needs no negatives, so a small batch on a 2-core CPU works, and
two sequences of one person in a batch are never pushed apart (the product's own data is five people).
Only the online backbone (``model.encoder``) is kept for encoding; projector, predictor and target are
training's. Views: ``engines.train.silhouette_augment``.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import torch
from torch import nn

from engines.models.selfgait import SelfGaitBackbone
from engines.train.selfgait_finetune import STAGE, TripletTuned
from engines.train.settings import COUNT, NON_NEGATIVE, PAIR, POSITIVE, SHARE, Bounds, out_of_bounds
from engines.train.silhouette_augment import BOUNDS as AUGMENT_BOUNDS
from engines.train.silhouette_augment import DEFAULTS as AUGMENT_DEFAULTS
from engines.train.silhouette_augment import band_problems, make_views
from engines.train.trackcon import scheduled_step
from sensors.progress import progress


def mlp(width: int, hidden: int, out: int) -> nn.Sequential:
    """BYOL's projector and predictor: linear, batch norm, ReLU, linear."""
    return nn.Sequential(
        nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out)
    )


class SelfGaitBYOL(nn.Module):
    """Online backbone + projector + predictor, and the EMA target (backbone + projector, no gradients)."""

    def __init__(self, config: dict, f: int) -> None:
        super().__init__()
        self.encoder = SelfGaitBackbone(f=f, dim=config["dim"])  # the online backbone: what is exported
        self.projector = mlp(self.encoder.embedding_dim, config["hidden"], config["projection"])
        self.predictor = mlp(config["projection"], config["hidden"], config["projection"])
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_projector = copy.deepcopy(self.projector)
        for parameter in self.target_parameters():
            parameter.requires_grad_(False)

    def online_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.projector.parameters(), *self.predictor.parameters()]

    def target_parameters(self) -> list[nn.Parameter]:
        return [*self.target_encoder.parameters(), *self.target_projector.parameters()]

    def loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Symmetric BYOL loss of two views [N, T, 64, 44] of the same N sequences (mean over the batch)."""
        p_a = self.predictor(self.projector(self.encoder(a)))
        p_b = self.predictor(self.projector(self.encoder(b)))
        with torch.no_grad():
            z_a = self.target_projector(self.target_encoder(a))
            z_b = self.target_projector(self.target_encoder(b))
        return (regression_loss(p_a, z_b) + regression_loss(p_b, z_a)).mean()

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * online; batch-norm statistics copied."""
        online = [*self.encoder.parameters(), *self.projector.parameters()]
        for target, source in zip(self.target_parameters(), online, strict=True):
            target.mul_(momentum).add_(source.detach(), alpha=1.0 - momentum)
        for target, source in zip(self.target_projector.buffers(), self.projector.buffers(), strict=True):
            target.copy_(source)


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(prediction, target) per row: BYOL's mean squared error of unit vectors."""
    return 2.0 - 2.0 * nn.functional.cosine_similarity(prediction, target, dim=-1)


def target_momentum(step: int, total: int, base: float) -> float:
    """BYOL's schedule: ``base`` at step 0 rising along a cosine to 1 at ``total``."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * min(step, total) / max(1, total)) + 1.0) / 2.0


class SelfGaitMethod:
    """The ``selfgait`` method: its model, optimiser and epoch; the run itself is ``engines.train.selfgait_run``,
    since its data are silhouette sequences of any length, not skeleton windows."""

    name = "selfgait"
    uses_tracks = False
    setting_bounds: ClassVar[dict[str, Bounds]] = {
        "dim": COUNT,
        "hidden": COUNT,
        "projection": COUNT,
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "momentum": SHARE,
        "batch_size": PAIR,  # batch norm needs two sequences
        "steps_per_epoch": COUNT,
        "epochs": COUNT,
        **AUGMENT_BOUNDS,
    }

    @classmethod
    def setting_problems(cls, config: dict, f: int) -> list[str]:
        return out_of_bounds(config, cls.setting_bounds) + band_problems(config)

    @staticmethod
    def default_config() -> dict:
        return {
            "dim": 32,
            "hidden": 256,
            "projection": 64,
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "momentum": 0.99,
            "batch_size": 8,
            "steps_per_epoch": 15,
            "epochs": 4,  # 60 steps: minutes on 2 cores; a full dataset wants far more (docs/silhouettes.md)
            **AUGMENT_DEFAULTS,
        }

    @staticmethod
    def build_model(config: dict, f: int) -> SelfGaitBYOL | TripletTuned:
        """BYOL's networks; a fine-tuned checkpoint's config (``stage``) holds the backbone alone."""
        return TripletTuned(config, f) if config.get("stage") == STAGE else SelfGaitBYOL(config, f)

    @staticmethod
    def make_optimizer(model: nn.Module, config: dict) -> torch.optim.Optimizer:
        trained = model.online_parameters() if isinstance(model, SelfGaitBYOL) else model.parameters()
        return torch.optim.AdamW(trained, lr=config["lr"], weight_decay=config["weight_decay"])

    @staticmethod
    def finalise(model: nn.Module, windows: object, config: dict, show_progress: bool) -> None:
        """Nothing to fit after training."""

    @staticmethod
    def train_epoch(
        model: SelfGaitBYOL,
        optimizer: torch.optim.Optimizer,
        sequences: list[torch.Tensor],
        generator: torch.Generator,
        config: dict,
        show_progress: bool,
        tracks: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """``steps_per_epoch`` steps, each on ``batch_size`` sequences drawn with replacement, two views each."""
        total_steps = config["steps_per_epoch"] * config["epochs"]
        model.train()
        total = 0.0
        steps = range(config["steps_per_epoch"])
        for _ in progress(steps, "selfgait epoch", total=len(steps), enabled=show_progress):
            chosen = torch.randint(len(sequences), (config["batch_size"],), generator=generator).tolist()
            batch = [sequences[i] for i in chosen]
            loss = model.loss(make_views(batch, config, generator), make_views(batch, config, generator))
            step = scheduled_step(optimizer, loss, total_steps, config["lr"])
            model.update_target(target_momentum(step + 1, total_steps, config["momentum"]))
            total += loss.item()
        return {"loss": total / len(steps)}
