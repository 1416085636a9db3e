"""Silhouettes as the gait literature uses them: a person's binary mask, cropped and aligned to 64 x 44.

Why this alignment: GaitSet, GaitPart, SelfGait and OpenGait all train on silhouettes cut to the rows
the person occupies, scaled to 64 rows keeping the aspect ratio, and centred horizontally on the column
that halves the person's mass (OpenGait's pretreatment keeps a 64 x 64 image; the models then cut 10
columns off each side, leaving 64 x 44). Doing the same here means the product's own silhouettes, a
user's CASIA-B silhouettes and OpenGait's ``.pkl`` files all reach a model in one form.

Pure NumPy (plus OpenCV's resize): no camera, no model. The masks come from ``sensors.silhouette_sources``.
"""

from __future__ import annotations

import numpy as np

from sensors.errors import InputError

HEIGHT = 64
WIDTH = 44
OPENGAIT_WIDTH = 64  # OpenGait's stored width; models see its middle 44 columns
MIN_PIXELS = 40
"""Fewest foreground pixels of a mask worth aligning (OpenGait skips an image summing to 10,000 or less at 0/255)."""


def binary(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """A probability or 0/255 mask as uint8 0/255 (what CASIA-B's silhouette PNGs hold)."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise InputError(f"a mask of shape {mask.shape}: expected [height, width]")
    level = threshold * 255 if mask.dtype == np.uint8 else threshold
    return np.where(mask > level, np.uint8(255), np.uint8(0))


def align(
    mask: np.ndarray, height: int = HEIGHT, width: int = WIDTH, min_pixels: int = MIN_PIXELS
) -> np.ndarray | None:
    """The mask's person, height-normalised to ``height`` rows and centred on its half-mass column, ``width`` wide.

    Returns uint8 [height, width] (grey levels where scaling blends edges, as OpenGait's files hold), or None when
    the mask has fewer than ``min_pixels`` foreground pixels (no person worth a silhouette)."""
    import cv2

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"a mask of shape {mask.shape}: expected [height, width]")
    if mask.dtype != np.uint8:
        mask = (np.clip(mask, 0.0, 1.0) * 255).astype(np.uint8) if mask.dtype.kind == "f" else mask.astype(np.uint8)
    rows = np.flatnonzero(mask.any(axis=1))
    if np.count_nonzero(mask) < min_pixels or len(rows) == 0:
        return None
    person = mask[rows[0] : rows[-1] + 1]
    columns = np.flatnonzero(person.any(axis=0))
    person = person[:, columns[0] : columns[-1] + 1]  # only the person's columns are scaled (cheaper, same result)
    scaled_width = max(1, round(person.shape[1] * height / person.shape[0]))
    scaled = cv2.resize(person, (scaled_width, height), interpolation=cv2.INTER_CUBIC)
    mass = scaled.sum(axis=0, dtype=np.int64).cumsum()
    centre = int(np.searchsorted(mass, mass[-1] / 2))  # the half-mass column: a swinging arm moves it little
    out = np.zeros((height, width), np.uint8)
    left = centre - width // 2
    src_a, src_b = max(left, 0), min(left + width, scaled_width)
    out[:, src_a - left : src_b - left] = scaled[:, src_a:src_b]
    return out


def cut_opengait(images: np.ndarray) -> np.ndarray:
    """OpenGait's stored 64 x 64 silhouettes as the 64 x 44 the models see: 10 columns cut from each side."""
    side = (images.shape[-1] - WIDTH) // 2
    return np.ascontiguousarray(images[..., side : side + WIDTH])


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the foreground, exclusive ends; (0, 0, 0, 0) for an empty mask."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return (0, 0, 0, 0)
    return (int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks (foreground: above half scale); 1.0 when both are empty."""
    a, b = binary(a) > 0, binary(b) > 0
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union
