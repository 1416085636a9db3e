"""What a model card says of the adaptations a model went through, as site calibration needs it.

A fine-tune pushes the people it trained on apart, further than a stranger will be from any of them; a
threshold measured by their distances to each other names too many strangers. ``gaitwatch adapt
--gallery`` therefore records, in the card, what a stranger scores against the people it trained on
(``engines.adapt_strangers``), and ``calibrate site`` uses that record instead of those distances.
"""

from __future__ import annotations

import numpy as np

from sensors.errors import InputError


def gallery_fine_tuned(card: dict) -> bool:
    """Whether any adaptation the model went through fine-tuned it on a gallery's enrolled people."""
    return any(step.get("gallery") and step.get("steps") for step in _adaptations(card))


def recordings_fine_tuned(card: dict) -> bool:
    """Whether any adaptation the model went through fine-tuned it on recordings (every track a class)."""
    return any(step.get("recordings") and step.get("steps") for step in _adaptations(card))


def stranger_record(card: dict) -> dict | None:
    """The newest adaptation's record of what a stranger scores (``engines.adapt_strangers``), as stored."""
    newest = card.get("adaptation")
    return newest.get("strangers") if isinstance(newest, dict) else None


def recorded_strangers(card: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(stranger-to-person pair distances, each stranger's nearest) that the newest adaptation measured, or
    None where it measured none (not fine-tuned on a gallery, too few people, or an older version)."""
    record = stranger_record(card)
    if record is None:
        return None
    try:
        pairs, nearest = (np.asarray(record[key], np.float64) for key in ("pairs", "nearest"))
    except (TypeError, KeyError, ValueError) as err:
        raise InputError(f"{_name(card)}: adaptation.strangers in its card is malformed ({err!r})") from None
    for key, values in (("pairs", pairs), ("nearest", nearest)):
        if values.ndim != 1 or not len(values) or not np.all(np.isfinite(values)) or np.any(values < 0):
            raise InputError(f"{_name(card)}: adaptation.strangers.{key} in its card is not a list of distances")
    return pairs, nearest


def _name(card: dict) -> str:
    return str((card.get("file") or {}).get("name", "the model"))


def _adaptations(card: dict) -> list[dict]:
    """The card's adaptation and every earlier one it was built on, newest first."""
    out, step = [], card.get("adaptation")
    while isinstance(step, dict):
        out.append(step)
        step = step.get("previous")
    return out
