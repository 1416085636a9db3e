"""Logging for the command line: gaitwatch's own messages (progress, warnings) on stderr, one line each.

Library code logs under ``gaitwatch.*`` and never prints; the entry point calls ``configure`` once, so
a program that imports gaitwatch keeps control of its own logging."""

from __future__ import annotations

import logging
import sys


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and tools replace it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


def configure(level: int = logging.INFO) -> None:
    """Show gaitwatch's log lines on stderr (once, however often it is called)."""
    logger = logging.getLogger("gaitwatch")
    logger.setLevel(level)
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(_Formatter())
        logger.addHandler(handler)
    logger.propagate = False
