"""Which column of a Kinect CSV export holds what: each joint's x, y, z, and the optional time, frame and body columns.

Why its own module: exporters name columns their own way (``SpineBase_X``, ``SpineBase.x``, ``spinebase_x``,
``Spine Base Position X``), so header names are matched to the Kinect v2 SDK's joint names ignoring case and
every character that is not a letter or digit, with an optional ``Position``/``Pos`` before the axis (the SDK's
``Joint.Position.X``). What that cannot match, a small JSON mapping file beside the CSV says:
``walk.columns.json`` for ``walk.csv``, else ``columns.json`` for every CSV in the folder::

    {"joints": {"SpineBase": ["SB_X", "SB_Y", "SB_Z"], "HandTipLeft": null},
     "time": "Timestamp", "time_units": "ms", "frame": "FrameNo", "body": "BodyIndex",
     "units": "mm", "rate_hz": 30, "sensor_id": "hall-kinect"}

Every key is optional. A joint mapped to null is not in the file: its coordinates are NaN (a lost joint),
its confidence 0. ``time``, ``frame`` and ``body`` name a column, or null to ignore one the names would find.
Recognised without a mapping: a time column ``time``, ``timestamp`` or ``RelativeTime``, in seconds unless
its name ends in a unit (``time_ms``, ``Timestamp (ms)``, ``time_us``, ``RelativeTime_ticks`` for the SDK's
100 ns ticks); a frame column ``frame``, ``FrameNumber``, ``frame_index``; a body column ``body``, ``BodyId``,
``BodyIndex``, ``TrackingId``, ``track``. Coordinates are in metres unless ``units`` says ``cm`` or ``mm``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensors.errors import FormatError
from sensors.formats._io import read_bytes
from sensors.layouts import KINECT_V2
from sensors.recording import METRES_PER_UNIT, rate_problem

DEFAULT_SENSOR_ID = "kinect-csv"
MAX_MAPPING_BYTES = 2**20
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ticks": 1e-7}
"""Seconds per unit of a time column; ``ticks`` are the Kinect SDK's ``RelativeTime`` (a .NET TimeSpan, 100 ns)."""
_UNIT_SUFFIXES = {
    "": None,
    "s": "s",
    "sec": "s",
    "secs": "s",
    "seconds": "s",
    "ms": "ms",
    "msec": "ms",
    "millis": "ms",
    "milliseconds": "ms",
    "us": "us",
    "usec": "us",
    "micros": "us",
    "microseconds": "us",
    "ticks": "ticks",
}
_TIME_NAMES = {
    f"{base}{suffix}": unit for base in ("time", "timestamp", "relativetime") for suffix, unit in _UNIT_SUFFIXES.items()
}
_FRAME_NAMES = {"frame", "frameno", "framenumber", "frameindex", "frameid", "framenum"}
_BODY_NAMES = {"body", "bodyid", "bodyindex", "trackingid", "trackid", "track", "skeletonid"}
_MAPPING_KEYS = {"joints", "time", "time_units", "frame", "body", "units", "rate_hz", "sensor_id"}


def normalised(name: str) -> str:
    """A column or joint name without case and separators: ``Spine Base.X`` and ``spinebase_x`` are one name."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


_JOINT_NAMES = {
    f"{normalised(joint)}{infix}{axis}": (j, a)
    for j, joint in enumerate(KINECT_V2.joints)
    for infix in ("", "pos", "position")
    for a, axis in enumerate("xyz")
}


@dataclass
class CsvColumns:
    """Where each value is in a row (0-based column indices), and how to read it."""

    header: list[str]
    joints: np.ndarray  # int [25, 3]: the column of each joint's x, y, z; -1 where the file lacks the joint
    time: int | None = None
    time_unit: str | None = None  # None: seconds by default (no unit in the name or the mapping)
    frame: int | None = None
    body: int | None = None
    metres_per_unit: float = 1.0
    rate_hz: float | None = None  # the mapping's rate
    sensor_id: str = DEFAULT_SENSOR_ID
    mapping: Path | None = None
    lacking: list[str] = field(default_factory=list)  # joints mapped to null

    @property
    def present(self) -> np.ndarray:
        """Indices of the joints the file has (the others were mapped to null)."""
        return np.flatnonzero((self.joints >= 0).all(axis=1))

    def where(self, column: int) -> str:
        """A column as an error names it: its 1-based number and its header name."""
        return f"column {column + 1} ({self.header[column][:40]!r})"

    @property
    def time_scale(self) -> float:
        return TIME_UNITS[self.time_unit or "s"]


def mapping_file(csv_path: Path) -> Path | None:
    """The mapping file that applies to ``csv_path``: its own (``walk.columns.json``), else its folder's."""
    for candidate in (csv_path.with_name(f"{csv_path.stem}.columns.json"), csv_path.with_name("columns.json")):
        if candidate.exists():
            return candidate
    return None


def plan_columns(header: list[str], csv_path: Path) -> CsvColumns:
    """Match a CSV header (and the mapping file beside it) to joints and the time, frame and body columns."""
    columns = CsvColumns(header, np.full((KINECT_V2.num_joints, 3), -1, np.int64))
    mapping = mapping_file(csv_path)
    settings = _read_mapping(mapping) if mapping is not None else {}
    _match_by_name(columns, csv_path, _settled(settings))
    if mapping is not None:
        _apply_mapping(columns, settings, mapping, csv_path)
    missing = [
        name for j, name in enumerate(KINECT_V2.joints) if (columns.joints[j] < 0).any() and name not in columns.lacking
    ]
    if missing:
        axes = ", ".join(f"{missing[0]}_{axis}" for axis in "XYZ")
        raise FormatError(
            csv_path,
            "line 1",
            f"no columns for joint{'s' if len(missing) > 1 else ''} {', '.join(missing)}: expected {axes} (any case "
            f"or separator), or the joint's columns in {mapping or csv_path.stem + '.columns.json'} (null where the "
            "file lacks it)",
        )
    return columns


def _settled(mapping: dict) -> set[str]:
    """What the mapping names itself (joints, and ``time``, ``frame``, ``body``): names are not matched for those."""
    joints = mapping.get("joints")
    by_name = {normalised(joint): joint for joint in KINECT_V2.joints}
    named = {by_name.get(normalised(str(name))) for name in joints} if isinstance(joints, dict) else set()
    return {*(named - {None}), *(key for key in ("time", "frame", "body") if key in mapping)}


def _match_by_name(columns: CsvColumns, csv_path: Path, settled: set[str]) -> None:
    """Joints, time, frame and body columns found by their names, but for what the mapping ``settled``;
    a name found twice is an error (the mapping settles which to use)."""
    seen: dict[str, int] = {}
    for k, name in enumerate(columns.header):
        key = normalised(name)
        if key in _JOINT_NAMES:
            j, a = _JOINT_NAMES[key]
            what = f"{KINECT_V2.joints[j]} {'xyz'[a]}"
        elif key in _TIME_NAMES:
            what = "time"
        elif key in _FRAME_NAMES:
            what = "frame"
        elif key in _BODY_NAMES:
            what = "body"
        else:
            continue
        if what.split()[0] in settled:
            continue
        if what in seen:
            raise FormatError(
                csv_path,
                f"line 1, {columns.where(k)}",
                f"a second column for {what} (the first is {columns.where(seen[what])}): expected one; "
                "name the one to use in a mapping file",
            )
        seen[what] = k
        if key in _JOINT_NAMES:
            columns.joints[j, a] = k
        elif what == "time":
            columns.time, columns.time_unit = k, _TIME_NAMES[key]
        else:
            setattr(columns, what, k)


def _read_mapping(path: Path) -> dict:
    """The mapping file as a dict with known keys only; a typo is an error, not a silently ignored key."""
    try:
        mapping = json.loads(read_bytes(path, MAX_MAPPING_BYTES).decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise FormatError(path, "", f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise FormatError(path, f"line {err.lineno}, column {err.colno}", f"not valid JSON: {err.msg}") from None
    except ValueError as err:  # what JSON allows and Python refuses: an integer of thousands of digits
        raise FormatError(path, "", f"not readable JSON: {str(err)[:80]}") from None
    except RecursionError:
        raise FormatError(path, "", "nested too deeply: expected a flat object of settings") from None
    if not isinstance(mapping, dict):
        raise FormatError(path, "", f"expected a JSON object of settings, found {type(mapping).__name__}")
    unknown = sorted(set(mapping) - _MAPPING_KEYS)
    if unknown:
        raise FormatError(path, "", f"unknown setting {unknown[0][:40]!r} (known: {', '.join(sorted(_MAPPING_KEYS))})")
    return mapping


def _apply_mapping(columns: CsvColumns, mapping: dict, path: Path, csv_path: Path) -> None:
    """The mapping file's columns and options over what the names gave."""
    exact = {name.strip(): k for k, name in enumerate(columns.header)}
    columns.mapping = path
    for key in ("time", "frame", "body"):
        if key in mapping:
            setattr(columns, key, _mapped_column(mapping[key], exact, path, key, csv_path))
    if columns.time is not None:  # a unit in the mapped column's name counts, as in a found one's
        columns.time_unit = _TIME_NAMES.get(normalised(columns.header[columns.time]))
    joints = mapping.get("joints", {})
    if not isinstance(joints, dict):
        raise FormatError(path, "", "joints: expected an object of joint name -> [x, y, z] column names")
    by_name = {normalised(joint): j for j, joint in enumerate(KINECT_V2.joints)}
    for name, spec in joints.items():
        j = by_name.get(normalised(name))
        if j is None:
            raise FormatError(path, "", f"joints: {name[:40]!r} is no Kinect v2 joint ({', '.join(KINECT_V2.joints)})")
        if spec is None:
            columns.joints[j] = -1
            columns.lacking.append(KINECT_V2.joints[j])
        elif isinstance(spec, list) and len(spec) == 3:
            columns.joints[j] = [_mapped_column(s, exact, path, f"joints: {name}", csv_path) for s in spec]
        else:
            raise FormatError(path, "", f"joints: {name[:40]}: expected three column names [x, y, z] or null")
    _apply_options(columns, mapping, path)


def _mapped_column(name: object, exact: dict[str, int], path: Path, key: str, csv_path: Path) -> int | None:
    if name is None and not key.startswith("joints"):
        return None
    if not isinstance(name, str):
        raise FormatError(path, "", f"{key[:60]}: expected a column name, found {str(name)[:40]!r}")
    if name.strip() not in exact:
        raise FormatError(path, "", f"{key[:60]}: no column {name[:40]!r} in the header of {csv_path}")
    return exact[name.strip()]


def _apply_options(columns: CsvColumns, mapping: dict, path: Path) -> None:
    units, time_unit = mapping.get("units", "m"), mapping.get("time_units", columns.time_unit)
    if not isinstance(units, str) or units not in METRES_PER_UNIT:
        raise FormatError(path, "", f"units: expected one of {', '.join(METRES_PER_UNIT)}, found {str(units)[:40]!r}")
    if time_unit is not None and (not isinstance(time_unit, str) or time_unit not in TIME_UNITS):
        known = ", ".join(TIME_UNITS)
        raise FormatError(path, "", f"time_units: expected one of {known}, found {str(time_unit)[:40]!r}")
    rate, sensor_id = mapping.get("rate_hz"), mapping.get("sensor_id", DEFAULT_SENSOR_ID)
    problem = rate_problem(rate)
    if problem:
        raise FormatError(path, "", f"rate_hz: {problem[:200]}")
    if not isinstance(sensor_id, str) or not 0 < len(sensor_id) <= 200:
        raise FormatError(path, "", "sensor_id: expected a name of 1 to 200 characters")
    columns.metres_per_unit, columns.time_unit = METRES_PER_UNIT[units], time_unit
    columns.rate_hz, columns.sensor_id = None if rate is None else float(rate), sensor_id
