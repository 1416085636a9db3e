"""SelfGait's second stage (Liu et al., ICASSP 2021): the BYOL-pre-trained backbone fine-tuned with labels.

The paper fine-tunes its pre-trained backbone with a portion of the identity labels and GaitSet's loss:

- **P x K batches**: P labelled subjects (all of them when fewer), K windows each, drawn from the subject's
  sequences with replacement and cut as pre-training cuts its views (``engines.train.silhouette_augment``:
  temporal crop, shift and width, erased band). A subject with one sequence still gives K windows:
  windows of one sequence are one person, so the product's one-walk-per-person enrolments can train.
- **batch-all triplet loss**, margin 0.2, on every strip and part of the embedding ([N, 31 + 16, dim], each
  row on its own, as GaitSet and GaitPart apply it): every (anchor, positive of its subject, negative of
  another) hinge, averaged over the triplets still violating the margin (GaitSet's non-zero mean: the easy
  ones would otherwise dilute the gradient more as training goes), then over strips.

BYOL leaves the backbone's scale arbitrary (its projector's batch norm removes it: the product's pre-trained
backbone puts strips about 0.003 apart), while the triplet margin is absolute. So before the first step the
backbone's two last layers (HPM's and MTB's per-strip mappings, both linear) are multiplied by one factor that
makes the mean per-strip distance between the labelled sequences ``strip_distance`` (1, five margins): every
distance scales alike, so the start ranks as the pre-trained backbone does, and the margin means the same
on any pre-training run.

Only the backbone is trained and kept: BYOL's projector, predictor and target belong to pre-training. The
schedule is fixed and short (no model selection, no early stopping; ``engines.train.loop``). The run itself
(which subjects are labelled, the pre-training run it starts from) is ``engines.train.selfgait_run``.
"""

from __future__ import annotations

import torch
from torch import nn

from engines.models.selfgait import SelfGaitBackbone
from engines.train.settings import COUNT, NON_NEGATIVE, PAIR, POSITIVE
from engines.train.silhouette_augment import BOUNDS as AUGMENT_BOUNDS
from engines.train.silhouette_augment import make_views
from engines.train.trackcon import scheduled_step
from sensors.errors import InputError
from sensors.progress import progress

STAGE = "finetune"  # config["stage"]: a fine-tuned checkpoint holds the backbone alone (``TripletTuned``)
OBJECTIVE = "BYOL pre-training + triplet fine-tuning with labels (engines/train/selfgait_finetune.py)"
DEFAULTS = {
    "stage": STAGE,
    "margin": 0.2,  # GaitSet's
    "strip_distance": 1.0,  # the start's mean per-strip distance between labelled sequences (``scale_to``)
    "p_subjects": 8,  # P subjects a batch (fewer when fewer are labelled)
    "k_windows": 4,  # K windows of each
    "lr": 1e-4,  # GaitSet's; a tenth of pre-training's, so the pre-trained features are refined, not replaced
    "weight_decay": 1e-4,
    "steps_per_epoch": 15,
    "epochs": 4,  # 60 steps, as pre-training: minutes on 2 cores
}
BOUNDS = {
    "margin": POSITIVE,
    "strip_distance": POSITIVE,
    "p_subjects": PAIR,  # a triplet needs another subject
    "k_windows": PAIR,  # and another window of its own
    "lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "steps_per_epoch": COUNT,
    "epochs": COUNT,
    **AUGMENT_BOUNDS,
}


class TripletTuned(nn.Module):
    """The backbone alone (``.encoder``, as every method's model has it): what fine-tuning trains and saves."""

    def __init__(self, config: dict, f: int) -> None:
        super().__init__()
        self.encoder = SelfGaitBackbone(f=f, dim=config["dim"])


@torch.no_grad()
def scale_to(encoder: SelfGaitBackbone, windows: list[torch.Tensor], dim: int, distance: float) -> float:
    """Scale the backbone's last layers so the mean per-strip distance between ``windows`` (each [T, 64, 44],
    at least 2) is ``distance``; returns the factor."""
    embeddings = torch.cat([encoder(w[None]) for w in windows]).reshape(len(windows), -1, dim).transpose(0, 1)
    pairs = torch.triu_indices(len(windows), len(windows), offset=1)
    mean = torch.cdist(embeddings, embeddings)[:, pairs[0], pairs[1]].mean().item()
    if not mean > 0:
        raise InputError("the pre-trained backbone gives every labelled sequence one embedding: nothing to start from")
    factor = distance / mean
    encoder.hpm.fc.weight.mul_(factor)
    encoder.mtb.fc.weight.mul_(factor)
    return factor


def triplet_losses(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-all triplet loss of embeddings [N, S, D] (S strips, each on its own) with subject labels [N].

    Returns the loss trained on (per strip the mean over violating triplets, 0 where none, then the mean over
    strips) and the mean over every triplet (what falls steadily as the embedding separates subjects)."""
    x = embeddings.transpose(0, 1)  # [S, N, D]
    squared = (x * x).sum(-1)
    d2 = squared[:, :, None] + squared[:, None, :] - 2.0 * x @ x.transpose(1, 2)
    distances = torch.sqrt(torch.relu(d2) + 1e-12)  # [S, N, N]
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool)
    valid = positive[:, :, None] & ~same[:, None, :]  # [anchor, positive, negative]
    hinge = torch.relu(distances[:, :, :, None] - distances[:, :, None, :] + margin) * valid  # [S, N, N, N]
    hinge = hinge.flatten(1)
    violating = (hinge > 0).sum(1)
    trained = hinge.sum(1) / violating.clamp(min=1)
    every = hinge.sum(1) / valid.sum().clamp(min=1)
    return trained.mean(), every.mean()


def sample_batch(subjects: list[list[int]], config: dict, generator: torch.Generator) -> tuple[list[int], torch.Tensor]:
    """P subjects (without replacement) x K of their sequences (with replacement): sequence indices and labels."""
    chosen = torch.randperm(len(subjects), generator=generator)[: config["p_subjects"]].tolist()
    picks, labels = [], []
    for subject in chosen:
        own = subjects[subject]
        for i in torch.randint(len(own), (config["k_windows"],), generator=generator).tolist():
            picks.append(own[i])
            labels.append(subject)
    return picks, torch.tensor(labels)


def train_epoch(
    model: TripletTuned,
    optimizer: torch.optim.Optimizer,
    sequences: list[torch.Tensor],
    subjects: list[list[int]],
    generator: torch.Generator,
    config: dict,
    show_progress: bool,
) -> dict[str, float]:
    """``steps_per_epoch`` steps on P x K windows; ``subjects`` lists each labelled subject's sequence indices."""
    total_steps = config["steps_per_epoch"] * config["epochs"]
    model.train()
    trained_sum, every_sum = 0.0, 0.0
    steps = range(config["steps_per_epoch"])
    for _ in progress(steps, "selfgait fine-tuning", total=len(steps), enabled=show_progress):
        picks, labels = sample_batch(subjects, config, generator)
        views = make_views([sequences[i] for i in picks], config, generator)
        embeddings = model.encoder(views).reshape(len(picks), -1, config["dim"])  # [N, strips + parts, dim]
        loss, every = triplet_losses(embeddings, labels, config["margin"])
        scheduled_step(optimizer, loss, total_steps, config["lr"])
        trained_sum += loss.item()
        every_sum += every.item()
    return {"loss": trained_sum / len(steps), "loss_all_triplets": every_sum / len(steps)}
