"""``--preview FILE.mp4``: the camera's video with skeletons, track ids and identity labels drawn on it.

Why it hooks into the node twice: the node's framing thread knows which track each body is (the
tracker runs there), its encoding thread knows who each track is (the matcher runs there). The
preview keeps the latest name per track from the events and draws each frame when its bodies
have been tracked, on the image the source kept for it. With ``--silhouettes`` it also tints each
person's mask and shows the aligned 64 x 44 silhouettes (what a silhouette model sees) in a corner.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from sensors import atomic
from sensors.errors import InputError
from sensors.frame import Frame
from sensors.layouts import MEDIAPIPE_POSE
from sensors.silhouette_sources import Silhouettes
from stream.events import IDENTITY

KEEP_IMAGES = 64  # images waiting for their frame to be tracked (the framing thread is seldom far behind)


def refuse_existing(path: Path) -> None:
    """A preview shows people and is never written over a file, whatever it is (the source video itself?)."""
    if path.exists():
        raise InputError(f"{path}: already exists; give --preview a new file")


class PreviewWriter:
    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import cv2

        self._cv2 = cv2
        self.path = path
        refuse_existing(path)
        os.close(atomic.open_private(path))  # created private; OpenCV writes into it and keeps its mode
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0, size)
        if not self.writer.isOpened():
            raise InputError(f"{path}: OpenCV cannot write a video here")
        self._images: OrderedDict[int, tuple[np.ndarray, np.ndarray, Silhouettes | None]] = OrderedDict()
        self._names: dict[str, str] = {}
        self._bones = MEDIAPIPE_POSE.bones()
        self.written = 0

    def keep(self, seq: int, image: np.ndarray, pixels: np.ndarray, silhouettes: Silhouettes | None = None) -> None:
        """Called by the source for every estimated image (before the node sees its frame)."""
        self._images[seq] = (image, pixels, silhouettes)
        while len(self._images) > KEEP_IMAGES:
            self._images.popitem(last=False)

    def on_event(self, topic: str, payload: dict) -> None:
        if topic == IDENTITY:
            self._names[payload["track"]] = payload["name"] if payload["known"] else "unknown"

    def on_frame(self, frame: Frame, keys: list[str]) -> None:
        kept = self._images.pop(frame.seq, None)
        if kept is None:
            return
        image, pixels, silhouettes = kept
        cv2 = self._cv2
        canvas = image.copy()
        if silhouettes is not None:
            draw_silhouettes(canvas, silhouettes)
        for body, key in enumerate(keys):
            points = pixels[body].astype(int)
            for parent, child in self._bones:
                cv2.line(canvas, tuple(points[child]), tuple(points[parent]), (0, 255, 0), 1)
            top = tuple(points[points[:, 1].argmin()] - np.array([20, 8]))
            label = f"{key.split('/')[-1]}: {self._names.get(key, '...')}"
            cv2.putText(canvas, label, top, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
        self.writer.write(canvas)
        self.written += 1

    def close(self) -> None:
        self.writer.release()


def draw_silhouettes(canvas: np.ndarray, silhouettes: Silhouettes) -> None:
    """Each person's mask tinted magenta on the image, and their aligned silhouettes side by side at the top left
    (scaled up on large images), in place."""
    if silhouettes.mask is not None and silhouettes.mask.shape == canvas.shape[:2]:
        person = silhouettes.mask > 0
        canvas[person] = (canvas[person] * 0.5 + np.array([127, 0, 127])).astype(np.uint8)
    scale = max(1, canvas.shape[0] // 240)
    x = 0
    for crop, valid in zip(silhouettes.crops, silhouettes.valid, strict=True):
        if not valid:
            continue
        tile = np.repeat(np.repeat(crop, scale, axis=0), scale, axis=1)
        h, w = tile.shape
        if x + w > canvas.shape[1] or h > canvas.shape[0]:
            break
        canvas[:h, x : x + w] = tile[:, :, None]
        x += w + 2
