"""Walk-level match scores on a KGBD split, through a real gallery: the numbers thresholds are calibrated on.

Gallery walks are encoded window by window and enrolled (SQLite, one track per walk); each probe
walk is pooled into the mean of its windows' embeddings and matched with ``Gallery.search_tracks``,
exactly as the live matcher scores a track that has walked past. For each probe, the distance to
every enrolled identity comes back (its nearest enrolled track mean): the own identity's is a
genuine score, every other one an impostor score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from engines.metrics import pool_by_group
from engines.protocol import ProtocolData
from engines.runtime.base import Encoder
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin


@dataclass
class ProbeScores:
    """Per probe walk: its person, and the distance to each enrolled person (dict person -> distance)."""

    people: list[str]
    distances: list[dict[str, float]]

    def open_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Per probe: (own identity's distance if it is the nearest else inf, nearest *other* identity's distance).

        The second is what an unknown person would score against this gallery (the probe's own identity
        left out), so its quantiles give open-set thresholds; the first says which probes a threshold
        identifies correctly (detection and identification)."""
        identified, stranger = [], []
        for person, row in zip(self.people, self.distances, strict=True):
            others = [d for p, d in row.items() if p != person]
            nearest_other = min(others) if others else np.inf
            own = row.get(person, np.inf)
            identified.append(own if own < nearest_other else np.inf)
            stranger.append(nearest_other)
        return np.asarray(identified), np.asarray(stranger)

    def genuine_impostor(self) -> tuple[np.ndarray, np.ndarray]:
        genuine, impostor = [], []
        for person, row in zip(self.people, self.distances, strict=True):
            for other, distance in row.items():
                (genuine if other == person else impostor).append(distance)
        return np.asarray(genuine), np.asarray(impostor)


def enroll_gallery_walks(
    gallery: Gallery, encoder: Encoder, data: ProtocolData, people: set[str] | None = None, keep_windows: bool = False
) -> None:
    """Enroll the gallery walks of ``people`` (default: everyone) as one identity per person (``keep_windows``:
    with their windows, as ``gallery enroll --keep-windows``, so the gallery can be adapted on and re-embedded)."""
    embeddings = encoder.encode(data.gallery)
    identity: dict[int, int] = {}
    for walk in np.unique(data.gallery_walk).tolist():
        rows = data.gallery_walk == walk
        label = int(data.gallery_labels[rows][0])
        person = data.people[label]
        if people is not None and person not in people:
            continue
        if label not in identity:
            identity[label] = gallery.add_identity(person)
        if keep_windows:
            origins = [Origin(data.walk_names[walk], "0", window=w) for w in data.gallery[rows]]
        else:
            origins = [Origin(data.walk_names[walk], "0")] * int(rows.sum())
        gallery.enroll(identity[label], embeddings[rows], origins)


def probe_scores(
    gallery: Gallery,
    encoder: Encoder,
    data: ProtocolData,
    role: Literal["probe", "gallery"] = "probe",
    people: set[str] | None = None,
) -> ProbeScores:
    """Every walk of ``role`` ("probe" or "gallery") of ``people`` (default: everyone), pooled, against every
    enrolled identity. Why "gallery": the gallery walks of people never enrolled are stranger walks too."""
    windows, labels, walk_of = {
        "probe": (data.probe, data.probe_labels, data.probe_walk),
        "gallery": (data.gallery, data.gallery_labels, data.gallery_walk),
    }[role]
    if people is not None:
        chosen = np.isin(np.asarray(data.people)[labels], sorted(people))
        windows, labels, walk_of = windows[chosen], labels[chosen], walk_of[chosen]
    if len(windows) == 0:
        return ProbeScores([], [])
    pooled, walks = pool_by_group(encoder.encode(windows), walk_of)
    label_of = dict(zip(walk_of.tolist(), labels.tolist(), strict=True))
    enrolled = len(gallery.identities())
    names = {i.id: i.name for i in gallery.identities()}
    scored, distances = [], []
    for vector, walk in zip(pooled, walks.tolist(), strict=True):
        matches = gallery.search_tracks(vector, k=enrolled)
        scored.append(data.people[label_of[walk]])
        distances.append({names[m.identity]: m.distance for m in matches})
    return ProbeScores(scored, distances)


def scores_for(encoder: Encoder, data: ProtocolData, workdir: Path, people: set[str] | None = None) -> ProbeScores:
    """Build a gallery of ``data``'s gallery walks in ``workdir`` and score its probe walks against it."""
    workdir.mkdir(parents=True, exist_ok=True)
    gallery = Gallery.create(workdir / "gallery.db", encoder.card)
    enroll_gallery_walks(gallery, encoder, data, people)
    scores = probe_scores(gallery, encoder, data)
    gallery.close()
    return scores
