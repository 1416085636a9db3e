"""A folder of CMU trials as a dataset: every ``SS_TT.amc`` a recording labelled with its subject and trial.

Why: the CMU mocap walks are distributed as a folder per subject (``SS/SS.asf`` beside ``SS/SS_TT.amc``),
so a user points ``info``, ``convert``, ``gallery enroll`` or ``replay`` at that folder (or at one subject's
folder) rather than naming every trial. Only the folder itself and its direct subfolders are looked in: a
folder handed by mistake (a home folder) is never walked to its depths.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sensors.errors import FormatError
from sensors.formats.cmu import read_amc
from sensors.recording import Recording

PATTERNS = ("*.amc", "*/*.amc")
"""Trials of one subject folder, then of a folder of subject folders."""


class CmuDataset:
    """The trials of a CMU folder, sorted by path (so by subject, then trial)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.trials = sorted(trial for pattern in PATTERNS for trial in self.path.glob(pattern))
        if not self.path.is_dir() or not self.trials:
            raise FormatError(self.path, "", "no CMU trials found (expected SS_TT.amc files, or folders of them)")

    @staticmethod
    def looks_like(path: str | Path) -> bool:
        """True for a folder holding ``.amc`` trials, directly or one subfolder down."""
        path = Path(path)
        return path.is_dir() and any(next(path.glob(pattern), None) is not None for pattern in PATTERNS)

    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self) -> Iterator[Recording]:
        for trial in self.trials:
            yield read_amc(trial)
