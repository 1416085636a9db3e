"""CMU Graphics Lab motion capture (Acclaim ASF skeleton + AMC motion) as joint positions.

Why: the CMU mocap walks are clean, freely redistributable 3D gait of known people,
which makes them the project's reference data (tests, demo, training). They come as
joint *angles*, so this module turns them into joint *positions* in metres.

How:

- ``parse_asf`` reads the skeleton: units, root channel order and axis, and per bone
  its direction (unit vector in the global frame at rest), length, ``axis`` frame and
  rotational degrees of freedom, plus the ``:hierarchy``. Bones are kept parents first.
- ``parse_amc`` reads one trial: a frame number line followed by one ``bone v1 v2 ...``
  line per bone. Frame numbers count up by one; most trials start at 1, but some CMU
  trials start later (07_03 at 10, 10_04 at 98, 32_01 at 120), so any start is taken.
  Lines are split once in Python and every bone's values become one NumPy array in a
  single conversion, so a 10,000-line file takes a few milliseconds. The structure is
  checked with array comparisons; only when a check fails is the offending line looked
  up, to name it.
- ``forward_kinematics`` is the standard ASF/AMC chain, vectorised over frames (the
  only Python loop is over bones): ``C`` is the bone's ``axis`` rotation, ``M`` the
  rotation from its AMC angles, the local rotation is ``L = C M C^-1``, the global one
  ``G = G_parent L`` and the bone's end point ``p = p_parent + G (direction * length)``.
  The root's position is its ``TX TY TZ`` channels and its rotation ``C M C^-1`` with
  the root's axis order and orientation.
- ``read_amc`` puts it together and returns a ``Recording`` in the ``CMU_ASF`` layout
  (31 joints, each the end point of the ASF bone of that name; ``root`` is the root).

Rotation convention: an angle triple with order ``"XYZ"`` is applied about fixed axes
in that order, ``R = Rz @ Ry @ Rx``. The same rule composes an ASF ``axis`` (angles
listed in the order of its letters), a bone's AMC values (in the order of its ``dof``
line, absent dofs being 0) and the root's rotation channels (in their ``order``).

Every malformed input raises ``FormatError`` naming the file, the line and what was
expected; nothing escapes as a bare ``ValueError`` or ``IndexError``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import FormatError
from sensors.layouts import CMU_ASF
from sensors.recording import Recording

CMU_RATE_HZ = 120.0
ACKNOWLEDGEMENT = (
    "The data used in this project was obtained from mocap.cs.cmu.edu. "
    "The database was created with funding from NSF EIA-0196217."
)
INCH_M = 0.0254
ROOT = "root"
ROOT_CHANNELS = ("TX", "TY", "TZ", "RX", "RY", "RZ")
BONE_DOFS = ("rx", "ry", "rz")
_ASF_SECTIONS = (":version", ":name", ":units", ":documentation", ":root", ":bonedata", ":hierarchy", ":skin")
_BONE_KEYS = ("id", "name", "direction", "length", "axis", "dof", "limits", "bodymass", "cofmass")
_AMC_UNITS = {":DEGREES": "deg", ":RADIANS": "rad"}
_LIMIT_PAIR = re.compile(r"\(\s*([^\s()]+)\s+([^\s()]+)\s*\)")

_Line = tuple[int, list[str]]  # 1-based line number, whitespace-separated tokens


@dataclass(frozen=True)
class AsfBone:
    """One ASF bone at rest. ``axis`` angles are in the skeleton's angle unit, ``length`` in metres."""

    name: str
    parent: str
    direction: tuple[float, ...]  # unit vector (3), global frame
    length: float  # metres
    axis: tuple[float, ...]  # 3 angles listed in the order of ``axis_order``'s letters
    axis_order: str  # e.g. "XYZ"
    dof: tuple[str, ...]  # subset of ("rx", "ry", "rz") in file order; may be empty
    limits: tuple[tuple[float, float], ...]  # one (min, max) per dof, or empty


@dataclass(frozen=True)
class AsfSkeleton:
    """An ASF skeleton; ``bones`` is ordered parents first (a valid order for forward kinematics)."""

    path: str
    name: str
    length_scale_to_metres: float  # ASF/AMC length value * this = metres
    angle_unit: str  # "deg" or "rad"
    root_order: tuple[str, ...]  # AMC root channels in order, e.g. ("TX", "TY", "TZ", "RX", "RY", "RZ")
    root_axis_order: str  # e.g. "XYZ"
    root_position: tuple[float, ...]  # metres (AMC root channels are absolute; unused by the kinematics)
    root_orientation: tuple[float, ...]  # angle unit, in the order of root_axis_order's letters
    bones: dict[str, AsfBone]

    @property
    def joint_names(self) -> tuple[str, ...]:
        """``root`` followed by the bones, parents first."""
        return (ROOT, *self.bones)

    def dof_count(self, name: str) -> int:
        """Values per AMC line for a bone (the root has its six channels)."""
        return len(self.root_order) if name == ROOT else len(self.bones[name].dof)


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


# ---------------------------------------------------------------------------------------------- reading text


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="latin-1").splitlines()
    except OSError as err:
        raise FormatError(path, "", f"cannot read ({err.strerror})") from None


def _content_lines(raw: list[str]) -> list[_Line]:
    """Tokenised lines without blanks and ``#`` comments, each with its 1-based line number."""
    lines = []
    for number, text in enumerate(raw, start=1):
        tokens = text.split()
        if tokens and not tokens[0].startswith("#"):
            lines.append((number, tokens))
    return lines


def _floats(path: Path, line: _Line, what: str, count: int, first: int = 1) -> tuple[float, ...]:
    """``count`` finite numbers from ``tokens[first:]`` of a line."""
    number, tokens = line
    values = tokens[first:]
    if len(values) != count:
        raise FormatError(path, f"line {number}", f"{what}: expected {count} numbers, found {len(values)}")
    try:
        out = tuple(float(v) for v in values)
    except ValueError:
        raise FormatError(path, f"line {number}", f"{what}: expected numbers, found {' '.join(values)!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise FormatError(path, f"line {number}", f"{what}: expected finite numbers, found {' '.join(values)!r}")
    return out


def _axis_order(path: Path, line: _Line, token: str) -> str:
    order = token.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise FormatError(path, f"line {line[0]}", f"axis order {token!r}: expected a permutation of XYZ")
    return order


# ---------------------------------------------------------------------------------------------- ASF


def parse_asf(path: str | Path) -> AsfSkeleton:
    """Read an ASF skeleton; any malformed or missing part raises ``FormatError`` with its line."""
    path = Path(path)
    lines = _content_lines(_read_lines(path))
    last = lines[-1][0] if lines else 0
    sections = _asf_sections(path, lines)
    for key in (":units", ":root", ":bonedata", ":hierarchy"):
        if key not in sections:
            raise FormatError(
                path, f"line {last}", f"no {key} section; an ASF needs :units, :root, :bonedata, :hierarchy"
            )
    scale, angle_unit = _parse_units(path, sections[":units"])
    root_order, root_axis, position, orientation = _parse_root(path, sections[":root"])
    bones = _parse_bonedata(path, sections[":bonedata"], scale)
    parents, order = _parse_hierarchy(path, sections[":hierarchy"], bones)
    name_line = sections.get(":name")
    return AsfSkeleton(
        path=str(path),
        name=" ".join(name_line[0][1][1:]) if name_line else "",
        length_scale_to_metres=scale,
        angle_unit=angle_unit,
        root_order=root_order,
        root_axis_order=root_axis,
        root_position=(position[0] * scale, position[1] * scale, position[2] * scale),
        root_orientation=orientation,
        bones={name: _with_parent(bones[name], parents[name]) for name in order},
    )


def _asf_sections(path: Path, lines: list[_Line]) -> dict[str, list[_Line]]:
    """Section keyword -> its lines, the keyword line first."""
    sections: dict[str, list[_Line]] = {}
    current: list[_Line] | None = None
    for line in lines:
        number, tokens = line
        key = tokens[0].lower()
        if key.startswith(":"):
            if key not in _ASF_SECTIONS:
                raise FormatError(
                    path, f"line {number}", f"unknown section {tokens[0]!r}; expected one of {_ASF_SECTIONS}"
                )
            if key in sections:
                raise FormatError(path, f"line {number}", f"second {key} section; expected each section once")
            current = sections[key] = [line]
        elif current is None:
            raise FormatError(path, f"line {number}", "expected a section keyword such as ':version' first")
        else:
            current.append(line)
    return sections


def _keyed(path: Path, section: list[_Line], allowed: tuple[str, ...]) -> dict[str, _Line]:
    """The lines of a ``key value...`` section by key; unknown or repeated keys are errors."""
    out: dict[str, _Line] = {}
    for line in section[1:]:
        key = line[1][0].lower()
        if key not in allowed:
            raise FormatError(path, f"line {line[0]}", f"unknown keyword {line[1][0]!r}; expected one of {allowed}")
        if key in out:
            raise FormatError(path, f"line {line[0]}", f"{key!r} given twice")
        out[key] = line
    return out


def _need(path: Path, keyed: dict[str, _Line], key: str, where: int, what: str) -> _Line:
    if key not in keyed:
        raise FormatError(path, f"line {where}", f"{what} has no {key!r} line")
    return keyed[key]


def _parse_units(path: Path, section: list[_Line]) -> tuple[float, str]:
    """Metres per ASF length unit, and the angle unit."""
    start = section[0][0]
    keyed = _keyed(path, section, ("mass", "length", "angle"))
    (length,) = _floats(path, _need(path, keyed, "length", start, ":units"), "length unit", 1)
    if length <= 0:
        raise FormatError(path, f"line {keyed['length'][0]}", f"length unit {length}: expected a positive number")
    number, tokens = _need(path, keyed, "angle", start, ":units")
    if len(tokens) != 2 or tokens[1].lower() not in ("deg", "rad"):
        raise FormatError(path, f"line {number}", f"angle unit {' '.join(tokens[1:])!r}: expected 'deg' or 'rad'")
    if "mass" in keyed:
        _floats(path, keyed["mass"], "mass unit", 1)
    return INCH_M / length, tokens[1].lower()


def _parse_root(path: Path, section: list[_Line]) -> tuple[tuple[str, ...], str, tuple[float, ...], tuple[float, ...]]:
    """Root channel order, axis order, position and orientation."""
    start = section[0][0]
    keyed = _keyed(path, section, ("order", "axis", "position", "orientation"))
    number, tokens = _need(path, keyed, "order", start, ":root")
    order = tuple(t.upper() for t in tokens[1:])
    if sorted(order) != sorted(ROOT_CHANNELS):
        raise FormatError(
            path, f"line {number}", f"root order {' '.join(tokens[1:])!r}: expected TX TY TZ RX RY RZ in any order"
        )
    number, tokens = _need(path, keyed, "axis", start, ":root")
    if len(tokens) != 2:
        raise FormatError(path, f"line {number}", "root axis: expected one axis order such as XYZ")
    axis = _axis_order(path, (number, tokens), tokens[1])
    position = _floats(path, _need(path, keyed, "position", start, ":root"), "root position", 3)
    orientation = _floats(path, _need(path, keyed, "orientation", start, ":root"), "root orientation", 3)
    return order, axis, position, orientation


def _parse_bonedata(path: Path, section: list[_Line], scale: float) -> dict[str, AsfBone]:
    """Bones in file order (parents not yet known) from ``begin ... end`` blocks."""
    bones: dict[str, AsfBone] = {}
    body = section[1:]
    i = 0
    while i < len(body):
        number, tokens = body[i]
        if tokens != ["begin"]:
            raise FormatError(path, f"line {number}", f"expected 'begin' to start a bone, found {' '.join(tokens)!r}")
        j = i + 1
        while j < len(body) and body[j][1][0] not in ("begin", "end"):
            j += 1
        if j == len(body) or body[j][1] != ["end"]:
            where = body[j][0] if j < len(body) else number
            raise FormatError(path, f"line {where}", f"bone starting at line {number}: expected 'end' before this")
        bone = _parse_bone(path, number, body[j][0], body[i + 1 : j], scale)
        if bone.name in bones or bone.name == ROOT:
            raise FormatError(path, f"line {number}", f"bone name {bone.name!r} is used twice")
        bones[bone.name] = bone
        i = j + 1
    if not bones:
        raise FormatError(path, f"line {section[0][0]}", ":bonedata holds no bones; expected 'begin ... end' blocks")
    return bones


def _bone_fields(path: Path, lines: list[_Line]) -> dict[str, _Line]:
    """Keyword -> line; ``limits`` continuation lines (starting with '(') are folded into it."""
    fields: dict[str, _Line] = {}
    previous = ""
    for number, tokens in lines:
        if tokens[0].startswith("(") and previous == "limits":
            fields["limits"][1].extend(tokens)
            continue
        key = tokens[0].lower()
        if key not in _BONE_KEYS:
            raise FormatError(
                path, f"line {number}", f"unknown bone keyword {tokens[0]!r}; expected one of {_BONE_KEYS}"
            )
        if key in fields:
            raise FormatError(path, f"line {number}", f"{key!r} given twice in one bone")
        fields[key] = (number, list(tokens))
        previous = key
    return fields


def _parse_bone(path: Path, begin: int, end: int, lines: list[_Line], scale: float) -> AsfBone:
    fields = _bone_fields(path, lines)
    what = f"the bone at lines {begin}-{end}"
    number, tokens = _need(path, fields, "name", begin, what)
    if len(tokens) != 2:
        raise FormatError(path, f"line {number}", "bone name: expected one word")
    name = tokens[1]
    what = f"bone {name!r} (lines {begin}-{end})"
    direction = _floats(path, _need(path, fields, "direction", begin, what), "direction", 3)
    norm = math.sqrt(sum(d * d for d in direction))
    if norm < 1e-9:
        raise FormatError(path, f"line {fields['direction'][0]}", "direction: expected a non-zero vector")
    (length,) = _floats(path, _need(path, fields, "length", begin, what), "length", 1)
    if length < 0:
        raise FormatError(path, f"line {fields['length'][0]}", f"length {length}: expected a number >= 0")
    axis_line = _need(path, fields, "axis", begin, what)
    if len(axis_line[1]) != 5:
        raise FormatError(path, f"line {axis_line[0]}", "axis: expected three angles and an order such as XYZ")
    axis = _floats(path, (axis_line[0], axis_line[1][:4]), "axis", 3)
    dof = _parse_dof(path, fields.get("dof"))
    return AsfBone(
        name=name,
        parent="",
        direction=(direction[0] / norm, direction[1] / norm, direction[2] / norm),
        length=length * scale,
        axis=axis,
        axis_order=_axis_order(path, axis_line, axis_line[1][4]),
        dof=dof,
        limits=_parse_limits(path, fields.get("limits"), dof),
    )


def _parse_dof(path: Path, line: _Line | None) -> tuple[str, ...]:
    if line is None:
        return ()
    number, tokens = line
    dof = tuple(t.lower() for t in tokens[1:])
    if not dof or any(d not in BONE_DOFS for d in dof) or len(set(dof)) != len(dof):
        raise FormatError(
            path, f"line {number}", f"dof {' '.join(tokens[1:])!r}: expected distinct rotations rx, ry, rz"
        )
    return dof


def _parse_limits(path: Path, line: _Line | None, dof: tuple[str, ...]) -> tuple[tuple[float, float], ...]:
    if line is None:
        return ()
    number, tokens = line
    text = " ".join(tokens[1:])
    pairs = _LIMIT_PAIR.findall(text)
    if _LIMIT_PAIR.sub("", text).strip() or len(pairs) != len(dof):
        raise FormatError(path, f"line {number}", f"limits: expected {len(dof)} '(min max)' pairs, one per dof")
    try:
        return tuple((float(a), float(b)) for a, b in pairs)
    except ValueError:
        raise FormatError(path, f"line {number}", f"limits: expected numbers, found {text!r}") from None


def _parse_hierarchy(path: Path, section: list[_Line], bones: dict[str, AsfBone]) -> tuple[dict[str, str], list[str]]:
    """Each bone's parent, and the bones in breadth-first order from the root (parents first)."""
    start, body = section[0][0], section[1:]
    if not body or body[0][1] != ["begin"]:
        raise FormatError(path, f"line {body[0][0] if body else start}", ":hierarchy: expected 'begin'")
    if len(body) < 2 or body[-1][1] != ["end"]:
        raise FormatError(path, f"line {body[-1][0]}", ":hierarchy: expected 'end' as its last line")
    parents: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    for number, tokens in body[1:-1]:
        parent, kids = tokens[0], tokens[1:]
        if parent != ROOT and parent not in bones:
            raise FormatError(
                path, f"line {number}", f"unknown bone {parent!r} in :hierarchy; expected a bone of :bonedata"
            )
        if not kids:
            raise FormatError(path, f"line {number}", f"{parent!r} lists no children; expected 'parent child...'")
        for kid in kids:
            if kid not in bones:
                raise FormatError(
                    path, f"line {number}", f"unknown bone {kid!r} in :hierarchy; expected a bone of :bonedata"
                )
            if kid in parents:
                raise FormatError(path, f"line {number}", f"bone {kid!r} already has parent {parents[kid]!r}")
            parents[kid] = parent
            children.setdefault(parent, []).append(kid)
    order, queue = [], [ROOT]
    while queue:
        queue = [kid for name in queue for kid in children.get(name, [])]
        order.extend(queue)
    reached = set(order)
    unreachable = [name for name in bones if name not in reached]
    if unreachable:
        raise FormatError(
            path, f"line {start}", f"bones not connected to the root in :hierarchy: {', '.join(unreachable)}"
        )
    return parents, order


def _with_parent(bone: AsfBone, parent: str) -> AsfBone:
    return AsfBone(bone.name, parent, bone.direction, bone.length, bone.axis, bone.axis_order, bone.dof, bone.limits)


# ---------------------------------------------------------------------------------------------- AMC


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


# ---------------------------------------------------------------------------------------------- kinematics


def rotation_matrices(angles: np.ndarray, order: str) -> np.ndarray:
    """Rotations [..., 3, 3] from angles [..., k] in radians about fixed axes applied in ``order`` (first first).

    ``order`` has one letter (x, y or z, any case) per angle; for "XYZ" the result is Rz @ Ry @ Rx.
    """
    angles = np.asarray(angles, dtype=np.float64)
    result = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for i, letter in enumerate(order.lower()):
        result = _axis_rotation(letter, angles[..., i]) @ result
    return result


def _axis_rotation(letter: str, angle: np.ndarray) -> np.ndarray:
    a, b = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[letter]
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((*np.shape(angle), 3, 3))
    out[..., 3 - a - b, 3 - a - b] = 1.0
    out[..., a, a] = c
    out[..., a, b] = -s
    out[..., b, a] = s
    out[..., b, b] = c
    return out


def _radians(unit: str) -> float:
    return math.pi / 180.0 if unit == "deg" else 1.0


def forward_kinematics(skeleton: AsfSkeleton, motion: AmcMotion) -> dict[str, np.ndarray]:
    """Joint positions in metres, float64 [T, 3] per name of ``skeleton.joint_names``.

    A bone's position is its end point. Bones without AMC values (no dofs) keep ``L = I``.
    """
    to_rad, asf_rad = _radians(motion.angle_unit), _radians(skeleton.angle_unit)
    root = motion.channels[ROOT]
    column = {channel: root[:, i] for i, channel in enumerate(skeleton.root_order)}
    turns = [c for c in skeleton.root_order if c.startswith("R")]
    axis = rotation_matrices(np.array(skeleton.root_orientation) * asf_rad, skeleton.root_axis_order)
    moved = rotation_matrices(np.stack([column[c] for c in turns], axis=-1) * to_rad, "".join(c[1] for c in turns))
    rotation = {ROOT: axis @ moved @ axis.T}
    position = {ROOT: np.stack([column["TX"], column["TY"], column["TZ"]], axis=-1) * skeleton.length_scale_to_metres}
    for name, bone in skeleton.bones.items():
        local = np.eye(3)
        values = motion.channels.get(name)
        if bone.dof and values is not None:
            axis = rotation_matrices(np.array(bone.axis) * asf_rad, bone.axis_order)
            moved = rotation_matrices(values * to_rad, "".join(d[1] for d in bone.dof))
            local = axis @ moved @ axis.T
        rotation[name] = rotation[bone.parent] @ local
        offset = np.array(bone.direction) * bone.length
        position[name] = position[bone.parent] + rotation[name] @ offset
    return position


def check_cmu_layout(skeleton: AsfSkeleton) -> None:
    """Raise ``FormatError`` unless the skeleton's bones and parents are those of ``layouts.CMU_ASF``."""
    expected = dict(zip(CMU_ASF.joints, CMU_ASF.parents, strict=True))
    missing = [n for n in CMU_ASF.joints[1:] if n not in skeleton.bones]
    extra = [n for n in skeleton.bones if n not in expected]
    if missing or extra:
        listed = [f"{label} {', '.join(names)}" for label, names in (("missing", missing), ("extra", extra)) if names]
        raise FormatError(skeleton.path, ":bonedata", f"bones do not match the CMU ASF layout ({'; '.join(listed)})")
    for name, bone in skeleton.bones.items():
        parent = CMU_ASF.joints[expected[name]]
        if bone.parent != parent:
            problem = f"bone {name!r} has parent {bone.parent!r}; the CMU ASF layout expects {parent!r}"
            raise FormatError(skeleton.path, ":hierarchy", problem)


def cmu_joints(skeleton: AsfSkeleton, motion: AmcMotion) -> np.ndarray:
    """Joints float32 [T, 31, 3] in metres in ``CMU_ASF`` order (y up, as the capture)."""
    check_cmu_layout(skeleton)
    position = forward_kinematics(skeleton, motion)
    return np.stack([position[name] for name in CMU_ASF.joints], axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------------------- files


def default_asf_path(amc_path: str | Path) -> Path:
    """``SS.asf`` beside an AMC named ``SS_TT.amc``."""
    amc_path = Path(amc_path)
    subject, sep, _ = amc_path.stem.partition("_")
    if not sep or not subject:
        raise FormatError(amc_path, "", "cannot tell its skeleton: expected a name like SS_TT.amc (or pass asf_path)")
    return amc_path.with_name(f"{subject}.asf")


def read_amc(amc_path: str | Path, asf_path: str | Path | None = None) -> Recording:
    """A CMU trial as a one-body ``Recording`` in the ``CMU_ASF`` layout at 120 Hz."""
    amc_path = Path(amc_path)
    if asf_path is None:
        asf_path = default_asf_path(amc_path)
        if not asf_path.is_file():
            raise FormatError(asf_path, "", f"no such file; the skeleton of {amc_path.name} is looked for here")
    asf_path = Path(asf_path)
    skeleton = parse_asf(asf_path)
    motion = parse_amc(amc_path, skeleton)
    joints = cmu_joints(skeleton, motion)
    trial = amc_path.stem
    metadata = {
        "subject": trial.partition("_")[0] if "_" in trial else asf_path.stem,
        "trial": trial,
        "first_frame": int(motion.frames[0]),
        "source": str(amc_path),
        "skeleton": str(asf_path),
        "acknowledgement": ACKNOWLEDGEMENT,
    }
    return Recording.single_body(CMU_ASF, joints, rate_hz=CMU_RATE_HZ, sensor_id="cmu-mocap", metadata=metadata)
