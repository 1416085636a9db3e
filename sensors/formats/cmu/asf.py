"""ASF skeleton parsing: ``parse_asf`` reads an Acclaim ``.asf`` file into an ``AsfSkeleton``.

It reads the units, the root channel order and axis, and per bone its direction (unit
vector in the global frame at rest), length, ``axis`` frame and rotational degrees of
freedom, plus the ``:hierarchy``. Bones are kept parents first. Every malformed input
raises ``FormatError`` naming the file, the line and what was expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from sensors.errors import FormatError
from sensors.formats.cmu._lines import _floats, _Line, _read_lines

INCH_M = 0.0254
ROOT = "root"
ROOT_CHANNELS = ("TX", "TY", "TZ", "RX", "RY", "RZ")
BONE_DOFS = ("rx", "ry", "rz")
_ASF_SECTIONS = (":version", ":name", ":units", ":documentation", ":root", ":bonedata", ":hierarchy", ":skin")
_BONE_KEYS = ("id", "name", "direction", "length", "axis", "dof", "limits", "bodymass", "cofmass")
_LIMIT_PAIR = re.compile(r"\(\s*([^\s()]+)\s+([^\s()]+)\s*\)")


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


def _content_lines(raw: list[str]) -> list[_Line]:
    """Tokenised lines without blanks and ``#`` comments, each with its 1-based line number."""
    lines = []
    for number, text in enumerate(raw, start=1):
        tokens = text.split()
        if tokens and not tokens[0].startswith("#"):
            lines.append((number, tokens))
    return lines


def _axis_order(path: Path, line: _Line, token: str) -> str:
    order = token.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise FormatError(path, f"line {line[0]}", f"axis order {token!r}: expected a permutation of XYZ")
    return order


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
