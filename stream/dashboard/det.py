"""What a threshold file (``gaitwatch calibrate site`` or ``calibrate threshold``) tells for a DET plot.

A labelled calibration (``calibrate threshold``) measured FRR beside FAR: its rows are DET points, and its
verification part has the equal error rate. A site calibration has no labels, so no FRR: its rows give the
threshold for each target FAR, drawn as threshold against FAR. The page marks the threshold the node uses
(the ``threshold`` of its identity events) among them. Files are read as they are; only their shape is checked.
"""

from __future__ import annotations

import math
from pathlib import Path

from stream.threshold import threshold_report


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _rows(table: object, kind: str) -> list[dict]:
    rows = table.get("thresholds") if isinstance(table, dict) else None
    points = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or _number(row.get("threshold")) is None:
            continue
        far = _number(row.get("far"))
        frr = _number(row.get("frr"))
        if frr is None and _number(row.get("dir")) is not None:
            frr = 1.0 - float(row["dir"])  # open set: enrolled people not named right
        points.append(
            {
                "table": kind,
                "target_far": _number(row.get("target_far")),
                "threshold": float(row["threshold"]),
                "far": far if far is not None else _number(row.get("target_far")),
                "frr": frr,
            }
        )
    return points


def read_det(path: Path) -> dict:
    """The DET data of a threshold file; InputError naming the file when it is not one."""
    report = threshold_report(path, "cannot read")
    verification = report.get("verification") if isinstance(report.get("verification"), dict) else {}
    return {
        "file": str(path),
        "source": str(report.get("source") or "labelled: gaitwatch calibrate threshold"),
        "model": report.get("model"),
        "matcher": _rows(report.get("matcher"), "matcher"),
        "verification": _rows(verification, "verification"),
        "eer": _number(verification.get("eer")),
        "eer_threshold": _number(verification.get("eer_threshold")),
    }
