"""A tiny synthetic silhouette dataset in CASIA-B's layouts, generated under a test's tmp_path (never committed).

Each subject is a person of its own build (body width grows with the subject's rank); a coat (CL) makes
anyone broader, a bag (BG) adds a blob at the hip; views move the person in the image, which alignment
undoes. Frames differ by a leg swing, so a sequence is a walk, not one image repeated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TYPES = ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02")
VIEWS = ("000", "090", "180")


def frame(build: int, condition: str, view: str, step: int) -> np.ndarray:
    """A 320 x 240 0/255 silhouette: head, trunk, two legs apart by ``step``."""
    image = np.zeros((240, 320), np.uint8)
    x = 60 + 80 * VIEWS.index(view) + 7 * step
    width = 16 + 5 * build + (14 if condition == "cl" else 0)
    yy, xx = np.mgrid[:240, :320]
    image[(yy - 42) ** 2 + (xx - x) ** 2 <= 11**2] = 255
    image[52:130, x - width // 2 : x + width // 2] = 255
    spread = 4 + 4 * (step % 3)
    image[130:190, x - spread - 5 : x - spread + 2] = 255
    image[130:190, x + spread - 2 : x + spread + 5] = 255
    if condition == "bg":
        image[100:125, x + width // 2 : x + width // 2 + 12] = 255
    return image


def write_png_tree(root: Path, subjects: dict[str, int], frames: int = 4) -> None:
    """``root/SSS/TT-NN/VVV/SSS-TT-NN-VVV-FFF.png`` for every subject (name -> build), type and view."""
    import cv2

    for subject, build in subjects.items():
        for kind in TYPES:
            for view in VIEWS:
                folder = root / subject / kind / view
                folder.mkdir(parents=True)
                for step in range(frames):
                    image = frame(build, kind[:2], view, step)
                    cv2.imwrite(str(folder / f"{subject}-{kind}-{view}-{step + 1:03d}.png"), image)
