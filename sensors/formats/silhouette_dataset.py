"""Silhouette datasets on disk: which sequences a folder holds, whatever its layout, under one key.

Why one key: CASIA-B's ``GaitDatasetB-silh`` (``subject/condition-NN/view/*.png``) and OpenGait's pickles
(``subject/type/view/*.pkl``) name a sequence by the same three folders, and the evaluation protocol
(``engines.casia_b``) needs nothing else; a reader per layout turns a sequence into uint8 [T, 64, 44].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import InputError

PNG = "casia-png"
PKL = "opengait-pkl"
LAYOUTS = (PNG, PKL)


@dataclass(frozen=True, order=True)
class SequenceKey:
    """``subject/type/view``: for CASIA-B e.g. ``075/nm-05/090`` (type: condition and sequence number)."""

    subject: str
    type: str
    view: str

    @property
    def condition(self) -> str:
        """The type without its number: ``nm``, ``bg``, ``cl`` in CASIA-B."""
        return self.type.rsplit("-", 1)[0]

    def __str__(self) -> str:
        return f"{self.subject}/{self.type}/{self.view}"


@dataclass
class SilhouetteSequence:
    key: SequenceKey
    path: Path  # the sequence's folder
    frames: np.ndarray  # uint8 [T, 64, 44], aligned; T may be 0 (CASIA-B has a few empty sequences)


def sequence_folders(root: Path) -> list[tuple[SequenceKey, Path]]:
    """Every ``subject/type/view`` folder under ``root`` (hidden entries and loose files skipped), sorted."""
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (a silhouette dataset: subject/type/view folders)")
    found = []
    for subject in _folders(root):
        for kind in _folders(subject):
            for view in _folders(kind):
                found.append((SequenceKey(subject.name, kind.name, view.name), view))
    if not found:
        raise InputError(f"{root}: no subject/type/view folders (expected e.g. {root}/001/nm-01/090/)")
    return sorted(found)


def layout_of(root: Path) -> str:
    """Which layout a dataset folder is in: the first sequence holding .pkl or .png files decides."""
    for _, folder in sequence_folders(root):
        suffixes = {p.suffix.lower() for p in folder.iterdir() if p.is_file()}
        if ".pkl" in suffixes:
            return PKL
        if ".png" in suffixes:
            return PNG
    raise InputError(f"{root}: no .png or .pkl files in its subject/type/view folders")


def dataset_root(path: Path) -> Path:
    """The folder holding subject folders: ``path`` itself, or CASIA-B's ``GaitDatasetB-silh`` inside it."""
    inner = path / "GaitDatasetB-silh"
    return inner if inner.is_dir() else path


def read_dataset(path: Path, layout: str | None = None) -> Iterator[SilhouetteSequence]:
    """Every sequence of a silhouette dataset, aligned to 64 x 44, in key order."""
    from sensors.formats.casia_silh import read_png_sequence
    from sensors.formats.opengait_pkl import read_pkl_sequence

    root = dataset_root(path)
    layout = layout or layout_of(root)
    if layout not in LAYOUTS:
        raise InputError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    read = read_png_sequence if layout == PNG else read_pkl_sequence
    for key, folder in sequence_folders(root):
        yield SilhouetteSequence(key, folder, read(folder))


def _folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
