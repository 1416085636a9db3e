"""Errors raised on bad user input: one clear line naming what and where."""

from __future__ import annotations

from pathlib import Path


class GaitwatchError(Exception):
    """Base of every error that the command line turns into one clear line."""


class FormatError(GaitwatchError, ValueError):
    """A file does not follow its format: says which file, where in it, and what was expected."""

    def __init__(self, path: str | Path, where: str, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        location = f"{self.path}, {where}" if where else self.path
        super().__init__(f"{location}: {problem}")


class InputError(GaitwatchError, ValueError):
    """A user-supplied value (path, option, array) is unusable."""
