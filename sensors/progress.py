"""Progress bars for long work, drawn on stderr so that stdout stays clean for results."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import track

T = TypeVar("T")
_console = Console(stderr=True)


def progress(items: Iterable[T], description: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    return iter(
        track(items, description=description, total=total, transient=True, console=_console, disable=not enabled)
    )
