"""File formats: one reader per format, chosen from the path; every reader returns a ``Recording``.

| suffix                  | format                                              | reader                         |
| ----------------------- | --------------------------------------------------- | ------------------------------ |
| ``.gwrec``              | gaitwatch's own recording                           | ``gwrec.read_gwrec``           |
| ``.skeleton``           | NTU RGB+D (Kinect v2)                               | ``ntu.read_ntu_skeleton``      |
| ``.amc``                | CMU mocap (``SS.asf`` beside it)                    | ``cmu.read_amc``               |
| ``.txt``                | one KGBD walk                                       | ``kgbd.read_kgbd_walk``        |
| ``.csv``                | a Kinect v2 CSV export                              | ``kinect_csv.read_kinect_csv`` |
| ``.avi``, ``.mp4``, ... | a video, through MediaPipe pose                     | ``video.read_video``           |
| ``.zip``/folder         | the KGBD dataset (many walks, labelled)             | ``kgbd.KgbdDataset``           |
| folder                  | CMU trials (one subject's, or a folder of subjects) | ``cmu.dataset.CmuDataset``     |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sensors.errors import InputError
from sensors.formats._io import require_regular
from sensors.recording import Recording


def _readers() -> dict[str, Callable[[Path], Recording]]:
    from sensors.formats.cmu import read_amc
    from sensors.formats.gwrec import read_gwrec
    from sensors.formats.kgbd import read_kgbd_walk
    from sensors.formats.kinect_csv import read_kinect_csv
    from sensors.formats.ntu import read_ntu_skeleton
    from sensors.formats.video import SUFFIXES, read_video

    readers = {
        ".gwrec": read_gwrec,
        ".skeleton": read_ntu_skeleton,
        ".amc": read_amc,
        ".txt": read_kgbd_walk,
        ".csv": read_kinect_csv,
    }
    return {**readers, **dict.fromkeys(SUFFIXES, read_video)}


def is_dataset(path: str | Path) -> bool:
    """True for the KGBD dataset (zip or folder), which ``gaitwatch info`` summarises per person and walk."""
    from sensors.formats.kgbd import KgbdDataset

    return KgbdDataset.looks_like(path)


def open_dataset(path: str | Path) -> Iterable[Recording] | None:
    """The dataset at ``path`` (KGBD zip or folder, a folder of CMU trials), or None where it is none."""
    from sensors.formats.cmu.dataset import CmuDataset
    from sensors.formats.kgbd import KgbdDataset

    if KgbdDataset.looks_like(path):
        return KgbdDataset(path)
    if CmuDataset.looks_like(path):
        return CmuDataset(path)
    return None


def read_file(path: str | Path) -> Recording:
    """Read one recorded file of any known format; anything but a regular file is refused before it is opened.

    A folder of CMU trials reads as one recording, its trials one after another, each a track with its labels."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        dataset = open_dataset(path)
        if dataset is None:
            raise InputError(f"{path}: a folder that holds no KGBD walks (PersonNNN/K.txt) or CMU trials (SS_TT.amc)")
        return Recording.concatenate(list(dataset), gap_s=0.0)
    require_regular(path)
    reader = _readers().get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(_readers()))
        raise InputError(f"{path}: unknown file type {path.suffix!r} (readable: {known}, a KGBD zip, a dataset folder)")
    return reader(path)


def iter_recordings(paths: list[str | Path]) -> Iterator[Recording]:
    """Recordings of files and datasets in order; a dataset yields each of its walks or trials, labelled."""
    for path in paths:
        dataset = open_dataset(path)
        if dataset is None:
            yield read_file(path)
        else:
            yield from dataset
