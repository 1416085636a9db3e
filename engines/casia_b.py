"""The standard CASIA-B protocol of the silhouette literature (GaitSet, GaitPart, SelfGait, OpenGait).

Subjects 001-074 train, 075-124 test. Of the test subjects, NM-01..04 are the gallery; the probes are
NM-05..06, BG-01..02 and CL-01..02. For each probe view and each *other* gallery view, rank-1 accuracy is
the share of probe sequences whose nearest gallery sequence (Euclidean, on that gallery view alone) is
their own subject; a probe view's accuracy is the mean over the 10 other gallery views (the identical view
excluded, as the papers report it), and a condition's is the mean over probe views.

Why here and not in the readers: it scores embeddings, whatever made them (a model, or the gait energy
image baseline); the readers (``sensors.formats.silhouette_dataset``) only give keyed sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sensors.errors import InputError
from sensors.formats.silhouette_dataset import SequenceKey

TRAIN_SUBJECTS = range(1, 75)
TEST_SUBJECTS = range(75, 125)
GALLERY_TYPES = ("nm-01", "nm-02", "nm-03", "nm-04")
PROBE_TYPES = {"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"), "CL": ("cl-01", "cl-02")}


@dataclass
class CasiaResult:
    """Rank-1 accuracy per probe condition: per probe view (identical gallery view excluded) and their mean."""

    per_view: dict[str, dict[str, float]] = field(default_factory=dict)  # condition -> probe view -> accuracy
    mean: dict[str, float] = field(default_factory=dict)  # condition -> mean over probe views
    probes: dict[str, int] = field(default_factory=dict)  # condition -> probe sequences scored

    def table(self) -> str:
        """A markdown table: a row per condition, a column per probe view, the mean last."""
        views = sorted({v for row in self.per_view.values() for v in row})
        lines = ["| probe | " + " | ".join(views) + " | mean |", "| --- |" + " ---: |" * (len(views) + 1)]
        for condition, row in self.per_view.items():
            cells = [f"{100 * row[v]:.1f}" if v in row else "" for v in views]
            lines.append(f"| {condition} | " + " | ".join(cells) + f" | {100 * self.mean[condition]:.1f} |")
        return "\n".join(lines)


def subject_number(key: SequenceKey) -> int:
    try:
        return int(key.subject)
    except ValueError:
        raise InputError(f"{key}: CASIA-B subjects are numbered 001-124, not {key.subject!r}") from None


def is_training(key: SequenceKey) -> bool:
    """Whether a sequence belongs to the protocol's training subjects (001-074): the only ones a model may see."""
    return subject_number(key) in TRAIN_SUBJECTS


def evaluate(keys: list[SequenceKey], embeddings: np.ndarray) -> CasiaResult:
    """Rank-1 per probe condition and view over the test subjects' sequences; training subjects are ignored.

    ``embeddings`` [N, D], a row per key; sequences with no embedding (an empty sequence) are left out by the
    caller. A probe view with no gallery on any other view scores nothing and is left out of the means."""
    embeddings = np.asarray(embeddings, np.float64)
    if embeddings.ndim != 2 or len(embeddings) != len(keys):
        raise InputError(f"{len(keys)} sequences but embeddings of shape {embeddings.shape}: expected [{len(keys)}, D]")
    test = np.array([subject_number(k) in TEST_SUBJECTS for k in keys], bool)
    subjects = np.array([k.subject for k in keys])
    types = np.array([k.type for k in keys])
    views = np.array([k.view for k in keys])
    gallery = test & np.isin(types, GALLERY_TYPES)
    result = CasiaResult()
    for condition, probe_types in PROBE_TYPES.items():
        probe = test & np.isin(types, probe_types)
        row: dict[str, float] = {}
        for probe_view in sorted(set(views[probe].tolist())):
            scores = []
            for gallery_view in sorted(set(views[gallery].tolist()) - {probe_view}):
                p = np.flatnonzero(probe & (views == probe_view))
                g = np.flatnonzero(gallery & (views == gallery_view))
                distances = _squared_distances(embeddings[p], embeddings[g])
                scores.append(float(np.mean(subjects[g[distances.argmin(axis=1)]] == subjects[p])))
            if scores:
                row[probe_view] = float(np.mean(scores))
        if row:
            result.per_view[condition] = row
            result.mean[condition] = float(np.mean(list(row.values())))
            result.probes[condition] = int(probe.sum())
    if not result.per_view:
        raise InputError("no test-subject (075-124) probe and gallery sequences on different views to score")
    return result


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] squared Euclidean distances, without the [len(a), len(b), D] difference array."""
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
