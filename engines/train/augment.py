"""Augmentations for what differs between sites: how the sensor is mounted, how well it sees, and the walker's heading.

Each training window is turned about the vertical (any heading), tilted (a sensor's pitch and roll,
as when it is not calibrated to the floor) and jittered per joint (depth noise). Optionally a share of
joints is replaced by their parent's position (a joint the sensor lost or merged): off by default,
as it cost 3-5 points of window accuracy on the validation split and gained nothing at walk level;
on people never seen in training it named more of them but turned strangers away worse
(docs/trackcon-experiments.md).
Body size is never scaled: height and bone lengths are identity, not nuisance.
"""

from __future__ import annotations

import math

import torch

from engines.models.trackcon import CANONICAL_PARENTS
from engines.train.settings import NON_NEGATIVE, Bounds

DEFAULTS = {"tilt_degrees": 10.0, "joint_noise_m": 0.01, "joint_drop": 0.0}  # drop: off, see docs/trackcon.md
BOUNDS = {"tilt_degrees": Bounds(0, 90), "joint_noise_m": NON_NEGATIVE, "joint_drop": Bounds(0, 1, open_high=True)}


def _rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [N, 3, 3] about ``axis`` ("x", "y" or "z") by ``angle`` [N] radians."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    rows = {
        "x": (one, zero, zero, zero, c, -s, zero, s, c),
        "y": (c, zero, s, zero, one, zero, -s, zero, c),
        "z": (c, -s, zero, s, c, zero, zero, zero, one),
    }[axis]
    return torch.stack(rows, dim=-1).view(-1, 3, 3)


def augment_windows(windows: torch.Tensor, generator: torch.Generator, config: dict) -> torch.Tensor:
    """A randomly changed copy of ``windows`` [N, f, 20, 3] (see the module's docstring)."""
    n = len(windows)

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * 2 - 1

    tilt = math.radians(config["tilt_degrees"])
    turn = _rotation("y", uniform(n) * math.pi) @ _rotation("x", uniform(n) * tilt) @ _rotation("z", uniform(n) * tilt)
    out = torch.einsum("nij,nfkj->nfki", turn, windows)
    out = out + torch.randn(out.shape, generator=generator) * config["joint_noise_m"]
    if config["joint_drop"] > 0:
        dropped = torch.rand(n, 1, out.shape[2], 1, generator=generator) < config["joint_drop"]
        dropped[:, :, 0] = False  # the root has no parent to fall back on
        parents = torch.tensor([max(p, 0) for p in CANONICAL_PARENTS])
        out = torch.where(dropped.expand_as(out), out[:, :, parents], out)
    return out
