"""Where a person's mask comes from: MediaPipe's segmentation from the pose call, or OpenCV background subtraction.

Why two: the pose model's segmentation costs almost nothing extra (the pose call computes it anyway) and
works with a moving camera and changing light, but it is learned and blurs limbs; background subtraction is
what CASIA-B's own silhouettes were made with and draws sharp outlines, but needs a still camera and either
a clip of the empty scene (``--background CLIP``: the model is learned from it, then frozen) or time to
learn the scene while people walk through it (``still_camera``). docs/silhouettes.md says which to use when.

Both give, per body the pose model found, a full-image uint8 0/255 mask; ``sensors.silhouette.align`` then
crops it to 64 x 44. Background subtraction is not per person: each body keeps the foreground within its
landmarks' box (enlarged), so two people overlapping in the image share pixels there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors.errors import InputError
from sensors.silhouette import align, binary

MEDIAPIPE = "mediapipe"
BACKGROUND = "background"
METHODS = (MEDIAPIPE, BACKGROUND)
BOX_MARGIN = 0.15
"""Share of a body's landmark height added around its landmark box: the head's top and the soles lie outside."""
BACKGROUND_IMAGES = 200  # most images of a background clip learned from
SHADOW = 127  # MOG2's label for a shadow: background here (CASIA-B's floor reflects and shades)
WORK_WIDTH = 320
"""Images wider than this are subtracted at this width (the mask scaled back): MOG2's cost grows with the pixels,
and a silhouette is aligned to 64 rows anyway."""


@dataclass
class Silhouettes:
    """One image's silhouettes, a row per body of its frame (bodies without a usable mask are marked invalid)."""

    crops: np.ndarray  # uint8 [B, 64, 44], aligned
    valid: np.ndarray  # bool [B]: a mask with enough foreground was found
    boxes: np.ndarray  # int32 [B, 4]: x0, y0, x1, y1 of each body's mask in the image (exclusive ends)
    mask: np.ndarray | None = None  # uint8 [H, W] 0/255: every body's mask together, kept for the preview


class BackgroundModel:
    """OpenCV's MOG2 background subtractor, with shadows counted as background and small specks removed."""

    def __init__(
        self, learn: bool = True, history: int = 500, var_threshold: float = 16.0, work_width: int = WORK_WIDTH
    ) -> None:
        import cv2

        self._cv2 = cv2
        self.work_width = work_width
        self.size: tuple[int, int] | None = None  # (width, height) of the images it learned from
        self.source = "the camera's own images"
        self._model = cv2.createBackgroundSubtractorMOG2(history, var_threshold, True)
        self.learning_rate = -1.0 if learn else 0.0  # -1: OpenCV's own rate from the history
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    @classmethod
    def from_clip(
        cls, path: str | Path, max_images: int = BACKGROUND_IMAGES, work_width: int = WORK_WIDTH
    ) -> BackgroundModel:
        """Learned from a clip of the empty scene, then frozen: a person who stands still never fades into it."""
        import cv2

        capture = cv2.VideoCapture(str(path))
        if not Path(path).is_file() or not capture.isOpened():
            raise InputError(f"{path}: cannot read this background clip (a video of the empty scene)")
        model, learned = cls(learn=True, history=max_images, work_width=work_width), 0
        try:
            while learned < max_images and (read := capture.read())[0]:
                model._labels(read[1])
                learned += 1
        finally:
            capture.release()
        if learned == 0:
            raise InputError(f"{path}: no image could be decoded from this background clip")
        model.source = str(path)
        model.learning_rate = 0.0
        return model

    def foreground(self, image: np.ndarray) -> np.ndarray:
        """uint8 0/255: what differs from the scene (shadows excluded), opened then closed to drop specks and holes."""
        cv2 = self._cv2
        mask = np.where(self._labels(image) > SHADOW, np.uint8(255), np.uint8(0))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._kernel, iterations=2)
        height, width = image.shape[:2]
        if mask.shape != (height, width):
            mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
        return mask

    def _labels(self, image: np.ndarray) -> np.ndarray:
        """MOG2's labels (0 background, 127 shadow, 255 foreground), of the image at most ``work_width`` wide."""
        cv2 = self._cv2
        height, width = image.shape[:2]
        if self.size is None:
            self.size = (width, height)
        elif self.size != (width, height):  # MOG2 would silently start over, forgetting the scene
            raise InputError(
                f"{self.source}: the background is {self.size[0]}x{self.size[1]}, these images {width}x{height}"
            )
        if width > self.work_width:
            size = (self.work_width, max(1, round(height * self.work_width / width)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return self._model.apply(image, learningRate=self.learning_rate)


def body_box(pixels: np.ndarray, size: tuple[int, int], margin: float = BOX_MARGIN) -> tuple[int, int, int, int]:
    """A body's landmark box [x0, y0, x1, y1) in the image, enlarged by ``margin`` of its height, clipped."""
    width, height = size
    finite = pixels[np.isfinite(pixels).all(axis=1)]
    if len(finite) == 0:
        return (0, 0, 0, 0)
    (x0, y0), (x1, y1) = finite.min(axis=0), finite.max(axis=0)
    pad = margin * max(y1 - y0, 1.0)
    return (
        int(np.clip(np.floor(x0 - pad), 0, width)),
        int(np.clip(np.floor(y0 - pad), 0, height)),
        int(np.clip(np.ceil(x1 + pad), 0, width)),
        int(np.clip(np.ceil(y1 + pad), 0, height)),
    )


def person_of_foreground(foreground: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The foreground inside a body's box, its largest blob and the blobs at least a tenth its size (a leg cut off
    by a shadow line stays), as a full-image mask."""
    import cv2

    x0, y0, x1, y1 = box
    out = np.zeros_like(foreground)
    if x1 <= x0 or y1 <= y0:
        return out
    inside = foreground[y0:y1, x0:x1]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=8)
    if count <= 1:
        return out
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.1 * areas.max()) + 1
    out[y0:y1, x0:x1] = np.where(np.isin(labels, keep), np.uint8(255), np.uint8(0))
    return out


def silhouettes_of(masks: list[np.ndarray], keep_mask: bool = False) -> Silhouettes:
    """Aligned crops of full-image 0/255 masks, one per body; ``keep_mask`` keeps their union for a preview."""
    bodies = len(masks)
    crops = np.zeros((bodies, 64, 44), np.uint8)
    valid = np.zeros(bodies, bool)
    boxes = np.zeros((bodies, 4), np.int32)
    for i, mask in enumerate(masks):
        crop = align(mask)
        if crop is not None:
            crops[i], valid[i] = crop, True
            rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            boxes[i] = (columns[0], rows[0], columns[-1] + 1, rows[-1] + 1)
    union = None
    if keep_mask and masks:
        union = np.maximum.reduce(masks)
    return Silhouettes(crops, valid, boxes, union)


def mediapipe_masks(segmentation_masks: list, bodies: int) -> list[np.ndarray]:
    """MediaPipe's per-pose probability masks (one per body, same order as its landmarks) as 0/255 masks."""
    if len(segmentation_masks) != bodies:
        raise InputError(f"MediaPipe gave {len(segmentation_masks)} masks for {bodies} bodies")
    return [binary(m.numpy_view()) for m in segmentation_masks]


def background_masks(model: BackgroundModel, image: np.ndarray, pixels: np.ndarray) -> list[np.ndarray]:
    """Per body (its image landmarks [B, 33, 2]), the foreground that is that person's."""
    foreground = model.foreground(image)
    size = (image.shape[1], image.shape[0])
    return [person_of_foreground(foreground, body_box(body, size)) for body in pixels]
