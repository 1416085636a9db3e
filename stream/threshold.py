"""Decision thresholds from labelled scores: genuine and impostor distances, FAR/FRR, EER, a DET plot.

Scores are Euclidean distances (smaller = more alike); a pair is accepted when its distance is at
most the threshold. FAR = accepted impostor pairs / impostor pairs; FRR = rejected genuine pairs /
genuine pairs. The threshold for a target FAR is the largest one whose measured FAR does not exceed
it, so the promise holds on the calibration data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import InputError

FORMAT = "gaitwatch-threshold"
VERSION = 2  # version 1 (no "format" key) had a top-level "thresholds" table: the verification one


@dataclass(frozen=True)
class Calibration:
    thresholds: dict[float, float]  # target FAR -> threshold
    far_at: dict[float, float]  # measured FAR at that threshold
    frr_at: dict[float, float]  # FRR at that threshold
    eer: float
    eer_threshold: float
    genuine: int
    impostor: int

    def to_dict(self) -> dict:
        return {
            "thresholds": [
                {"target_far": t, "threshold": self.thresholds[t], "far": self.far_at[t], "frr": self.frr_at[t]}
                for t in sorted(self.thresholds)
            ],
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "genuine_pairs": self.genuine,
            "impostor_pairs": self.impostor,
        }


def rates(genuine: np.ndarray, impostor: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, FRR) at each threshold."""
    g, i = np.sort(genuine), np.sort(impostor)
    far = np.searchsorted(i, thresholds, side="right") / len(i)
    frr = 1.0 - np.searchsorted(g, thresholds, side="right") / len(g)
    return far, frr


def threshold_for_far(impostor: np.ndarray, target: float) -> float:
    """The largest threshold whose FAR on ``impostor`` is at most ``target`` (below every impostor for 0)."""
    i = np.sort(impostor)
    allowed = int(np.floor(target * len(i) + 1e-9))  # impostor pairs that may be accepted
    if allowed == 0:
        return float(np.nextafter(i[0], -np.inf))
    if allowed >= len(i):
        return float(i[-1])
    upper = i[allowed]  # accepting this one would exceed the target
    return float(np.nextafter(upper, -np.inf))


def calibrate(genuine: np.ndarray, impostor: np.ndarray, targets: tuple[float, ...] = (0.01, 0.1)) -> Calibration:
    genuine, impostor = np.asarray(genuine, np.float64), np.asarray(impostor, np.float64)
    if len(genuine) == 0 or len(impostor) == 0:
        raise InputError(f"calibration needs genuine and impostor scores (got {len(genuine)} and {len(impostor)})")
    if not (np.isfinite(genuine).all() and np.isfinite(impostor).all()):
        raise InputError("calibration scores contain NaN or infinite values")
    if any(not 0 <= t <= 1 for t in targets):
        raise InputError(f"target false-accept rates must lie in [0, 1], got {targets}")
    thresholds = {t: threshold_for_far(impostor, t) for t in targets}
    far, frr = rates(genuine, impostor, np.array([thresholds[t] for t in targets]))
    grid = np.unique(np.concatenate([genuine, impostor]))
    far_grid, frr_grid = rates(genuine, impostor, grid)
    k = int(np.argmin(np.abs(far_grid - frr_grid)))
    return Calibration(
        thresholds=thresholds,
        far_at=dict(zip(targets, far.tolist(), strict=True)),
        frr_at=dict(zip(targets, frr.tolist(), strict=True)),
        eer=float((far_grid[k] + frr_grid[k]) / 2),
        eer_threshold=float(grid[k]),
        genuine=len(genuine),
        impostor=len(impostor),
    )


def write_det_plot(genuine: np.ndarray, impostor: np.ndarray, calibration: Calibration, path: Path) -> None:
    """DET curve (FRR against FAR, log axes) with the calibrated operating points marked."""
    from engines.plotting import pyplot

    plt = pyplot()
    grid = np.unique(np.concatenate([genuine, impostor]))
    far, frr = rates(genuine, impostor, grid)
    floor = 0.5 / max(len(genuine), len(impostor))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(np.maximum(far, floor), np.maximum(frr, floor), label="DET")
    for target, threshold in calibration.thresholds.items():
        ax.plot(
            max(calibration.far_at[target], floor),
            max(calibration.frr_at[target], floor),
            "o",
            label=f"FAR target {target:g}: threshold {threshold:.3g}",
        )
    ax.plot(calibration.eer, calibration.eer, "x", color="black", label=f"EER {100 * calibration.eer:.1f}%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("false reject rate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def open_set_thresholds(identified: np.ndarray, stranger: np.ndarray, targets: tuple[float, ...]) -> list[dict]:
    """Per target open-set FAR (share of strangers accepted as someone): the threshold and its DIR.

    ``stranger``: each probe's distance to the nearest identity that is not its own (how an unknown
    person scores); ``identified``: its own identity's distance where that is the nearest, else inf.
    DIR (detection and identification rate) = share of probes both nearest-correct and within it."""
    rows = []
    for target in targets:
        threshold = threshold_for_far(stranger, target)
        rows.append(
            {
                "target_far": target,
                "threshold": threshold,
                "far": float(np.mean(stranger <= threshold)),
                "dir": float(np.mean(identified <= threshold)),
            }
        )
    return rows


def threshold_report(path: Path, unreadable: str) -> dict:
    """A threshold file (``--threshold PATH``: the node's, the dashboard's) read and checked to be one (its format);
    InputError naming it otherwise (``unreadable``: what to call a file that cannot be read)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"--threshold {path}: {unreadable} ({err.strerror or err})") from None
    except (ValueError, RecursionError):
        raise InputError(f"--threshold {path}: not a threshold file of `gaitwatch calibrate` (not JSON)") from None
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise InputError(
            f"--threshold {path}: not a threshold file of this gaitwatch (files from before version {VERSION} "
            "held the verification threshold where the matcher's belongs); run `gaitwatch calibrate threshold` again"
        )
    return report


def matcher_threshold(path: Path, far: float, model_sha256: str | None = None) -> float:
    """The matcher's threshold for target ``far`` from a threshold file written by ``calibrate threshold``.

    The file holds two kinds of threshold: ``matcher`` (open set: the share of people who are not
    enrolled that the node names as someone) and ``verification`` (one probe against one claimed
    identity). The node decides open set, so this reads ``matcher`` and nothing else."""
    report = threshold_report(path, "neither a number nor a readable file")
    if report.get("version") != VERSION:
        raise InputError(f"--threshold {path}: threshold file version {report.get('version')}, expected {VERSION}")
    if model_sha256 is not None and report.get("model_sha256") != model_sha256:
        raise InputError(
            f"--threshold {path}: calibrated for model {report.get('model')!r}, not the one this node runs; "
            "calibrate again with --model"
        )
    try:
        rows = report["matcher"]["thresholds"]
        found = [float(row["threshold"]) for row in rows if math.isclose(float(row["target_far"]), far)]
    except (KeyError, TypeError, ValueError):
        raise InputError(f"--threshold {path}: its matcher table is malformed") from None
    if not found or not math.isfinite(found[0]):
        targets = ", ".join(f"{row.get('target_far')}" for row in rows if isinstance(row, dict))
        raise InputError(f"--threshold {path}: no matcher threshold for --far {far} (it has: {targets})")
    if not found[0] > 0:
        raise InputError(
            f"--threshold {path}: matcher threshold {found[0]:.4g} for --far {far} is no positive distance (that rate "
            "is out of reach for the gallery it was calibrated on): use a higher --far"
        )
    return found[0]
