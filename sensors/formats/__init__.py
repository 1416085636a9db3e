"""File formats: one reader per format, chosen from the path; every reader returns a ``Recording``.

| suffix          | format                                   | reader                    |
| --------------- | ---------------------------------------- | ------------------------- |
| ``.gwrec``      | gaitwatch's own recording                | ``gwrec.read_gwrec``      |
| ``.skeleton``   | NTU RGB+D (Kinect v2)                    | ``ntu.read_ntu_skeleton`` |
| ``.amc``        | CMU mocap (``SS.asf`` beside it)         | ``cmu.read_amc``          |
| ``.txt``        | one KGBD walk                            | ``kgbd.read_kgbd_walk``   |
| ``.zip``/folder | the KGBD dataset (many walks, labelled)  | ``kgbd.KgbdDataset``      |
| ``.avi``, ``.mp4``, ... | a video, through MediaPipe pose  | ``video.read_video``      |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from sensors.errors import InputError
from sensors.formats._io import require_regular
from sensors.recording import Recording


def _readers() -> dict[str, Callable[[Path], Recording]]:
    from sensors.formats.cmu import read_amc
    from sensors.formats.gwrec import read_gwrec
    from sensors.formats.kgbd import read_kgbd_walk
    from sensors.formats.ntu import read_ntu_skeleton
    from sensors.formats.video import SUFFIXES, read_video

    readers = {".gwrec": read_gwrec, ".skeleton": read_ntu_skeleton, ".amc": read_amc, ".txt": read_kgbd_walk}
    return {**readers, **dict.fromkeys(SUFFIXES, read_video)}


def is_dataset(path: str | Path) -> bool:
    from sensors.formats.kgbd import KgbdDataset

    return KgbdDataset.looks_like(path)


def read_file(path: str | Path) -> Recording:
    """Read one recorded file of any known format; anything but a regular file is refused before it is opened."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: a folder that holds no KGBD walks (PersonNNN/K.txt); expected a recorded file")
    require_regular(path)
    reader = _readers().get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(_readers()))
        raise InputError(f"{path}: unknown file type {path.suffix!r} (readable: {known}, or a KGBD zip/folder)")
    return reader(path)


def iter_recordings(paths: list[str | Path]) -> Iterator[Recording]:
    """Recordings of files and datasets in order; a dataset yields each of its walks, labelled."""
    from sensors.formats.kgbd import KgbdDataset

    for path in paths:
        if is_dataset(path):
            yield from KgbdDataset(path)
        else:
            yield read_file(path)
