"""TrackCon training: windows of one track are one person; windows of other tracks are, mostly, others.

No identity labels are used. What the loss knows comes from the tracker, live or in a recording:
every window of one walk (one track) shows the same person. Each step draws ``tracks_per_batch``
tracks and ``windows_per_track`` windows of each, changes every window by the site augmentations
(``engines.train.augment``), and pulls windows of a track together and the others apart with a
supervised-contrastive loss (Khosla et al., NeurIPS 2020) whose classes are tracks, not people.

A second, track-level term trains what the node decides on: the mean embedding of many windows of a track. Each step
also draws two groups of ``windows_per_group`` windows from every chosen track, and the same loss pulls the two
(unit-length) group means of a track together and pushes other tracks' apart. Chosen on held-out validation
(docs/trackcon.md): walk-level top-1 and stranger rejection improved, window accuracy held. ``window_weight`` 0
leaves the window term out and ``margin`` adds CosFace's margin to both terms; measured on people never seen, both
separated new people worse (off by default). ``isotropy`` adds the group means' ``anisotropy`` (how few directions
carry their variance); measured on three people-never-seen validations, it moved the strict open-set end both ways
(off by default). ``tempo`` re-times windows as if the walker's pace changed (``engines.train.tempo``); on KGBD,
whose walkers keep their pace, it turned new people away worse (off by default; docs/trackcon-experiments.md).
``group_span`` below 1 draws each group of the track-level term from its own stretch of that share of the track, so
that two parts of a walk must agree; it moved the strict end both ways across validations and was level after
``adapt --gallery`` (off by default).

Two walks of one person in a batch are wrongly pushed apart; with many people that is rare, and the
augmentations and the body-frame input leave no way to tell walks apart but the person. Optionally
(``pseudo_pairs_from``, off by default), tracks that are each other's clear nearest count as one person
after that many epochs (``engines.train.pseudo_pairs``); on held-out validation one wrong pair cost more
than the right ones gained (docs/trackcon.md).

The learning rate warms up over the first 5 % of steps and then follows a cosine to zero over the
configured schedule; the step count lives in the optimiser's state, so a resumed run continues it.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from engines.models.trackcon import TrackConEncoder, TrackConModel
from engines.train.augment import BOUNDS as AUGMENT_BOUNDS
from engines.train.augment import DEFAULTS as AUGMENT_DEFAULTS
from engines.train.augment import augment_windows
from engines.train.pseudo_pairs import merged_members, mutual_nearest_pairs, track_means
from engines.train.settings import COUNT, NON_NEGATIVE, PAIR, POSITIVE, Bounds, out_of_bounds
from engines.train.tempo import Clips, extended_clips, retimed_windows
from sensors.progress import progress

WARMUP_SHARE = 0.05


def supervised_contrastive_loss(
    embeddings: torch.Tensor, tracks: torch.Tensor, temperature: float, margin: float = 0.0
) -> torch.Tensor:
    """Mean over anchors of -log p(positive) averaged over the anchor's positives (same track, not itself).

    ``embeddings`` [N, D] unit vectors; ``tracks`` [N] integer track of each row. Anchors without a
    positive in the batch contribute nothing. ``margin`` is subtracted from every positive's cosine
    (CosFace's additive margin, Wang et al. 2018): a positive must beat the negatives by that much.
    """
    itself = torch.eye(len(embeddings), dtype=torch.bool)
    positive = (tracks[:, None] == tracks[None, :]) & ~itself
    similarity = (embeddings @ embeddings.T - margin * positive) / temperature
    similarity = similarity.masked_fill(itself, float("-inf"))
    log_probability = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    per_anchor = log_probability.masked_fill(~positive, 0.0).sum(dim=1) / positive.sum(dim=1).clamp(min=1)
    has_positive = positive.any(dim=1)
    return -per_anchor[has_positive].mean()


def anisotropy(embeddings: torch.Tensor) -> torch.Tensor:
    """How unevenly ``embeddings`` [N, D] spread their variance over directions: D x ||C||² / tr(C)² - 1 for their
    covariance C, that is D / (effective dimension) - 1; 0 when every direction carries the same variance.

    Basis-free (the eigenvalues' second moment against their sum), so it asks for no particular axes, only that
    the embedding uses all of its dimensions rather than the few that separate the training tracks best."""
    centred = embeddings - embeddings.mean(dim=0, keepdim=True)
    covariance = centred.T @ centred / (len(embeddings) - 1)
    return embeddings.shape[1] * covariance.square().sum() / torch.trace(covariance).square() - 1.0


def learning_rate(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first WARMUP_SHARE of ``total`` steps, then a cosine to zero."""
    warmup = max(1, int(WARMUP_SHARE * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    done = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * 0.5 * (1 + math.cos(math.pi * done))


def steps_taken(optimizer: torch.optim.Optimizer) -> int:
    """How many steps this optimiser has taken (Adam keeps the count per parameter)."""
    for state in optimizer.state.values():
        if "step" in state:
            return int(state["step"])
    return 0


def scheduled_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, total: int, peak: float) -> int:
    """One optimiser step on ``loss`` at the scheduled learning rate (``learning_rate``); returns the steps taken
    before it (the schedule's position, read from the optimiser so that a resumed run goes on where it was)."""
    step = steps_taken(optimizer)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, total, peak)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return step


def track_batches(tracks: torch.Tensor) -> list[torch.Tensor]:
    """The window indices of each track, in track order."""
    order = torch.argsort(tracks, stable=True)
    _, counts = torch.unique_consecutive(tracks[order], return_counts=True)
    return list(torch.split(order, counts.tolist()))


def batch_loss(
    encoder: nn.Module,
    windows: torch.Tensor,
    members: list[torch.Tensor],
    per_batch: int,
    generator: torch.Generator,
    config: dict,
    chosen: list[int] | None = None,
    clips: Clips | None = None,
) -> torch.Tensor:
    """The loss of one batch: ``per_batch`` tracks drawn from ``members`` (``track_batches``), ``windows_per_track``
    windows of each drawn with replacement, every window augmented, plus the track-level term over group means
    (module docstring) where ``windows_per_group`` is set; shared by training and site adaptation. ``chosen``:
    the tracks (indices into ``members``) where the caller draws them itself (adaptation's background); ``clips``:
    ``training_clips`` of ``windows``, which the pace augmentation reads from (None: it is off)."""
    if chosen is None:
        chosen = torch.randperm(len(members), generator=generator)[:per_batch].tolist()
    per_batch = len(chosen)
    k = config["windows_per_track"]
    margin = config.get("margin", 0.0)  # runs made before the margin have none
    loss = torch.zeros(())
    window_weight = config.get("window_weight", 1.0)
    if window_weight:
        picked = _picked(windows, _draw(members, chosen, k, generator), clips, config, generator)
        embeddings = encoder(augment_windows(picked, generator, config))
        loss = window_weight * supervised_contrastive_loss(
            embeddings, torch.arange(per_batch).repeat_interleave(k), config["temperature"], margin
        )
    group = config.get("windows_per_group", 0)
    if group:
        span = config.get("group_span", 1.0)  # runs made before it drew groups from the whole track
        index = (
            _draw(members, chosen, 2 * group, generator)
            if span >= 1
            else draw_from_spans(members, chosen, group, span, generator)
        )
        picked = _picked(windows, index, clips, config, generator)
        drawn = encoder(augment_windows(picked, generator, config))
        means = nn.functional.normalize(drawn.view(2 * per_batch, group, -1).mean(dim=1), dim=1)
        tracks = torch.arange(per_batch).repeat_interleave(2)
        loss = loss + config["group_weight"] * supervised_contrastive_loss(means, tracks, config["temperature"], margin)
        isotropy = config.get("isotropy", 0.0)  # runs made before it have none
        if isotropy:
            loss = loss + isotropy * anisotropy(means)
    return loss


def training_clips(windows: torch.Tensor, tracks: torch.Tensor, config: dict) -> Clips | None:
    """What the pace augmentation reads from (``engines.train.tempo``), or None where it is off."""
    return extended_clips(windows, tracks) if config.get("tempo", 0.0) > 0 else None  # older runs have no tempo


def _picked(
    windows: torch.Tensor, index: torch.Tensor, clips: Clips | None, config: dict, generator: torch.Generator
) -> torch.Tensor:
    """The windows ``index``, re-timed where the pace augmentation is on."""
    if clips is None:
        return windows[index]
    return retimed_windows(clips, index, windows.shape[1], config["tempo"], generator)


def draw_from_spans(
    members: list[torch.Tensor], chosen: list[int], group: int, span: float, generator: torch.Generator
) -> torch.Tensor:
    """Two groups of ``group`` window indices per chosen track, each drawn with replacement from its own stretch
    of ``span`` x the track's windows at a random place (``members`` keeps a track's windows in time order)."""
    drawn = []
    for t in chosen:
        track = members[t]
        width = max(1, min(len(track), math.ceil(span * len(track))))
        for _ in range(2):
            start = int(torch.randint(len(track) - width + 1, (1,), generator=generator))
            drawn.append(track[start + torch.randint(width, (group,), generator=generator)])
    return torch.cat(drawn)


def _draw(members: list[torch.Tensor], chosen: list[int], count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` window indices of each chosen track, drawn with replacement, track after track."""
    return torch.cat([members[t][torch.randint(len(members[t]), (count,), generator=generator)] for t in chosen])


class TrackConMethod:
    name = "trackcon"
    uses_tracks = True
    setting_bounds: ClassVar[dict[str, Bounds]] = {
        "hidden": COUNT,
        "dim": COUNT,
        "temperature": POSITIVE,
        "margin": Bounds(0, 1),
        "lr": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "tracks_per_batch": PAIR,  # other tracks to push apart
        "windows_per_track": PAIR,  # windows of one track to pull together
        "windows_per_group": NON_NEGATIVE,
        "group_weight": NON_NEGATIVE,
        "window_weight": NON_NEGATIVE,
        "isotropy": NON_NEGATIVE,
        "steps_per_epoch": COUNT,
        "epochs": COUNT,
        "pseudo_pairs_from": NON_NEGATIVE,
        "pseudo_pairs_rate": Bounds(0, 1, open_low=True, open_high=True),
        "pseudo_pairs_distinct": Bounds(0, 1, open_low=True),
        "tempo": NON_NEGATIVE,
        "group_span": Bounds(0, 1, open_low=True),
        **AUGMENT_BOUNDS,
    }

    @classmethod
    def setting_problems(cls, config: dict, f: int) -> list[str]:
        """Checked before the first epoch (a bad pseudo-pair rate would otherwise fail epochs in)."""
        problems = out_of_bounds(config, cls.setting_bounds)
        if config.get("window_weight") == 0 and 0 in (config.get("windows_per_group"), config.get("group_weight")):
            problems.append(
                "window_weight is 0 and so is windows_per_group or group_weight: no term left to learn from"
            )
        if config.get("isotropy") and not config.get("windows_per_group"):
            problems.append(
                "isotropy is set but windows_per_group is 0: the term weighs the group means, and there are none"
            )
        return problems

    @staticmethod
    def default_config() -> dict:
        return {
            "hidden": 512,
            "dim": 128,
            "symmetric": True,  # a window and its mirror image embed alike (engines.models.trackcon)
            "temperature": 0.1,
            "margin": 0.0,  # additive margin on positives' cosine (supervised_contrastive_loss)
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "tracks_per_batch": 64,
            "windows_per_track": 4,
            "windows_per_group": 8,  # 0: no track-level term
            "group_weight": 1.0,
            "window_weight": 1.0,  # 0: only the track-level term
            "isotropy": 0.0,  # weight of the group means' anisotropy (spread over all dimensions); 0: off
            "steps_per_epoch": 250,
            "epochs": 20,
            # epochs trained before mutual nearest tracks count as one person; 0: never (off: docs/trackcon.md)
            "pseudo_pairs_from": 0,
            "pseudo_pairs_rate": 0.001,  # chance that a track without a partner gets one (engines.train.pseudo_pairs)
            "pseudo_pairs_distinct": 0.9,  # a pair's nearest at most this share of their second nearest
            "group_span": 1.0,  # share of a track each group of the track-level term is drawn from; 1: all of it
            "tempo": 0.0,  # walking pace re-timed by up to 1 + tempo either way (engines.train.tempo); 0: off
            **AUGMENT_DEFAULTS,
        }

    @staticmethod
    def build_model(config: dict, f: int) -> TrackConModel:
        # Runs made before the symmetric encoder have no "symmetric" in their config: they were not symmetric.
        symmetric = bool(config.get("symmetric", False))
        return TrackConModel(TrackConEncoder(f=f, hidden=config["hidden"], dim=config["dim"], symmetric=symmetric))

    @staticmethod
    def make_optimizer(model: nn.Module, config: dict) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])

    @staticmethod
    def finalise(model: nn.Module, windows: torch.Tensor, config: dict, show_progress: bool) -> None:
        """Nothing to fit after training: the input statistics were kept up to date by every batch."""

    @staticmethod
    def train_epoch(
        model: TrackConModel,
        optimizer: torch.optim.Optimizer,
        windows: torch.Tensor,
        generator: torch.Generator,
        config: dict,
        show_progress: bool,
        tracks: torch.Tensor | None = None,
    ) -> dict[str, float]:
        if tracks is None:
            raise ValueError("trackcon learns from tracks: every window needs the track it was cut from")
        members = track_batches(tracks)
        if len(members) < 2:
            raise ValueError(f"trackcon needs windows of at least 2 tracks, got {len(members)}")
        clips = training_clips(windows, tracks, config)
        total_steps = config["steps_per_epoch"] * config["epochs"]
        epoch = steps_taken(optimizer) // config["steps_per_epoch"]
        pairs = []
        if 0 < config.get("pseudo_pairs_from", 0) <= epoch:  # runs made before pseudo pairs have no such key
            pairs = mutual_nearest_pairs(
                track_means(model.encoder, windows, members),
                config["pseudo_pairs_rate"],
                config["pseudo_pairs_distinct"],
            )
            members = merged_members(members, pairs)
        per_batch = min(config["tracks_per_batch"], len(members))
        model.train()
        total = 0.0
        steps = range(config["steps_per_epoch"])
        for _ in progress(steps, "trackcon epoch", total=len(steps), enabled=show_progress):
            loss = batch_loss(model.encoder, windows, members, per_batch, generator, config, clips=clips)
            scheduled_step(optimizer, loss, total_steps, config["lr"])
            total += loss.item()
        return {"loss": total / len(steps), "n_pseudo_pairs": len(pairs)}
