"""What a stranger scores against people an encoder was fine-tuned to tell apart, measured by cross-fitting.

``gaitwatch adapt --gallery`` fine-tunes the encoder on the enrolled people, which pushes them apart: their
distances to each other then say little of a stranger's, who was never trained on, and a site threshold
set from them names far too many strangers (on people never seen in training: 86 % at a 1 % target;
docs/site.md). Keeping some enrolled people out of the fine-tune to measure by costs the model what it
would have learned of them, and a stranger then lands near those untrained people (measured: worse both
ways). So the fine-tune is repeated ``FOLDS`` times, each time with a fold of the people left out, and in
each of these stand-in models every left-out person's enrolled tracks are scored against the people it did
train on: exactly a stranger's situation in the final model, which trains on everyone. ``calibrate site``
sets the threshold from these scores (``stream.adaptation_card``).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from engines.adapt import adapt_checkpoint
from engines.checkpoint import encoder_from
from engines.metrics import pool_by_group
from engines.models import embed_in_batches
from engines.track_distance import TrackDistance, metric_of
from sensors.progress import progress

FOLDS = 4
MIN_PEOPLE = 3  # a stand-in model needs two people to tell apart and one left out
MAX_PAIRS = 5000  # kept in the model card (a seeded sample): enough for the fit's median and lower half
MAX_NEAREST = 4096  # likewise, the left-out tracks' nearest distances


def cross_fitted_strangers(
    checkpoint: dict,
    windows: np.ndarray,
    people: np.ndarray,
    tracks: np.ndarray,
    *,
    steps: int,
    seed: int = 0,
    show_progress: bool = True,
    background: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict | None:
    """Stranger scores for a fine-tune of ``checkpoint`` on enrolled ``windows`` [N, f, 20, 3] of ``people`` [N]
    in enrolled ``tracks`` [N].

    The stand-ins train on the enrolled people's windows alone, never on a site's recordings: the people left
    out may walk in those, and a stand-in that had learned their tracks would score them too far away. They do
    train with the final fine-tune's ``background`` (people who are not the site's), as it does.
    Returns the card's record: ``pairs`` (a left-out track to the nearest track of a person trained on),
    ``nearest`` (a left-out track to the nearest such person), how many of each, the people and the folds;
    None with fewer than ``MIN_PEOPLE`` people."""
    everyone = np.unique(people)
    if len(everyone) < MIN_PEOPLE:
        return None
    rng = np.random.default_rng([seed, 13])
    metric = metric_of(checkpoint)
    folds = np.array_split(rng.permutation(everyone), min(FOLDS, len(everyone)))
    data = torch.from_numpy(np.ascontiguousarray(windows, np.float32))
    _, first = np.unique(tracks, return_index=True)
    owner = people[first]
    began = time.perf_counter()
    pairs, nearest = [], []
    for fold in progress(folds, "Measuring strangers", total=len(folds), enabled=show_progress):
        trained = ~np.isin(people, fold)
        stand_in = adapt_checkpoint(
            checkpoint,
            windows[trained],
            people[trained],
            steps=steps,
            seed=seed,
            show_progress=False,
            background=background,
        )
        embedded = embed_in_batches(encoder_from(stand_in, "stand-in"), data).numpy().astype(np.float64)
        means, _ = pool_by_group(embedded, tracks)  # tracks ascending, as np.unique orders them
        left_out = np.isin(owner, fold)
        distance = TrackDistance.fit(metric, means[~left_out], owner[~left_out])  # the gallery of those trained on
        distances = distance(means[left_out], means[~left_out])
        others = owner[~left_out]
        per_person = np.stack([distances[:, others == p].min(axis=1) for p in np.unique(others)])
        pairs.append(per_person.ravel())
        nearest.append(per_person.min(axis=0))
    pairs_all, nearest_all = np.concatenate(pairs), np.concatenate(nearest)
    return {
        "folds": len(folds),
        "people": len(everyone),
        "pair_count": len(pairs_all),
        "pairs": _sample(pairs_all, MAX_PAIRS, rng),
        "nearest_count": len(nearest_all),
        "nearest": _sample(nearest_all, MAX_NEAREST, rng),
        "seconds": round(time.perf_counter() - began, 1),
    }


def _sample(values: np.ndarray, most: int, rng: np.random.Generator) -> list[float]:
    """At most ``most`` of ``values`` (a seeded draw), sorted and rounded for the card."""
    chosen = values if len(values) <= most else rng.choice(values, most, replace=False)
    return [round(float(v), 6) for v in np.sort(chosen)]
