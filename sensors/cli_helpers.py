"""What every package's command line shares: the ``register`` signature, the command a handler was given, the
extras a command needs, option values parsed alike everywhere.

Why in ``sensors``: every package registers commands, and ``sensors`` is the layer all of them may import.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
from collections.abc import Mapping

from sensors.errors import InputError

Commands = argparse._SubParsersAction  # ``gaitwatch COMMAND``: where a package adds its own commands
Groups = Mapping[str, argparse._SubParsersAction]  # shared groups the entry point creates: "bench", "calibrate"


def command_line(args: argparse.Namespace) -> str:
    """The command as it was given (the entry point keeps its argv on the namespace): reports record it."""
    return shlex.join(["gaitwatch", *args.argv])


def require_extra(extra: str, modules: tuple[str, ...], needed_by: str) -> None:
    """InputError saying how to install ``extra`` where one of ``modules`` is missing, instead of a traceback."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(
            f"{needed_by} needs {' and '.join(missing)}: pip install -c constraints.txt 'gaitwatch[{extra}]'"
        )


def parse_speed(text: str) -> float | None:
    """``--speed``: a positive pace factor, or ``max`` (None: as fast as possible)."""
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not speed > 0:
        raise InputError(f"--speed: expected a positive number or 'max', got {text!r}")
    return speed
