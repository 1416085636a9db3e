"""Scoring a silhouette encoder on a silhouette dataset: CASIA-B's standard protocol, or a small set's walks.

Every sequence is encoded whole, windowless, as GaitSet and its successors score CASIA-B (the encoder takes
any T >= 2). Two protocols:

- ``casia-b`` (``engines.casia_b``): a user's CASIA-B tree; only the test subjects (075-124) are read.
- ``walks``: for small sets, such as the product's own extractions of the shared clips (5 subjects, one view):
  each subject's first sequence (normal walks first, then by name) is its gallery, every other sequence a
  probe; per probe the nearest subject and its distance, and rank-1 and mAP over all probes.

Why two: the CASIA-B protocol needs test subjects and the NM/BG/CL conditions; a handful of walks has neither,
yet whether a model tells those people apart is still the question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.casia_b import GALLERY_TYPES, PROBE_TYPES, TEST_SUBJECTS, CasiaResult, evaluate
from engines.metrics import euclidean_distances, reid_metrics
from engines.runtime.silhouette_backend import MIN_FRAMES, SilhouetteEncoder
from sensors.errors import InputError
from sensors.formats.silhouette_dataset import PNG, SequenceKey, dataset_root, layout_of, sequence_folders
from sensors.progress import progress

CASIA_B = "casia-b"
WALKS = "walks"
PROTOCOLS = (CASIA_B, WALKS)
CASIA_TYPES = frozenset(GALLERY_TYPES) | {t for types in PROBE_TYPES.values() for t in types}


def is_casia_test(key: SequenceKey) -> bool:
    """Whether a sequence is a CASIA-B test subject's (075-124, numbered in three digits) gallery or probe."""
    subject = key.subject
    return len(subject) == 3 and subject.isdigit() and int(subject) in TEST_SUBJECTS and key.type in CASIA_TYPES


def default_protocol(keys: list[SequenceKey]) -> str:
    """``casia-b`` where the tree holds CASIA-B test subjects' sequences, else ``walks``."""
    return CASIA_B if any(is_casia_test(k) for k in keys) else WALKS


@dataclass
class Encoded:
    """Whole-sequence embeddings of a dataset, and the sequences too short to encode."""

    keys: list[SequenceKey]
    embeddings: np.ndarray  # float32 [len(keys), D]
    skipped: list[str] = field(default_factory=list)  # keys of sequences under MIN_FRAMES silhouettes


def encode_sequences(
    encoder: SilhouetteEncoder, root: Path, folders: list[tuple[SequenceKey, Path]], show_progress: bool = True
) -> Encoded:
    """Each sequence read, aligned and encoded whole, one at a time (a full CASIA-B never sits in memory)."""
    from sensors.formats.casia_silh import read_png_sequence
    from sensors.formats.opengait_pkl import read_pkl_sequence

    read = read_png_sequence if layout_of(root) == PNG else read_pkl_sequence
    keys, rows, skipped = [], [], []
    for key, folder in progress(folders, "encoding silhouettes", total=len(folders), enabled=show_progress):
        frames = read(folder)
        if len(frames) < MIN_FRAMES:
            skipped.append(str(key))
            continue
        keys.append(key)
        rows.append(encoder.encode(frames[None])[0])
    if not keys:
        raise InputError(f"{root}: no sequence of {MIN_FRAMES} or more silhouettes to encode")
    return Encoded(keys, np.stack(rows), skipped)


@dataclass
class ProbeMatch:
    probe: SequenceKey
    nearest: str  # the nearest gallery subject
    distance: float  # Euclidean, to that subject's gallery sequence
    rank: int  # where the probe's own subject ranks (1: named correctly)


@dataclass
class WalksResult:
    """The walks protocol: one gallery sequence per subject, every other sequence a probe."""

    gallery: dict[str, SequenceKey]  # subject -> its gallery sequence
    matches: list[ProbeMatch]
    rank1: float  # fractions in [0, 1]
    mAP: float

    def table(self) -> str:
        """A markdown table, a row per probe, then rank-1 and mAP."""
        lines = ["| probe | nearest | distance | own rank |", "| --- | --- | ---: | ---: |"]
        for m in self.matches:
            lines.append(f"| {m.probe} | {m.nearest} | {m.distance:.4f} | {m.rank} |")
        lines.append(
            f"\nrank-1 {100 * self.rank1:.1f} %, mAP {100 * self.mAP:.1f} % "
            f"({len(self.matches)} probes, {len(self.gallery)} gallery subjects)"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "gallery": {subject: str(key) for subject, key in self.gallery.items()},
            "probes": [
                {"probe": str(m.probe), "nearest": m.nearest, "distance": m.distance, "rank": m.rank}
                for m in self.matches
            ],
            "rank1": 100 * self.rank1,
            "mAP": 100 * self.mAP,
        }


def gallery_order(key: SequenceKey) -> tuple:
    """A subject's sequences in gallery preference: normal walks first (nm-01 before bg-01), then by name."""
    return (key.condition != "nm", key.type, key.view)


def evaluate_walks(keys: list[SequenceKey], embeddings: np.ndarray) -> WalksResult:
    """Each subject's first sequence (``gallery_order``) is its gallery; every other one a probe."""
    by_subject: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_subject.setdefault(key.subject, []).append(i)
    firsts = {s: min(rows, key=lambda i: gallery_order(keys[i])) for s, rows in sorted(by_subject.items())}
    gallery_rows = set(firsts.values())
    probes = [i for i in range(len(keys)) if i not in gallery_rows]
    if not probes:
        raise InputError("walks protocol: every subject has one sequence, so there is no probe to score")
    subjects = list(firsts)
    gallery = embeddings[[firsts[s] for s in subjects]]
    distances = euclidean_distances(embeddings[probes], gallery)
    labels = np.array([keys[i].subject for i in probes])
    scores = reid_metrics(distances, labels, np.array(subjects))
    matches = []
    for row, i in zip(distances, probes, strict=True):
        nearest = int(row.argmin())
        column = subjects.index(keys[i].subject)
        own = row[column]
        rank = 1 + int((row < own).sum() + (row[:column] == own).sum())  # ties: lower gallery index first
        matches.append(ProbeMatch(keys[i], subjects[nearest], float(row[nearest]), rank))
    return WalksResult({s: keys[firsts[s]] for s in subjects}, matches, scores.top1, scores.mAP)


def casia_dict(result: CasiaResult) -> dict:
    """Percentages of a CASIA-B result, as its table shows them."""
    return {
        "rank1": {c: {v: 100 * x for v, x in row.items()} for c, row in result.per_view.items()},
        "mean": {c: 100 * x for c, x in result.mean.items()},
        "probes": dict(result.probes),
    }


@dataclass
class SilhouetteScores:
    """One model's score on one dataset under one protocol: its table and its JSON."""

    protocol: str
    chosen: str  # why this protocol: "asked" or the default's reason
    encoded: Encoded
    result: CasiaResult | WalksResult

    def table(self) -> str:
        return self.result.table()

    def to_dict(self) -> dict:
        scores = casia_dict(self.result) if isinstance(self.result, CasiaResult) else self.result.to_dict()
        return {
            "protocol": self.protocol,
            "protocol_chosen": self.chosen,
            "sequences": len(self.encoded.keys),
            "skipped_short": self.encoded.skipped,
            **scores,
        }


def score_dataset(
    encoder: SilhouetteEncoder, data: Path, protocol: str | None = None, show_progress: bool = True
) -> SilhouetteScores:
    """Encode ``data``'s sequences whole and score them under ``protocol`` (None: ``default_protocol``)."""
    root = dataset_root(data)
    folders = sequence_folders(root)
    keys = [k for k, _ in folders]
    if protocol is None:
        protocol = default_protocol(keys)
        chosen = (
            "default: CASIA-B test subjects (075-124) present"
            if protocol == CASIA_B
            else "default: no CASIA-B test subjects (075-124)"
        )
    elif protocol in PROTOCOLS:
        chosen = "asked"
    else:
        raise InputError(f"protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if protocol == CASIA_B:
        folders = [(k, f) for k, f in folders if is_casia_test(k)]
        if not folders:
            raise InputError(
                f"{data}: no CASIA-B test-subject (075-124) sequences of types {', '.join(sorted(CASIA_TYPES))}"
            )
    encoded = encode_sequences(encoder, root, folders, show_progress)
    evaluate_protocol = evaluate if protocol == CASIA_B else evaluate_walks
    return SilhouetteScores(protocol, chosen, encoded, evaluate_protocol(encoded.keys, encoded.embeddings))
