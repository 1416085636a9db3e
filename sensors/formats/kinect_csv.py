"""Kinect v2 skeletons exported as CSV: a header of column names, then a row per body per frame.

Why: most Kinect v2 users record with their own tool or a published exporter, and nearly all of those
write CSV: three columns per joint named after the SDK's joints (``SpineBase_X, SpineBase_Y, ...``), often
a time, frame or body id column. ``csv_columns`` says which column is what (and reads the mapping file
for other names); this module reads the rows.

Rows and frames: with a frame column, rows sharing a frame number are one frame; else rows sharing a time
are; without either every row is a frame. Several rows a frame need a body column to tell the bodies apart,
and frame times must increase (a coarse clock is ignored with ``"time": null``). Times come from the time
column (seconds unless its name or the mapping says another unit), else from the frame number or the row
at the mapping's ``rate_hz`` or the Kinect's 30 Hz. A time column without a unit whose median step exceeds a
second is refused: those are milliseconds under a seconds name, and the error says how to say so.
A joint whose three cells are empty (or ``nan``) is lost: NaN coordinates, confidence 0; every other
joint has confidence 1. The delimiter is the header's most frequent of comma, semicolon and tab; numbers
use a decimal point. Rows are converted in blocks, so memory follows the numbers, not the text's cells.
Every malformed value is one ``FormatError`` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sensors.errors import FormatError
from sensors.formats._io import checked, read_bytes
from sensors.formats.csv_columns import CsvColumns, plan_columns
from sensors.layouts import KINECT_V2
from sensors.recording import MAX_ABS_METRES, MAX_ABS_TIME_S, Recording, rate_problem

if TYPE_CHECKING:
    from _csv import _reader

SUFFIX = ".csv"
KINECT_RATE_HZ = 30.0
MAX_PLAIN_TIME_STEP_S = 1.0
"""Largest median frame step of a time column without a unit: a larger one is milliseconds named as seconds."""
_BLOCK_ROWS = 4096
_MAX_DIGITS = 18  # a whole number of at most 18 digits fits int64


@dataclass
class _Rows:
    """The data rows as arrays: line numbers, joint coordinates (file units), and the optional columns."""

    lines: np.ndarray  # int64 [R], 1-based
    coordinates: np.ndarray  # float64 [R, joints present, 3]
    times: np.ndarray | None  # float64 [R], in the column's units
    frames: np.ndarray | None  # int64 [R]
    bodies: np.ndarray | None  # int64 [R]


def read_kinect_csv(path: str | Path) -> Recording:
    """A Kinect v2 CSV export as a recording in metres; anything malformed raises ``FormatError``."""
    path = Path(path)
    text = _text(read_bytes(path), path)
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    if not first.count(delimiter):
        raise FormatError(path, "line 1", "expected a header of comma-, semicolon- or tab-separated column names")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header = _header(reader, path)
    columns = plan_columns(header, path)
    rows = _read_rows(reader, columns, path)
    joints, confidence = _joints(rows, columns, path)
    frame_of_row, t, seq, rate = _frames(rows, columns, path)
    track_ids = rows.bodies if rows.bodies is not None else np.zeros(len(rows.lines), np.int64)
    _check_bodies(rows, columns, frame_of_row, track_ids, path)
    metadata = {"source": str(path)} | ({"mapping": str(columns.mapping)} if columns.mapping else {})
    recording = Recording(
        layout=KINECT_V2,
        t=t,
        seq=seq,
        body_offsets=np.concatenate([[0], np.cumsum(np.bincount(frame_of_row, minlength=len(t)))]).astype(np.int64),
        track_ids=track_ids,
        joints=joints,
        confidence=confidence,
        sensor_id=columns.sensor_id,
        rate_hz=rate,
        metadata=metadata,
    )
    return checked(recording, path)


def _text(data: bytes, path: Path) -> str:
    """The file as text: UTF-8 (a byte-order mark skipped), or UTF-16 where its mark says so."""
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise FormatError(path, f"line {line}", f"not {'UTF-16' if utf16 else 'UTF-8'} text ({err.reason})") from None


def _header(reader: _reader, path: Path) -> list[str]:
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise FormatError(path, "line 1", f"not readable as CSV ({err})") from None
    if not header:
        raise FormatError(path, "line 1", "empty: expected a header of column names")
    return header


def _blocks(reader: _reader, width: int, path: Path) -> Iterator[tuple[list[int], list[list[str]]]]:
    """Data rows in blocks (line numbers, cells): blank rows skipped, each row ``width`` cells."""
    lines: list[int] = []
    cells: list[list[str]] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != width:
                raise FormatError(
                    path, f"line {reader.line_num}", f"{len(row)} cells: expected {width}, one per column"
                )
            lines.append(reader.line_num)
            cells.append(row)
            if len(lines) == _BLOCK_ROWS:
                yield lines, cells
                lines, cells = [], []
    except csv.Error as err:
        raise FormatError(path, f"line {reader.line_num}", f"not readable as CSV ({err})") from None
    if lines:
        yield lines, cells


def _read_rows(reader: _reader, columns: CsvColumns, path: Path) -> _Rows:
    """Every data row, converted block by block (the text's cells never all live at once)."""
    wanted = columns.joints[columns.present].reshape(-1)
    parts: dict[str, list[np.ndarray]] = {"lines": [], "coordinates": [], "times": [], "frames": [], "bodies": []}
    for lines, cells in _blocks(reader, len(columns.header), path):
        parts["lines"].append(np.asarray(lines, np.int64))
        parts["coordinates"].append(_numbers(lines, cells, wanted, columns, path, blank="nan"))
        if columns.time is not None:
            parts["times"].append(_numbers(lines, cells, np.array([columns.time]), columns, path)[:, 0])
        for key in ("frames", "bodies"):
            column = columns.frame if key == "frames" else columns.body
            if column is not None:
                parts[key].append(_integers(lines, cells, column, columns, path))
    if not parts["lines"]:
        raise FormatError(path, "line 2", "no data rows after the header")
    joined = {key: np.concatenate(arrays) if arrays else None for key, arrays in parts.items()}
    joined["coordinates"] = joined["coordinates"].reshape(len(joined["lines"]), len(columns.present), 3)
    return _Rows(**joined)


def _joints(rows: _Rows, columns: CsvColumns, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Joints [rows, 25, 3] in metres and confidences [rows, 25]: 1 where seen, 0 where lost or not in the file."""
    present = columns.present
    values = rows.coordinates * columns.metres_per_unit
    lost = np.isnan(values)
    partly = lost.any(axis=2) & ~lost.all(axis=2)
    if partly.any():
        row, joint = (int(v) for v in np.argwhere(partly)[0])
        column = columns.joints[present[joint], int(np.argmax(lost[row, joint]))]
        raise FormatError(
            path,
            f"line {rows.lines[row]}, {columns.where(column)}",
            f"joint {KINECT_V2.joints[present[joint]]} lacks this coordinate: expected all three, or none (lost)",
        )
    with np.errstate(invalid="ignore"):
        far = np.abs(values) > MAX_ABS_METRES
    if far.any():
        row, joint, axis = (int(v) for v in np.argwhere(far)[0])
        raise FormatError(
            path,
            f"line {rows.lines[row]}, {columns.where(columns.joints[present[joint], axis])}",
            f"coordinate {values[row, joint, axis]:g} m: expected one within ±{MAX_ABS_METRES:g} m",
        )
    joints = np.full((len(rows.lines), KINECT_V2.num_joints, 3), np.nan, np.float32)
    joints[:, present] = values
    confidence = np.zeros(joints.shape[:2], np.float32)
    confidence[:, present] = ~lost.any(axis=2)
    return joints, confidence


def _frames(rows: _Rows, columns: CsvColumns, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """Each row's frame; per frame its time (seconds) and sequence number; the nominal rate."""
    keys = rows.frames if rows.frames is not None else rows.times
    if keys is None:
        frame_of_row = np.arange(len(rows.lines))
    else:
        if rows.frames is not None and (np.diff(keys) < 0).any():
            row = int(np.argmax(np.diff(keys) < 0)) + 1
            raise FormatError(
                path,
                f"line {rows.lines[row]}, {columns.where(columns.frame)}",
                f"frame {keys[row]} after frame {keys[row - 1]}: expected rows in frame order",
            )
        frame_of_row = np.concatenate([[0], np.cumsum(np.diff(keys) != 0)]).astype(np.int64)
    first_rows = np.flatnonzero(np.diff(frame_of_row, prepend=-1))
    rate = columns.rate_hz
    if rows.times is not None:
        times = rows.times * columns.time_scale
        _one_time_a_frame(rows, columns, frame_of_row, first_rows, times, path)
        t = times[first_rows]
        _check_times(rows.lines[first_rows], columns, columns.time, t, path)
        _check_time_unit(columns, t, path)
        step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
        if rate is None and step > 0 and rate_problem(1.0 / step) is None:
            rate = 1.0 / step
    else:
        rate = rate or KINECT_RATE_HZ
        ticks = rows.frames[first_rows] - rows.frames[0] if rows.frames is not None else np.arange(len(first_rows))
        t = ticks / rate
        _check_times(rows.lines[first_rows], columns, columns.frame, t, path)
    seq = rows.frames[first_rows] if rows.frames is not None else np.arange(len(first_rows))
    return frame_of_row, t.astype(np.float64), seq.astype(np.int64), rate


def _check_time_unit(columns: CsvColumns, t: np.ndarray, path: Path) -> None:
    """A time column without a unit is seconds; a median step over a second means milliseconds misnamed."""
    steps = np.diff(t)
    steps = steps[steps > 0]
    if columns.time_unit is None and len(steps) and (step := float(np.median(steps))) > MAX_PLAIN_TIME_STEP_S:
        name = columns.header[columns.time].strip()[:40]
        raise FormatError(
            path,
            columns.where(columns.time),
            f"times step by a median {step:g} s between frames: if they are milliseconds, name the column "
            f'{name}_ms or set "time_units": "ms" in {columns.mapping or path.stem + ".columns.json"}',
        )


def _check_times(lines: np.ndarray, columns: CsvColumns, column: int | None, t: np.ndarray, path: Path) -> None:
    """Frame times finite, within bounds and in order, reported at the line (and column) they came from."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(t) <= MAX_ABS_TIME_S) | (np.diff(t, prepend=-np.inf) <= 0)
    if bad.any():
        k = int(np.argmax(bad))
        where = f"line {lines[k]}" + (f", {columns.where(column)}" if column is not None else "")
        what = f"time {t[k]:.9g} s" + (f" is not after the previous frame's {t[k - 1]:.9g} s" if k else "")
        raise FormatError(path, where, f"{what}: expected finite times, rising, within ±{MAX_ABS_TIME_S:g} s")


def _one_time_a_frame(
    rows: _Rows, columns: CsvColumns, frame_of_row: np.ndarray, first_rows: np.ndarray, times: np.ndarray, path: Path
) -> None:
    """Rows of one frame (by frame number) carry one time."""
    first = times[first_rows[frame_of_row]]
    differs = np.flatnonzero((times != first) & ~(np.isnan(times) & np.isnan(first)))
    if len(differs):
        row = int(differs[0])
        raise FormatError(
            path,
            f"line {rows.lines[row]}, {columns.where(columns.time)}",
            f"time {times[row]:.9g} s in a frame whose first row says {first[row]:.9g} s: expected one time a frame",
        )


def _check_bodies(rows: _Rows, columns: CsvColumns, frame_of_row: np.ndarray, ids: np.ndarray, path: Path) -> None:
    """Each body at most once a frame (without a body column: one row a frame)."""
    order = np.lexsort((ids, frame_of_row))
    same = (np.diff(frame_of_row[order]) == 0) & (np.diff(ids[order]) == 0)
    if same.any():
        row = int(order[1:][np.argmax(same)])
        what = (
            f"body {int(ids[row])} twice in one frame"
            if columns.body is not None
            else "a second row in one frame, and no body column to tell the bodies apart"
        )
        raise FormatError(path, f"line {rows.lines[row]}", f"{what}: expected each body at most once a frame")


def _numbers(
    lines: list[int], cells: list[list[str]], wanted: np.ndarray, columns: CsvColumns, path: Path, blank: str = ""
) -> np.ndarray:
    """Cells of the ``wanted`` columns as float64 [rows, len(wanted)], inf refused; ``blank`` for an empty cell."""
    indices = wanted.tolist()
    text = [[row[k].strip() or blank for k in indices] for row in cells]
    try:
        values = np.array(text, dtype=np.float64).reshape(len(text), len(indices))
    except ValueError:
        values = np.array(
            [
                [_number(cell, line, k, columns, path) for cell, k in zip(row, indices, strict=True)]
                for line, row in zip(lines, text, strict=True)
            ]
        )
    if np.isinf(values).any():
        row, k = (int(v) for v in np.argwhere(np.isinf(values))[0])
        _number(text[row][k], lines[row], indices[k], columns, path)
    return values.reshape(len(text), len(indices))


def _number(cell: str, line: int, column: int, columns: CsvColumns, path: Path) -> float:
    """One cell as a finite number (NaN passes: a lost joint, or a time the checks refuse with its line)."""
    try:
        value = float(cell)
    except ValueError:
        value = np.inf
    if np.isinf(value):
        raise FormatError(
            path, f"line {line}, {columns.where(column)}", f"{cell[:40]!r}: expected a finite number (decimal point)"
        )
    return value


def _integers(lines: list[int], cells: list[list[str]], column: int, columns: CsvColumns, path: Path) -> np.ndarray:
    """A frame or body column as int64: each cell a whole number of at most 18 digits."""
    out = np.empty(len(lines), np.int64)
    for k, (line, row) in enumerate(zip(lines, cells, strict=True)):
        cell = row[column].strip()
        digits = cell[1:] if cell[:1] in "+-" else cell
        if not (digits.isascii() and digits.isdigit() and len(digits) <= _MAX_DIGITS):
            raise FormatError(
                path,
                f"line {line}, {columns.where(column)}",
                f"{cell[:40]!r}: expected a whole number of at most {_MAX_DIGITS} digits",
            )
        out[k] = int(cell)
    return out
