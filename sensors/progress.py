"""Progress for long work, on stderr so that stdout stays clean for results.

On a terminal: a rich progress bar. Elsewhere (a pipe, a log file, CI) a bar draws nothing, so long
work would look hung: there, a plain log line every few seconds, and one when work that took that
long is done (short work says nothing, so a command's error stays its only line on stderr).
Lines go through ``logging`` (logger ``gaitwatch.progress``): the command line shows them, a library
user decides for themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import track

T = TypeVar("T")
_console = Console(stderr=True)
log = logging.getLogger("gaitwatch.progress")
PLAIN_EVERY_S = 10.0


def progress(items: Iterable[T], description: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    if not enabled:
        return iter(items)
    if _console.is_terminal:
        return iter(track(items, description=description, total=total, transient=True, console=_console))
    return _plain(items, description, total)


def _plain(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    began = last = time.monotonic()
    done, said = 0, False
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= PLAIN_EVERY_S:
            last, said = now, True
            of = f"/{total} ({100 * done / total:.0f}%)" if total else ""
            log.info("%s: %d%s, %.0f s", description, done, of, now - began)
    if said:
        log.info("%s: %d done in %.1f s", description, done, time.monotonic() - began)
