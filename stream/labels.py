"""Which label of a recorded track names its person: the answer key for scoring replays and enrolling by label."""

from __future__ import annotations

from pathlib import Path

PERSON_KEYS = ("person", "subject")  # KGBD walks, CMU trials


def person_label(labels: dict, key: str | None = None) -> tuple[str, str] | None:
    """(the label, the person) ``labels`` name by ``key``, else by the first of PERSON_KEYS present; None if none."""
    for k in (key,) if key else PERSON_KEYS:
        if k in labels and labels[k] is not None:
            return k, str(labels[k])
    return None


def person_of(labels: dict, key: str | None = None) -> str | None:
    """The person ``labels`` name (``key``, else the first of PERSON_KEYS present), as text; None if none."""
    found = person_label(labels, key)
    return None if found is None else found[1]


def person_of_identity(name: str, attributes: dict) -> str:
    """The person a gallery identity holds: its person label where enrollment stored one, else its name.

    Attributes survive a rename, so a renamed identity is still scored as the person it was enrolled from."""
    return person_of(attributes) or name


def track_name(labels: dict) -> str:
    """A short name for where a track came from: KGBD person/walk, CMU trial, NTU sample, or the file."""
    if "person" in labels and "walk" in labels:
        return f"{labels['person']}/{labels['walk']}"
    if "trial" in labels:
        return f"subject {labels.get('subject', '?')} trial {labels['trial']}"
    if "person" in labels:
        return str(labels["person"])
    return Path(str(labels.get("source", "?"))).name
