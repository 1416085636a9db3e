"""The floor plane under a sensor, fitted from the feet of people walking in its recording.

While a person walks, one foot at least rests on the floor (the stance foot) while the other swings
above it; the lower of the two feet, "lower" along the person's own feet-to-head axis, therefore
traces the floor, a few centimetres above it. That choice needs no idea of where "up" is beyond the
walker standing upright, and no foot speeds, which a monocular pose estimate's depth jitter would
swamp. We fit a plane to those points with RANSAC and refine it by least squares on the inliers.

When every footstep lies along one straight line (a single straight walk, the usual recording), the
feet fix the plane's direction along the walk but hardly its roll about it: the two feet are only
~20 cm apart, so centimetre noise in foot height turns into degrees of roll. Then the normal is
taken perpendicular to the walking line and as close as possible to the walkers' mean body axis
(feet to head), and the result says so (``method = "walk-line+body-axis"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sensors.errors import InputError
from sensors.layouts import CANONICAL
from sensors.recording import Recording

FEET = ("FootLeft", "FootRight")
ANKLES = ("AnkleLeft", "AnkleRight")
MIN_CONFIDENCE = 0.3  # derived joints (mapping.DERIVED_CONFIDENCE) carry half their sources' confidence
INLIER_M = 0.03
RANSAC_TRIALS = 300
MIN_POINTS = 30
MIN_PLANE_SPREAD_M = 0.4  # std of footsteps across the walking direction needed to trust the plane's roll


@dataclass(frozen=True)
class FloorFit:
    """Plane ``normal · x + offset = 0`` in the sensor's canonical frame; ``normal`` points up (towards heads)."""

    normal: tuple[float, float, float]
    offset: float  # = the sensor's height above the plane of the standing feet, metres
    method: str  # "plane" or "walk-line+body-axis"
    points: int  # lower-foot points found (one per body and frame)
    inliers: int
    rms_m: float  # inliers' distance to the plane
    spread_m: tuple[float, float]  # std of the inliers along and across their main direction

    @property
    def tilt_deg(self) -> float:
        """Angle between the sensor's own up axis and the floor's normal."""
        return float(np.degrees(np.arccos(np.clip(self.normal[1], -1.0, 1.0))))

    def to_dict(self) -> dict:
        return {**asdict(self), "tilt_deg": round(self.tilt_deg, 3)}

    @staticmethod
    def from_dict(data: dict) -> FloorFit:
        return FloorFit(
            normal=tuple(float(v) for v in data["normal"]),
            offset=float(data["offset"]),
            method=str(data["method"]),
            points=int(data["points"]),
            inliers=int(data["inliers"]),
            rms_m=float(data["rms_m"]),
            spread_m=tuple(float(v) for v in data["spread_m"]),
        )


def stance_points(recording: Recording) -> tuple[np.ndarray, np.ndarray]:
    """The lower foot of every body in every frame [N, 3] ("lower" along its track's mean feet-to-head axis),
    and each track's mean feet-to-head axis [K, 3]."""
    if recording.layout != CANONICAL:
        raise ValueError("stance_points needs canonical recordings (calibration.mapping.to_canonical)")
    feet = [CANONICAL.index(n) for n in FEET]
    ankles = [CANONICAL.index(n) for n in ANKLES]
    head = CANONICAL.index("Head")
    points, axes = [], []
    for track in recording.unique_tracks():
        _, joints, confidence = recording.track(int(track))
        # the foot joint where it is tracked, else the ankle (RGB pose estimators often lose toes)
        use_foot = confidence[:, feet] >= MIN_CONFIDENCE
        foot = np.where(use_foot[..., None], joints[:, feet], joints[:, ankles])  # [T, 2, 3]
        seen = use_foot | (confidence[:, ankles] >= MIN_CONFIDENCE)
        seen &= np.isfinite(foot).all(axis=-1)
        body = joints[:, head] - foot.mean(axis=1)
        upright = seen.all(axis=1) & (confidence[:, head] >= MIN_CONFIDENCE) & np.isfinite(body).all(axis=1)
        if not upright.any():
            continue
        axis = body[upright].mean(axis=0)
        axes.append(axis)
        height = foot[upright] @ (axis / np.linalg.norm(axis))  # [T', 2]
        points.append(foot[upright][np.arange(len(height)), height.argmin(axis=1)])
    stacked = np.concatenate(points) if points else np.empty((0, 3))
    return stacked.astype(np.float64), np.asarray(axes, np.float64).reshape(-1, 3)


def fit_floor(recordings: list[Recording], where: str = "recording", seed: int = 0) -> FloorFit:
    """The floor under one sensor from its canonical recordings (their footsteps pooled); ``where`` names them
    in errors."""
    pairs = [stance_points(r) for r in recordings]
    points = np.concatenate([p for p, _ in pairs]) if pairs else np.empty((0, 3))
    body_axes = np.concatenate([a for _, a in pairs]) if pairs else np.empty((0, 3))
    if len(points) < MIN_POINTS:
        raise InputError(
            f"{where}: {len(points)} frames show a body's head and both feet (need {MIN_POINTS}); "
            "record people walking with their whole body in view"
        )
    up = body_axes.mean(axis=0)
    up /= np.linalg.norm(up)
    normal, inliers = _ransac_plane(points, np.random.default_rng(seed))
    centre, (along, across), walk_direction = _spread(points[inliers])
    method = "plane"
    if across < MIN_PLANE_SPREAD_M:
        normal = up - np.dot(up, walk_direction) * walk_direction
        normal /= np.linalg.norm(normal)
        inliers = np.abs((points - centre) @ normal) < INLIER_M
        centre, (along, across), _ = _spread(points[inliers])
        method = "walk-line+body-axis"
    if np.dot(normal, up) < 0:
        normal = -normal
    offset = -float(np.dot(normal, centre))
    residual = (points[inliers] - centre) @ normal
    return FloorFit(
        normal=tuple(float(v) for v in normal),
        offset=offset,
        method=method,
        points=len(points),
        inliers=int(inliers.sum()),
        rms_m=float(np.sqrt(np.mean(residual**2))),
        spread_m=(along, across),
    )


def _ransac_plane(points: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The plane with most points within INLIER_M (random triples), refined by least squares on them."""
    best = np.zeros(len(points), bool)
    for _ in range(RANSAC_TRIALS):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        length = np.linalg.norm(normal)
        if length < 1e-9:
            continue
        inliers = np.abs((points - a) @ (normal / length)) < INLIER_M
        if inliers.sum() > best.sum():
            best = inliers
    if best.sum() < 3:
        raise InputError("the feet do not lie on any plane")
    for _ in range(2):  # refine, then re-collect inliers around the refined plane once
        centre = points[best].mean(axis=0)
        normal = np.linalg.svd(points[best] - centre, full_matrices=False)[2][2]
        best = np.abs((points - centre) @ normal) < INLIER_M
    return normal, best


def _spread(points: np.ndarray) -> tuple[np.ndarray, tuple[float, float], np.ndarray]:
    """Centre, std along the main direction and across it (within the plane), and the main direction."""
    centre = points.mean(axis=0)
    _, s, vt = np.linalg.svd(points - centre, full_matrices=False)
    std = s / np.sqrt(max(len(points) - 1, 1))
    return centre, (float(std[0]), float(std[1])), vt[0]
