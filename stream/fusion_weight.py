"""Choosing the fusion weight from labelled validation walks: the weight that best parts a person's own
identity from everyone else's.

Why pairs and not rates: a site has few validation walks (a few people, a walk or two each), too few for error rates
at a threshold; what the node needs is that a walk's own identity is nearer than the others, for every walk at once
where a threshold is to separate them. So for each weight on a grid the fused distances (``stream.fusion.fuse``) of
every walk to every enrolled identity give genuine and impostor distances; the weight that puts the most (genuine,
impostor) pairs in the right order wins (the area under the ROC curve), then the one with the largest gap between
the nearest impostor and the farthest genuine distance (in skeleton impostor-scale units), then the one nearest 0.5
(the two channels weighed equally). Walks must be of other days than the enrollment: two stretches of one recording
share clothes and light, which the silhouette channel sees, and would over-rate it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import InputError
from stream.fusion import fuse

FORMAT = "gaitwatch-fusion"
VERSION = 1
GRID = tuple(round(w, 1) for w in np.linspace(0.0, 1.0, 11))


@dataclass(frozen=True)
class WalkScores:
    """One validation walk: whose it is (None: a stranger, impostor distances only) and its distance to each
    enrolled identity in each channel."""

    identity: int | None
    skeleton: dict[int, float]
    silhouette: dict[int, float]


def weigh(walks: list[WalkScores], scales: tuple[float, float]) -> list[dict]:
    """Per weight of ``GRID``: the share of (genuine, impostor) pairs in the right order (``auc``), the gap (nearest
    impostor - farthest genuine, over the skeleton scale), how many of the enrolled people's walks have their own
    identity nearest, and the fused distances themselves."""
    rows, labelled = [], sum(walk.identity is not None for walk in walks)
    for weight in GRID:
        genuine, impostor, nearest_right = [], [], 0
        for walk in walks:
            fused = fuse(sorted(walk.skeleton.items(), key=lambda kv: kv[1]), walk.silhouette, weight, *scales)
            nearest_right += walk.identity is not None and bool(fused) and fused[0].identity == walk.identity
            for match in fused:
                (genuine if match.identity == walk.identity else impostor).append(match.distance / scales[0])
        if not genuine or not impostor:
            raise InputError("fusion weight: needs walks of enrolled people and at least two enrolled identities")
        g, i = np.asarray(genuine)[:, None], np.asarray(impostor)[None, :]
        auc = float(np.mean((g < i) + 0.5 * (g == i)))
        gap = min(impostor) - max(genuine)
        row = {"weight": weight, "auc": auc, "gap": gap, "nearest_right": nearest_right, "walks": labelled}
        rows.append({**row, "genuine": genuine, "impostor": impostor})
    return rows


def best(rows: list[dict]) -> float:
    """The weight ordering the most pairs right, then with the largest gap; ties (to a millionth) to the one
    nearest 0.5."""
    return max(rows, key=lambda r: (round(r["auc"], 6), round(r["gap"], 6), -abs(r["weight"] - 0.5)))["weight"]


def read_weight(text: str, skeleton_sha: str | None = None, silhouette_sha: str | None = None) -> float:
    """``--fusion-weight``: a number from 0 to 1, or a file ``gaitwatch calibrate fusion`` wrote for these models."""
    try:
        weight = float(text)
    except ValueError:
        weight = _from_file(Path(text), skeleton_sha, silhouette_sha)
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"--fusion-weight: a weight from 0 to 1, got {text}")
    return weight


def _from_file(path: Path, skeleton_sha: str | None, silhouette_sha: str | None) -> float:
    if not path.is_file():
        raise InputError(f"--fusion-weight {path}: neither a number nor a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # not UTF-8, not JSON, or a number Python will not read (thousands of digits)
        raise InputError(f"{path}: not a fusion weight file (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise InputError(f"{path}: not a fusion weight file (format {FORMAT} version {VERSION})")
    models = data.get("models") or {}
    for channel, sha in (("skeleton", skeleton_sha), ("silhouette", silhouette_sha)):
        if sha is not None and models.get(channel) != sha:
            raise InputError(f"{path}: chosen for another {channel} model than this node's; run calibrate fusion again")
    weight = data.get("weight")
    if not isinstance(weight, (int, float)) or isinstance(weight, bool):
        raise InputError(f"{path}: its weight is {weight!r}, not a number")
    return float(weight)
