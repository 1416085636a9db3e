"""Label-free adaptation of a TrackCon encoder to a site: its sensor's statistics, then a short fine-tune on its tracks.

Why two steps:

1. **Statistics** (AdaBN, Li et al. 2016). Every BatchNorm's running mean and variance is re-estimated on
   the site's windows. The input statistics are where a sensor shows (joint definitions, depth noise,
   skeleton fitting): a Kinect v1's bone lengths and a MediaPipe body differ systematically, and a
   standardisation fitted on one describes the other badly. This step changes no learned weight.
2. **Optionally, a short fine-tune** (``steps`` > 0) with the training loss on the site's own tracks
   (windows of one track are one person), at a tenth of the training learning rate. Off by default:
   a site with few people has many walks of each, which the loss pushes apart as if they were
   different people. Measured (benchmarks/cross_site.md): on the CMU walks (8 people, 26 walks) 300
   steps dropped the nearest-is-right count from 18/18 to 13/18, and on CASIA-B it changed nothing;
   statistics alone kept both. The default was set from those two sites, the only ones we have.
   The classes need not be tracks: ``gaitwatch adapt --gallery`` gives every enrolled identity one class
   (the user's names), which on people never seen in training named more of them right on both splits
   measured and cut the enrolled people turned away at FAR 1 % from 51 % to 16 % on kgbd:0's
   (benchmarks/adapt_people.md), but not on kgbd:1's or kgbd:2's (docs/site.md); what a stranger
   then scores is measured by stand-in fine-tunes (``engines.adapt_strangers``), since the people
   trained on no longer tell it.
3. **Optionally, background tracks** in the fine-tune: tracks of people who will not be at the site (another
   dataset, other sites' recordings), each track a class of its own, half of every batch. Fine-tuned on the
   enrolled people alone, the encoder learns to spread those people apart and nothing else, so a stranger may
   land next to one of them; open-set recognition keeps a background of other people in training for that
   reason. They change no statistic: those stay the site's own.

The result is a checkpoint of the same method and shape, so export, the model card and ``gallery
reembed`` treat it as any other.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import torch
from torch import nn

from engines.train.trackcon import TrackConMethod, batch_loss, track_batches, training_clips
from sensors.errors import InputError
from sensors.progress import progress

logger = logging.getLogger("gaitwatch.adapt")

SUGGESTED_STEPS = 300  # what was measured, when a site has many people and few walks each
LEARNING_RATE_SHARE = 0.1  # of the method's training learning rate
STATISTICS_BATCH = 4096


def adapt_checkpoint(
    checkpoint: dict,
    windows: np.ndarray,
    tracks: np.ndarray,
    *,
    steps: int,
    seed: int = 0,
    show_progress: bool = True,
    background: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """A new checkpoint: ``checkpoint`` (a loaded TrackCon ``model.pt``) adapted to ``windows`` [N, f, 20, 3] whose
    tracks are ``tracks`` [N]; ``background``: (windows [M, f, 20, 3], tracks [M]) of people who will not be at
    the site, for the fine-tune only. The input is not changed; the result records what it was adapted on."""
    if checkpoint.get("method") != "trackcon":
        raise InputError(
            f"adaptation needs a trackcon checkpoint (its statistics and loss), got {checkpoint.get('method')!r}"
        )
    if len(windows) == 0 or len(np.unique(tracks)) < 2:
        raise InputError(
            f"adaptation needs whole windows of at least 2 tracks; the recordings gave {len(np.unique(tracks))} "
            f"tracks and {len(windows)} windows"
        )
    if steps < 0:
        raise InputError(f"--steps: expected 0 or more, got {steps}")
    if background is not None and (len(background[0]) == 0 or len(background[0]) != len(background[1])):
        raise InputError(
            f"the background needs windows and a track for each; got {len(background[0])} windows and "
            f"{len(background[1])} tracks"
        )
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    method = TrackConMethod()
    config = dict(checkpoint["config"])
    model = method.build_model(config, checkpoint["f"])
    model.load_state_dict(checkpoint["model_state"])
    data = torch.from_numpy(np.ascontiguousarray(windows, np.float32))
    track_ids = torch.from_numpy(np.asarray(tracks, np.int64))
    began = time.perf_counter()
    reestimate_statistics(model.encoder, data)
    if steps:
        _fine_tune(model, data, track_ids, config, steps, generator, show_progress, background)
        reestimate_statistics(model.encoder, data)  # the weights moved: the statistics follow them
    adapted = copy.copy(checkpoint)
    adapted["model_state"] = model.state_dict()
    adapted["adaptation"] = {
        "from": {k: checkpoint.get(k) for k in ("split", "seed", "epoch", "dataset")},
        "windows": len(data),
        "tracks": len(torch.unique(track_ids)),
        "steps": steps,
        "learning_rate": config["lr"] * LEARNING_RATE_SHARE,
        "seed": seed,
        "background_tracks": 0 if background is None else len(np.unique(background[1])),
        "seconds": round(time.perf_counter() - began, 1),
        **({"previous": checkpoint["adaptation"]} if "adaptation" in checkpoint else {}),
    }
    return adapted


@torch.no_grad()
def reestimate_statistics(encoder: nn.Module, windows: torch.Tensor) -> None:
    """Every BatchNorm's running mean and variance from ``windows`` alone (a cumulative average over batches)."""
    norms = [m for m in encoder.modules() if isinstance(m, nn.BatchNorm1d)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative: every batch weighs by its share
        m.train()
    for start in range(0, len(windows), STATISTICS_BATCH):
        batch = windows[start : start + STATISTICS_BATCH]
        if len(batch) > 1:
            encoder(batch)
    for m, (momentum, training) in zip(norms, saved, strict=True):
        m.momentum = momentum
        m.train(training)
    encoder.eval()


def _fine_tune(
    model: nn.Module,
    windows: torch.Tensor,
    tracks: torch.Tensor,
    config: dict,
    steps: int,
    generator: torch.Generator,
    show_progress: bool,
    background: tuple[np.ndarray, np.ndarray] | None,
) -> None:
    members = track_batches(tracks)
    per_batch = min(config["tracks_per_batch"], len(members))
    draw = None
    if background is not None:  # the background's windows after the site's, its tracks after the site's classes
        extra = torch.from_numpy(np.ascontiguousarray(background[0], np.float32))
        extra_tracks = torch.from_numpy(np.asarray(background[1], np.int64))
        extra_members = track_batches(extra_tracks)
        draw = BalancedDraw(len(members), len(members) + len(extra_members), config["tracks_per_batch"])
        members += [m + len(windows) for m in extra_members]
        tracks = torch.cat([tracks, extra_tracks - extra_tracks.min() + tracks.max() + 1])  # no track shared
        windows = torch.cat([windows, extra])
    clips = training_clips(windows, tracks, config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config["lr"] * LEARNING_RATE_SHARE, weight_decay=config["weight_decay"]
    )
    model.train()
    total = 0.0
    for _ in progress(range(steps), "Adapting", total=steps, enabled=show_progress):
        chosen = draw(generator) if draw is not None else None
        loss = batch_loss(model.encoder, windows, members, per_batch, generator, config, chosen, clips)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item()
    logger.info("adaptation: %d steps, mean loss %.4f", steps, total / max(steps, 1))
    model.eval()


class BalancedDraw:
    """Each batch's classes: half of ``per_batch`` from the site's (the first ``site`` members), the rest from the
    background's (members ``site`` to ``total``), each part as many as it has where it has fewer."""

    def __init__(self, site: int, total: int, per_batch: int) -> None:
        self.site, self.background = site, total - site
        self.site_count = min(per_batch // 2, self.site)
        self.background_count = min(per_batch - per_batch // 2, self.background)

    def __call__(self, generator: torch.Generator) -> list[int]:
        site = torch.randperm(self.site, generator=generator)[: self.site_count]
        background = self.site + torch.randperm(self.background, generator=generator)[: self.background_count]
        return torch.cat([site, background]).tolist()
