"""SimMC training (Rao & Miao, IJCAI 2022): masked prototype contrast + masked intra-sequence contrast.

Each epoch: (1) encode every training window twice, each time pooling only a random
subset of its frames (x of f frames masked, one mask per batch); (2) cluster each set
of masked features into pseudo-identities (DBSCAN on k-reciprocal Jaccard distances);
prototypes are the clusters' mean features; (3) train on windows that are not noise
in either clustering with loss = lambda * MIC + (1 - lambda) * (MPC_1 + MPC_2).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engines.cluster import pseudo_labels
from engines.models.simmc import SimMCEncoder, SimMCModel
from engines.train.settings import COUNT, NON_NEGATIVE, PAIR, POSITIVE, SHARE, Bounds, out_of_bounds
from sensors.progress import progress


def _frame_masks(f: int, masked: int, generator: torch.Generator) -> torch.Tensor:
    """Frame indices [2, f - masked] of two random subsequences (each drops ``masked`` of the f frames)."""
    keep = f - masked
    return torch.stack([torch.randperm(f, generator=generator)[:keep] for _ in range(2)]).sort(dim=1).values


def _pooled(frame_features: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    return frame_features[:, kept].mean(dim=1)


def _prototypes(features: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """Mean feature of each cluster (labels 0..C-1; -1 ignored)."""
    keep = labels >= 0
    idx = torch.from_numpy(labels[keep])
    sums = torch.zeros(int(labels.max()) + 1, features.shape[1]).index_add_(0, idx, features[keep])
    counts = torch.bincount(idx, minlength=len(sums)).clamp(min=1)
    return sums / counts[:, None]


def prototype_loss(z: torch.Tensor, prototypes: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """MPC: cross-entropy of cosine similarities to all prototypes, sharpened by the temperature."""
    logits = F.normalize(z, dim=1) @ F.normalize(prototypes, dim=1).T / temperature
    return F.cross_entropy(logits, labels)


def intra_sequence_loss(predictor: nn.Module, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """MIC: symmetric negative cosine between one subsequence's prediction and the other (stop-gradient)."""
    p1, p2 = predictor(z1), predictor(z2)
    return -(F.cosine_similarity(p1, z2.detach()).mean() + F.cosine_similarity(p2, z1.detach()).mean()) / 2


class SimMCMethod:
    name = "simmc"
    uses_tracks = False
    setting_bounds: ClassVar[dict[str, Bounds]] = {
        "hidden": COUNT,
        "layers": COUNT,
        "masked_frames": NON_NEGATIVE,
        "lambda": SHARE,
        "temperature": POSITIVE,
        "lr": POSITIVE,
        "batch_size": PAIR,
        "epochs": COUNT,
        "eps": POSITIVE,
        "min_samples": COUNT,
        "k1": COUNT,
        "k2": COUNT,
    }

    @classmethod
    def setting_problems(cls, config: dict, f: int) -> list[str]:
        problems = out_of_bounds(config, cls.setting_bounds)
        if config["masked_frames"] >= f:
            problems.append(f"masked_frames must leave some of a window's {f} frames, got {config['masked_frames']}")
        return problems

    @staticmethod
    def default_config() -> dict:
        return {
            "hidden": 256,
            "layers": 1,
            "masked_frames": 2,
            "lambda": 0.5,
            "temperature": 0.06,
            "lr": 3.5e-4,
            "batch_size": 256,
            "epochs": 12,
            "eps": 0.6,
            "min_samples": 4,
            "k1": 20,
            "k2": 6,
        }

    @staticmethod
    def build_model(config: dict, f: int) -> SimMCModel:
        return SimMCModel(SimMCEncoder(f=f, hidden=config["hidden"], layers=config["layers"]))

    @staticmethod
    def make_optimizer(model: nn.Module, config: dict) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=config["lr"])

    @staticmethod
    @torch.no_grad()
    def _masked_features(model: SimMCModel, windows: torch.Tensor, config: dict, generator: torch.Generator):
        f, batch = windows.shape[1], config["batch_size"]
        first, second = [], []
        for start in range(0, len(windows), batch):
            frames = model.encoder.frame_features(windows[start : start + batch])
            masks = _frame_masks(f, config["masked_frames"], generator)
            first.append(_pooled(frames, masks[0]))
            second.append(_pooled(frames, masks[1]))
        return torch.cat(first), torch.cat(second)

    @staticmethod
    def finalise(model: nn.Module, windows: torch.Tensor, config: dict, show_progress: bool) -> None:
        """Nothing to fit after training: the SimMC encoder is complete when its last epoch ends."""

    @classmethod
    def train_epoch(
        cls,
        model: SimMCModel,
        optimizer: torch.optim.Optimizer,
        windows: torch.Tensor,
        generator: torch.Generator,
        config: dict,
        show_progress: bool,
        tracks: torch.Tensor | None = None,  # unused: this method learns from windows alone
    ) -> dict[str, float]:
        model.eval()
        feats_1, feats_2 = cls._masked_features(model, windows, config, generator)
        cluster = {k: config[k] for k in ("eps", "min_samples", "k1", "k2")}
        labels_1, labels_2 = pseudo_labels(feats_1, **cluster), pseudo_labels(feats_2, **cluster)
        protos_1, protos_2 = _prototypes(feats_1, labels_1), _prototypes(feats_2, labels_2)
        usable = np.flatnonzero((labels_1 >= 0) & (labels_2 >= 0))
        order = torch.from_numpy(usable)[torch.randperm(len(usable), generator=generator)]
        lab_1, lab_2 = torch.from_numpy(labels_1), torch.from_numpy(labels_2)

        model.train()
        f, batch, lam = windows.shape[1], config["batch_size"], config["lambda"]
        totals = {"loss": 0.0, "mpc": 0.0, "mic": 0.0}
        steps = range(0, len(order) - batch + 1, batch)  # full batches only, as the paper's code
        for start in progress(steps, "simmc epoch", total=len(steps), enabled=show_progress):
            idx = order[start : start + batch]
            frames = model.encoder.frame_features(windows[idx])
            masks = _frame_masks(f, config["masked_frames"], generator)
            z1, z2 = _pooled(frames, masks[0]), _pooled(frames, masks[1])
            mpc = prototype_loss(z1, protos_1, lab_1[idx], config["temperature"]) + prototype_loss(
                z2, protos_2, lab_2[idx], config["temperature"]
            )
            mic = intra_sequence_loss(model.predictor, z1, z2)
            loss = lam * mic + (1 - lam) * mpc
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            totals["loss"] += loss.item()
            totals["mpc"] += mpc.item()
            totals["mic"] += mic.item()
        n_steps = len(steps)
        stats = {k: v / n_steps if n_steps else float("nan") for k, v in totals.items()}
        stats["n_clusters"] = float(labels_1.max() + 1)
        stats["n_outliers"] = float(len(windows) - len(usable))
        return stats
