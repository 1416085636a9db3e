"""The training methods by name: each builds its model, its optimiser and runs one epoch."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from sensors.errors import InputError


class Method(Protocol):
    name: str
    uses_tracks: bool  # learns from the track of each window (then ``train`` needs them)

    def default_config(self) -> dict: ...

    # bounds of its numeric settings (engines.train.settings), checked on --set at once
    setting_bounds: dict

    def setting_problems(self, config: dict, f: int) -> list[str]: ...  # every setting outside what can train

    def build_model(self, config: dict, f: int) -> nn.Module: ...  # has .encoder, the contract encoder

    def make_optimizer(self, model: nn.Module, config: dict) -> torch.optim.Optimizer: ...

    def train_epoch(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        windows: torch.Tensor,
        generator: torch.Generator,
        config: dict,
        show_progress: bool,
        tracks: torch.Tensor | None = None,  # [N] the track of each window, for methods that learn from it
    ) -> dict[str, float]: ...

    def finalise(self, model: nn.Module, windows: torch.Tensor, config: dict, show_progress: bool) -> None:
        """After the last epoch: fit whatever the encoder derives from the training windows (may do nothing)."""


METHODS = ("simmc", "age", "trackcon", "selfgait")


def get_method(name: str) -> Method:
    if name == "simmc":
        from engines.train.simmc import SimMCMethod

        return SimMCMethod()
    if name == "age":
        from engines.train.age import AgeMethod

        return AgeMethod()
    if name == "trackcon":
        from engines.train.trackcon import TrackConMethod

        return TrackConMethod()
    if name == "selfgait":  # silhouettes: trained by engines.train.selfgait_run, loaded like the others
        from engines.train.selfgait import SelfGaitMethod

        return SelfGaitMethod()  # type: ignore[return-value]
    raise InputError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
