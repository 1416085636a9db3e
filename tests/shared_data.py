"""Where the tests find the real data in ../shared (never copied into the repository); one place for every path."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
KGBD_ZIP = SHARED / "datasets" / "kgbd" / "KinectGait-master.zip"
CMU_DIR = SHARED / "datasets" / "cmu-mocap"
CASIA = SHARED / "media" / "casia-b"


def casia_clip(name: str) -> Path:
    """A shared CASIA-B side-view clip by its name without the view, e.g. ``001-nm-01``."""
    return CASIA / f"{name}-090.avi"
