"""Camera intrinsics, and putting MediaPipe's hip-centred world skeletons back where they stand.

MediaPipe's world landmarks are metric but centred on the hips in every frame: walking speed and
path are gone. With the camera's intrinsics, the translation T that makes the pinhole projection of
(world + T) best match the image landmarks is a small linear least-squares problem (two equations
per visible joint, weighted by visibility):

    fx (X + Tx) = (u - cx) (Z + Tz),  fy (Y + Ty) = (v - cy) (Z + Tz)

The world landmarks share the camera's axes (x right, y down, z away), so no rotation is needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import InputError

DEFAULT_HORIZONTAL_FOV_DEG = 60.0  # a typical webcam; say so where it is used


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float

    @staticmethod
    def from_fov(width: int, height: int, horizontal_fov_deg: float = DEFAULT_HORIZONTAL_FOV_DEG) -> Intrinsics:
        """Square pixels, principal point at the image centre, focal length from the horizontal field of view."""
        if not 0 < horizontal_fov_deg < 180:
            raise InputError(f"field of view must be between 0 and 180 degrees, got {horizontal_fov_deg}")
        f = (width / 2) / math.tan(math.radians(horizontal_fov_deg) / 2)
        return Intrinsics(f, f, width / 2, height / 2)

    @staticmethod
    def from_file(path: str | Path) -> Intrinsics:
        """A JSON file with fx, fy, cx, cy in pixels (OpenCV's camera matrix entries)."""
        try:
            data = json.loads(Path(path).read_text())
            return Intrinsics(*(float(data[key]) for key in ("fx", "fy", "cx", "cy")))
        except OSError as err:
            raise InputError(f"{path}: cannot read intrinsics ({err.strerror})") from None
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}: expected a JSON object with numbers fx, fy, cx, cy (pixels)") from None


def place_bodies(
    world: np.ndarray, pixels: np.ndarray, visibility: np.ndarray, intrinsics: Intrinsics, min_visibility: float = 0.5
) -> np.ndarray:
    """World landmarks [B, J, 3] moved to camera space by the translation their image landmarks [B, J, 2] imply.

    A body with fewer than 4 joints visible above ``min_visibility`` keeps NaN joints (no position can
    be trusted), which downstream treats as a lost body for that frame."""
    out = np.full(world.shape, np.nan, np.float32)
    k = intrinsics
    for b in range(len(world)):
        seen = visibility[b] >= min_visibility
        if seen.sum() < 4:
            continue
        x, y, z = world[b, seen].astype(np.float64).T
        u, v = pixels[b, seen, 0] - k.cx, pixels[b, seen, 1] - k.cy
        w = np.sqrt(visibility[b, seen].astype(np.float64))
        zeros, ones = np.zeros_like(u), np.ones_like(u)
        a = np.concatenate([np.stack([k.fx * ones, zeros, -u], 1), np.stack([zeros, k.fy * ones, -v], 1)])
        rhs = np.concatenate([u * z - k.fx * x, v * z - k.fy * y])
        weights = np.concatenate([w, w])[:, None]
        translation, *_ = np.linalg.lstsq(a * weights, rhs * weights[:, 0], rcond=None)
        out[b] = world[b] + translation.astype(np.float32)
    return out


def placer(intrinsics: Intrinsics | None, fov_deg: float | None):
    """``place_bodies`` for ``sensors.rgb.RgbPoseSource``: with known intrinsics, or with a horizontal field of
    view applied to each image's size; None when neither is given (skeletons stay centred on the hips)."""
    if intrinsics is None and fov_deg is None:
        return None
    if fov_deg is not None and not 0 < fov_deg < 180:
        raise InputError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")

    def place(world: np.ndarray, pixels: np.ndarray, visibility: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return place_bodies(world, pixels, visibility, intrinsics or Intrinsics.from_fov(*size, fov_deg))

    return place


def placer_for(intrinsics_file: Path | None, fov_deg: float | None, stored: Intrinsics | None = None):
    """The placer a camera's options ask for, in one order everywhere: ``--intrinsics``, else ``--fov``, else
    the intrinsics stored for the sensor in its calibration file; None when there are none."""
    if intrinsics_file is not None:
        return placer(Intrinsics.from_file(intrinsics_file), None)
    if fov_deg is not None:
        return placer(None, fov_deg)
    return placer(stored, None)
