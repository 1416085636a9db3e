"""KGBD (Kinect Gait Biometry Dataset) walks: ``Joint;x;y;z`` text, 20 lines a frame.

Files carry no frame separator and no timestamps: a frame starts at every ``Head``
line and times are synthesised at 30 Hz. Joints are reordered from the file's
order into the Kinect v1 SDK order (the canonical skeleton). The dataset is read
from its folder or straight from the zip as its author publishes it; zip members are
read with their size and packing ratio bounded (``_io.read_member``), so a bomb is refused.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import FormatError, InputError
from sensors.formats._io import ZIP_ERRORS, checked, is_regular, open_zip, read_bytes, read_member
from sensors.layouts import KINECT_V1
from sensors.recording import MAX_ABS_METRES, Recording

KGBD_RATE_HZ = 30.0
FILE_JOINTS = (
    "Head",
    "Shoulder-Center",
    "Shoulder-Right",
    "Shoulder-Left",
    "Elbow-Right",
    "Elbow-Left",
    "Wrist-Right",
    "Wrist-Left",
    "Hand-Right",
    "Hand-Left",
    "Spine",
    "Hip-centro",
    "Hip-Right",
    "Hip-Left",
    "Knee-Right",
    "Knee-Left",
    "Ankle-Right",
    "Ankle-Left",
    "Foot-Right",
    "Foot-Left",
)
_TO_KINECT_V1 = {
    "Head": "Head",
    "Shoulder-Center": "ShoulderCenter",
    "Shoulder-Right": "ShoulderRight",
    "Shoulder-Left": "ShoulderLeft",
    "Elbow-Right": "ElbowRight",
    "Elbow-Left": "ElbowLeft",
    "Wrist-Right": "WristRight",
    "Wrist-Left": "WristLeft",
    "Hand-Right": "HandRight",
    "Hand-Left": "HandLeft",
    "Spine": "Spine",
    "Hip-centro": "HipCenter",
    "Hip-Right": "HipRight",
    "Hip-Left": "HipLeft",
    "Knee-Right": "KneeRight",
    "Knee-Left": "KneeLeft",
    "Ankle-Right": "AnkleRight",
    "Ankle-Left": "AnkleLeft",
    "Foot-Right": "FootRight",
    "Foot-Left": "FootLeft",
}
# FILE_ORDER[k] = file row holding Kinect v1 joint k
FILE_ORDER = np.array(
    [FILE_JOINTS.index(next(f for f, k in _TO_KINECT_V1.items() if k == name)) for name in KINECT_V1.joints]
)
_WALK_PATH = re.compile(r"(?:^|/)(Person\d+)/(\d{1,9})\.txt$")


def parse_kgbd_text(data: bytes, source: str) -> np.ndarray:
    """Joints [T, 20, 3] (float32, Kinect v1 order) from a walk's text; strict about every line."""
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    lines = [line.rstrip(b"\r") for line in lines]
    if not lines:
        raise FormatError(source, "line 1", "empty walk, expected lines 'Joint;x;y;z'")
    fields = b";".join(lines).split(b";")
    if len(fields) != 4 * len(lines):
        _raise_first_bad_line(lines, source)
    names = fields[0::4]
    frames = len(lines) // 20
    if names[: frames * 20] != [n.encode() for n in FILE_JOINTS] * frames:
        _raise_first_bad_line(lines, source)
    if len(lines) % 20:
        raise FormatError(
            source,
            f"line {len(lines)}",
            f"walk ends mid-frame: frame {frames + 1} has {len(lines) % 20} of 20 joint lines",
        )
    del fields[0::4]
    try:
        values = np.array(list(map(float, fields)), dtype=np.float64)
    except ValueError:
        _raise_first_bad_line(lines, source)
    bad = np.flatnonzero(~(np.abs(values) <= MAX_ABS_METRES))  # also beyond float32, which would become inf
    if len(bad):
        value = values[bad[0]]
        problem = "non-finite coordinate" if not np.isfinite(value) else f"coordinate {value:g} m"
        raise FormatError(
            source, f"line {bad[0] // 3 + 1}", f"{problem}, expected a number within ±{MAX_ABS_METRES:g} m"
        )
    return values.reshape(frames, 20, 3)[:, FILE_ORDER].astype(np.float32)


def _raise_first_bad_line(lines: list[bytes], source: str) -> None:
    """Slow path, only on error: find and report the first line that breaks the format."""
    for i, line in enumerate(lines):
        expected = FILE_JOINTS[i % 20]
        parts = line.split(b";")
        shown = line[:60].decode("utf-8", "replace")
        if len(parts) != 4:
            raise FormatError(source, f"line {i + 1}", f"expected '{expected};x;y;z', got {shown!r}")
        if parts[0].decode("utf-8", "replace") != expected:
            raise FormatError(
                source, f"line {i + 1}", f"expected joint {expected!r} (frame {i // 20 + 1}), got {shown!r}"
            )
        try:
            [float(v) for v in parts[1:]]
        except ValueError:
            raise FormatError(
                source, f"line {i + 1}", f"expected three numbers after {expected!r}, got {shown!r}"
            ) from None
    raise FormatError(source, "", "malformed walk")


def walk_recording(joints: np.ndarray, person: str, walk: int, source: str) -> Recording:
    return Recording.single_body(
        KINECT_V1,
        joints,
        KGBD_RATE_HZ,
        sensor_id="kgbd",
        metadata={"dataset": "kgbd", "person": person, "walk": walk, "source": source},
    )


def read_kgbd_walk(path: str | Path) -> Recording:
    """One walk file ``.../PersonNNN/K.txt``; person and walk labels come from the path."""
    path = Path(path)
    data = read_bytes(path)
    match = _WALK_PATH.search(path.as_posix())
    person, walk = (match.group(1), int(match.group(2))) if match else (path.parent.name, 0)
    return checked(walk_recording(parse_kgbd_text(data, str(path)), person, walk, str(path)), path)


@dataclass(frozen=True)
class KgbdWalk:
    person: str
    walk: int
    member: str  # path inside the zip, or a file path

    @property
    def key(self) -> str:
        return f"{self.person}/{self.walk}"


class KgbdDataset:
    """The KGBD walks of a folder or of the published zip, sorted by person and walk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            members = [p.as_posix() for p in self.path.rglob("*.txt")]
        elif self.path.exists():
            self._zip = open_zip(self.path)
            members = self._zip.namelist()
        else:
            raise InputError(f"{self.path}: no such file or folder")
        walks = []
        for member in members:
            match = _WALK_PATH.search(member)
            if match:
                walks.append(KgbdWalk(match.group(1), int(match.group(2)), member))
        if not walks:
            raise FormatError(self.path, "", "no KGBD walks found (expected files .../PersonNNN/K.txt)")
        self.walks: list[KgbdWalk] = sorted(walks, key=lambda w: (w.person, w.walk))

    @staticmethod
    def looks_like(path: str | Path) -> bool:
        """True for a zip or folder that holds ``PersonNNN/K.txt`` walks."""
        path = Path(path)
        if path.is_dir():
            return next(path.rglob("Person*/*.txt"), None) is not None
        if path.suffix.lower() != ".zip" or not is_regular(path) or not zipfile.is_zipfile(path):
            return False  # checked in this order: is_zipfile would open (and wait on) a FIFO
        try:
            with zipfile.ZipFile(path) as zf:
                return any(_WALK_PATH.search(n) for n in zf.namelist())
        except ZIP_ERRORS:
            return True  # a damaged zip: reading it as the dataset says what is wrong in one line

    @property
    def people(self) -> list[str]:
        return sorted({w.person for w in self.walks})

    def __len__(self) -> int:
        return len(self.walks)

    def source_of(self, walk: KgbdWalk) -> str:
        return f"{self.path}!{walk.member}" if self._zip else walk.member

    def read(self, walk: KgbdWalk) -> Recording:
        source = self.source_of(walk)
        archive = self._zip
        data = read_bytes(Path(walk.member)) if archive is None else read_member(archive, walk.member, source)
        return checked(walk_recording(parse_kgbd_text(data, source), walk.person, walk.walk, source), source)

    def __iter__(self) -> Iterator[Recording]:
        for walk in self.walks:
            yield self.read(walk)
