"""CASIA-B's ``GaitDatasetB-silh``: a PNG silhouette per frame, ``SSS/CC-NN/VVV/SSS-CC-NN-VVV-FFF.png``.

Why align here: the PNGs are whole 320 x 240 frames with the person somewhere in them (made by background
subtraction); models take the person cut out and aligned (``sensors.silhouette.align``), so a sequence is
read straight into uint8 [T, 64, 44]. Frames with (next to) no foreground are left out, as OpenGait's
pretreatment does; a PNG that cannot be decoded, or one of another size than its sequence's first, is an
error naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sensors.errors import FormatError
from sensors.formats._io import read_bytes
from sensors.native_logs import quiet_environment
from sensors.silhouette import HEIGHT, WIDTH, align

MAX_PNG_BYTES = 16 * 2**20  # a 320 x 240 silhouette is a few kB; a frame of any camera well under this
MAX_SIDE = 8192  # widest or tallest image decoded: a small PNG can declare a huge one (a decompression bomb)
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png_sequence(folder: Path) -> np.ndarray:
    """One sequence folder's PNGs (in name order, which is frame order), aligned: uint8 [T, 64, 44]."""
    frames, size = [], None
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")):
        image = read_png(path)
        if size is None:
            size = image.shape
        elif image.shape != size:
            raise FormatError(
                path, "", f"a {image.shape[1]}x{image.shape[0]} image in a sequence of {size[1]}x{size[0]}"
            )
        crop = align(image)
        if crop is not None:
            frames.append(crop)
    return np.stack(frames) if frames else np.zeros((0, HEIGHT, WIDTH), np.uint8)


def read_png(path: Path) -> np.ndarray:
    """A one-channel (grey) 8-bit PNG as uint8 [H, W]."""
    quiet_environment()
    import cv2

    data = read_bytes(path, MAX_PNG_BYTES)  # regular files only, bounded
    if data[:8] == _SIGNATURE and len(data) >= 24:  # IHDR: width and height before anything is inflated
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if max(width, height) > MAX_SIDE:
            raise FormatError(path, "", f"a {width}x{height} image; silhouettes up to {MAX_SIDE}x{MAX_SIDE} are read")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FormatError(path, "", "not a readable PNG image (truncated or corrupt?)")
    if image.ndim == 3 and image.shape[2] >= 3 and (image[:, :, :3] == image[:, :, :1]).all():
        image = image[:, :, 0]  # saved as colour, but grey
    if image.ndim != 2 or image.dtype != np.uint8:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise FormatError(
            path, "", f"a {channels}-channel {image.dtype} image; expected a one-channel 8-bit silhouette"
        )
    return image
