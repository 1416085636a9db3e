"""What a training setting may be: the bounds every method gives its settings, checked before any data is read.

Why: ``--set`` checks a value's type, but a negative learning rate, a batch of one track or a share above one
trains for minutes and then fails with a traceback (or worse, trains something that is not what was asked).
Each method lists bounds for its numeric settings (``setting_bounds``) and may add checks across settings
(``setting_problems``); ``check_settings`` turns every problem into one error naming them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from sensors.errors import InputError


@dataclass(frozen=True)
class Bounds:
    """An interval a number must lie in (None: unbounded on that side)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def admits(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
            return False
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.open_high else '<='} {self.high:g}"
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"


COUNT = Bounds(1)  # layers, epochs, sizes
PAIR = Bounds(2)  # what a batch or a contrast needs two of
NON_NEGATIVE = Bounds(0)  # weights, decay, noise
POSITIVE = Bounds(0, open_low=True)  # rates, temperatures, scales
SHARE = Bounds(0, 1)  # a probability or a mix


def out_of_bounds(config: dict, bounds: dict[str, Bounds]) -> list[str]:
    """One line per setting of ``config`` outside its bounds (settings without bounds are not checked)."""
    return [
        f"{key} must be {limit}, got {config[key]!r}"
        for key, limit in bounds.items()
        if config.get(key) is not None and not limit.admits(config[key])  # None: off, in runs made before it
    ]


def check_settings(whose: str, problems: list[str]) -> None:
    """Every problem found in one error, before training starts."""
    if problems:
        raise InputError(f"{whose} settings: " + "; ".join(problems))
