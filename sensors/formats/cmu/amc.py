"""AMC motion parsing: ``parse_amc`` reads one trial's per-bone values against its ``AsfSkeleton``.

A trial is a frame number line followed by one ``bone v1 v2 ...`` line per bone. Frame
numbers count up by one; most trials start at 1, but some CMU trials start later (07_03
at 10, 10_04 at 98, 32_01 at 120), so any start is taken. Lines are split once in Python
and every bone's values become one NumPy array in a single conversion, so a 10,000-line
file takes a few milliseconds. The structure is checked with array comparisons; only
when a check fails is the offending line looked up, to name it in a ``FormatError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import FormatError
from sensors.formats.cmu._lines import _floats, _read_lines
from sensors.formats.cmu.asf import ROOT, AsfSkeleton

_AMC_UNITS = {":DEGREES": "deg", ":RADIANS": "rad"}


@dataclass(frozen=True)
class AmcMotion:
    """One AMC trial: per bone an array [T, ndof] of the file's values (ASF length units, ``angle_unit``)."""

    path: str
    frames: np.ndarray  # int64 [T], the file's frame numbers (consecutive; usually from 1)
    channels: dict[str, np.ndarray]  # bone -> float64 [T, ndof], columns in the bone's dof order
    angle_unit: str  # "deg" or "rad"

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def parse_amc(path: str | Path, skeleton: AsfSkeleton) -> AmcMotion:
    """Read an AMC trial against its skeleton; structure and values are checked, errors name the line."""
    path = Path(path)
    raw = _read_lines(path)
    body_start, angle_unit = _amc_header(path, raw, skeleton)
    numbers, parts = [], []
    for number, text in enumerate(raw[body_start:], start=body_start + 1):
        tokens = text.split()
        if tokens and not tokens[0].startswith("#"):
            numbers.append(number)
            parts.append(tokens)
    line_of = np.array(numbers, dtype=np.int64)
    starts, frames = _frame_starts(path, parts, line_of)
    names = _frame_bones(path, parts, line_of, starts, skeleton)
    rows = _bone_rows(path, parts, line_of, starts, names)
    channels = {
        name: _bone_values(path, parts, line_of, rows[:, b], name, skeleton.dof_count(name))
        for b, name in enumerate(names)
    }
    return AmcMotion(path=str(path), frames=frames, channels=channels, angle_unit=angle_unit)


def _amc_header(path: Path, raw: list[str], skeleton: AsfSkeleton) -> tuple[int, str]:
    """Index of the first body line and the angle unit (the AMC's own declaration, else the ASF's)."""
    unit = skeleton.angle_unit
    for i, text in enumerate(raw):
        token = text.strip()
        if not token or token.startswith("#"):
            continue
        if not token.startswith(":"):
            return i, unit
        keyword = token.split()[0].upper()
        if keyword in _AMC_UNITS:
            unit = _AMC_UNITS[keyword]
        elif keyword != ":FULLY-SPECIFIED":
            raise FormatError(
                path,
                f"line {i + 1}",
                f"unknown header keyword {keyword!r}; expected :FULLY-SPECIFIED, :DEGREES or :RADIANS",
            )
    raise FormatError(path, f"line {len(raw)}", "no frames; expected a frame number line after the header")


def _frame_starts(path: Path, parts: list[list[str]], line_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``parts``) of frame number lines, and the frame numbers, checked to count up by one."""
    is_frame = np.fromiter(
        (len(p) == 1 and p[0].isascii() and p[0].isdigit() for p in parts), dtype=bool, count=len(parts)
    )
    starts = np.flatnonzero(is_frame)
    if len(starts) == 0 or starts[0] != 0:
        raise FormatError(path, f"line {line_of[0]}", "expected a frame number after the header")
    numbers = [parts[k][0] for k in starts]
    too_long = [i for i, n in enumerate(numbers) if len(n) > 12]
    if too_long:
        raise FormatError(path, f"line {line_of[starts[too_long[0]]]}", "frame number: expected at most 12 digits")
    frames = np.array([int(n) for n in numbers], dtype=np.int64)
    wrong = np.flatnonzero(frames != frames[0] + np.arange(len(frames)))
    if len(wrong):
        k = int(wrong[0])
        raise FormatError(
            path,
            f"line {line_of[starts[k]]}",
            f"frame number {frames[k]}, expected {frames[0] + k} (frames count up by one)",
        )
    return starts, frames


def _frame_bones(
    path: Path, parts: list[list[str]], line_of: np.ndarray, starts: np.ndarray, skeleton: AsfSkeleton
) -> list[str]:
    """The bones of the first frame, checked against the skeleton: known, once each, every bone with dofs present."""
    end = starts[1] if len(starts) > 1 else len(parts)
    names: list[str] = []
    for k in range(1, end):
        name = parts[k][0]
        if name != ROOT and name not in skeleton.bones:
            raise FormatError(path, f"line {line_of[k]}", _unknown_bone(parts[k], f"a bone of {skeleton.path}"))
        if name in names:
            raise FormatError(path, f"line {line_of[k]}", f"bone {name!r} appears twice in frame {parts[0][0]}")
        names.append(name)
    missing = [n for n in skeleton.joint_names if n not in names and (n == ROOT or skeleton.bones[n].dof)]
    if missing:
        raise FormatError(path, f"line {line_of[0]}", f"frame {parts[0][0]} lacks bones {', '.join(missing)}")
    return names


def _unknown_bone(tokens: list[str], expected: str) -> str:
    if tokens[0].lstrip("+-").isdigit():
        return f"found {' '.join(tokens)!r}; expected a frame number (digits alone on a line) or {expected}"
    return f"unknown bone {tokens[0]!r}; expected {expected}"


def _bone_rows(
    path: Path, parts: list[list[str]], line_of: np.ndarray, starts: np.ndarray, names: list[str]
) -> np.ndarray:
    """[T, B] indices into ``parts`` of each frame's line for each bone of ``names``; every frame has them all."""
    count = len(names)
    sizes = np.diff(np.append(starts, len(parts))) - 1
    rows = starts[:, None] + 1 + np.arange(count)[None, :]
    uneven = np.flatnonzero(sizes != count)
    if len(uneven):
        _frame_mismatch(path, parts, line_of, starts, names, int(uneven[0]))
    found = np.array([parts[k][0] for k in rows.ravel()], dtype=object).reshape(rows.shape)
    for t in np.flatnonzero((found != np.array(names, dtype=object)[None, :]).any(axis=1)):
        position = {name: i for i, name in enumerate(found[t])}
        if sorted(position) != sorted(names) or len(position) != count:
            _frame_mismatch(path, parts, line_of, starts, names, int(t))
        rows[t] = starts[t] + 1 + np.array([position[n] for n in names])
    return rows


def _frame_mismatch(
    path: Path, parts: list[list[str]], line_of: np.ndarray, starts: np.ndarray, names: list[str], t: int
) -> None:
    """Raise for frame index ``t`` whose bone lines differ from the first frame's."""
    frame = parts[starts[t]][0]
    end = starts[t + 1] if t + 1 < len(starts) else len(parts)
    seen: list[str] = []
    for k in range(starts[t] + 1, end):
        name = parts[k][0]
        if name not in names:
            raise FormatError(path, f"line {line_of[k]}", _unknown_bone(parts[k], "one of the first frame's bones"))
        if name in seen:
            raise FormatError(path, f"line {line_of[k]}", f"bone {name!r} appears twice in frame {frame}")
        seen.append(name)
    missing = [n for n in names if n not in seen]
    cut = " (the file ends here: cut short?)" if t == len(starts) - 1 else ""
    raise FormatError(path, f"line {line_of[starts[t]]}", f"frame {frame} lacks bones {', '.join(missing)}{cut}")


def _bone_values(
    path: Path, parts: list[list[str]], line_of: np.ndarray, rows: np.ndarray, name: str, ndof: int
) -> np.ndarray:
    """float64 [T, ndof] of one bone's lines, checked for count, numbers and finiteness."""
    lines = [parts[k] for k in rows]
    counts = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)) - 1
    wrong = np.flatnonzero(counts != ndof)
    if len(wrong):
        k = int(wrong[0])
        raise FormatError(path, f"line {line_of[rows[k]]}", f"bone {name!r}: expected {ndof} values, found {counts[k]}")
    if ndof == 0:
        return np.zeros((len(lines), 0))
    try:
        values = np.array([p[1:] for p in lines], dtype=np.float64)
    except ValueError:
        values = np.zeros((len(lines), ndof))
        for k, p in enumerate(lines):
            values[k] = _floats(path, (int(line_of[rows[k]]), p), f"bone {name!r}", ndof)
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if len(bad):
        k = int(bad[0])
        found = " ".join(lines[k][1:])
        raise FormatError(path, f"line {line_of[rows[k]]}", f"bone {name!r}: expected finite numbers, found {found!r}")
    return values
