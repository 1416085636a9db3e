"""Launch files: a node recipe in TOML, checked, then run as the command line it stands for.

A launch file holds one table named after the command it runs, whose keys are that command's
options (dashes or underscores) and its positional arguments by name:

    [replay]
    paths = ["walks/"]          # relative paths are taken from the launch file's folder
    gallery = "people.db"
    speed = "max"
    pub = "tcp://127.0.0.1:5557"

A ``[dashboard]`` table may stand beside the command's (``gaitwatch dashboard`` started with it and stopped
when it ends); its ``sub``, ``gallery`` and ``threshold`` default to the node's ``pub``, ``gallery`` and
``threshold`` file, so it shows that node and manages its gallery:

    [replay]
    gallery = "people.db"
    [dashboard]
    http = "127.0.0.1:8080"

Why map onto the command line: one definition of every option (its meaning, default and checks),
so a launch file can never mean something the command does not. Every value that names a file (an
option of type ``Path``, ``file_or_number`` or ``model_spec``) is taken relative to the launch file's
folder, with ``~`` for the home folder, so a launch file means the same from any working directory.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from sensors.errors import InputError
from stream.gallery.location import gallery_location
from stream.gallery.postgres import is_url

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

LAUNCHABLE = ("replay", "listen", "camera", "kinect", "hub", "dashboard")
BESIDE = "dashboard"  # the table that may stand beside another, started with it
FROM_THE_NODE = {"sub": "pub", "gallery": "gallery", "threshold": "threshold"}  # dashboard key <- node key


def file_or_number(text: str) -> str:
    """argparse type of an option taking a number or a file (``--threshold``); the command parses it."""
    return text


def model_spec(text: str) -> str:
    """argparse type of ``--model``: an artifact file, or ``raw`` (the raw-coordinates baseline)."""
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# per argparse type: whether a value of it names a file (and so is resolved against the launch file's folder)
_NAMES_A_FILE = {
    Path: lambda value: True,
    file_or_number: lambda value: not _is_number(value),
    model_spec: lambda value: value != "raw",
    gallery_location: lambda value: not is_url(value),
}


def _resolved(value: object, action: argparse.Action, folder: Path) -> str:
    names_a_file = _NAMES_A_FILE.get(action.type)
    if names_a_file is None or not isinstance(value, str) or not names_a_file(value):
        return str(value)
    return str(folder / Path(value).expanduser())


def launch_argv(path: Path, parser: argparse.ArgumentParser) -> list[str]:
    """The argv of the command a launch file stands for; InputError naming the file and the key for anything wrong."""
    return launch_plan(path, parser)[0]


def launch_plan(path: Path, parser: argparse.ArgumentParser) -> list[list[str]]:
    """The argvs a launch file stands for: its command's, then the dashboard's beside it where it has one."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such launch file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML ({err})") from None
    commands = _subcommands(parser)
    tables = [key for key in data if key in commands and key in LAUNCHABLE]
    beside = BESIDE if BESIDE in tables and len(tables) == 2 else None
    main = [table for table in tables if table != beside]
    if len(main) != 1 or len(tables) != len(data) or not all(isinstance(data[t], dict) for t in tables):
        known = ", ".join(f"[{c}]" for c in LAUNCHABLE if c in commands)
        raise InputError(
            f"{path}: expected exactly one table naming the command to run ({known}), optionally with a "
            f"[{BESIDE}] beside it; found {list(data)}"
        )
    command = main[0]
    plan = [[command, *_arguments(path, command, data[command], commands[command])]]
    if beside is not None:
        table = dict(data[beside])
        for key, node_key in FROM_THE_NODE.items():
            value = data[command].get(node_key)
            if key not in table and isinstance(value, str) and not (key == "threshold" and _is_number(value)):
                table[key] = value
        plan.append([beside, *_arguments(path, beside, table, commands[beside])])
    return plan


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _arguments(path: Path, command: str, table: dict, sub: argparse.ArgumentParser) -> list[str]:
    actions = {a.dest: a for a in sub._actions if a.dest not in ("help", "func")}
    options, positional = [], []
    for key, value in table.items():
        action = actions.get(key.replace("-", "_"))
        where = f"{path}: [{command}] {key}"
        if action is None:
            known = ", ".join(sorted(d.replace("_", "-") for d in actions))
            raise InputError(f"{where}: unknown setting (known: {known})")
        many = action.nargs in ("*", "+") or isinstance(action.nargs, int)
        if isinstance(action, argparse._StoreTrueAction):
            if not isinstance(value, bool):
                raise InputError(f"{where}: expected true or false, got {value!r}")
            options += [action.option_strings[0]] if value else []
            continue
        values = value if many else [value]
        if many and not isinstance(value, list):
            raise InputError(f"{where}: expected a list, got {value!r}")
        if not many and isinstance(value, (list, dict)):
            raise InputError(f"{where}: expected one value, got {value!r}")
        if any(isinstance(v, (bool, dict, list)) or not isinstance(v, (str, int, float)) for v in values):
            raise InputError(f"{where}: expected text or numbers, got {value!r}")
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise InputError(f"{where}: expected a finite number, got {value!r}")
        texts = [_resolved(v, action, path.parent) for v in values]
        if action.option_strings:
            options += [action.option_strings[0], *texts]
        else:
            positional += texts
    return [*positional, *options]
