"""Shared fixtures: the real data in ../shared (skipped with a reason where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
KGBD_ZIP = SHARED / "datasets" / "kgbd" / "KinectGait-master.zip"
CMU_DIR = SHARED / "datasets" / "cmu-mocap"


@pytest.fixture(scope="session")
def kgbd_zip() -> Path:
    if not KGBD_ZIP.is_file():
        pytest.skip(f"KGBD dataset not found at {KGBD_ZIP} (see ../shared/datasets/kgbd/README.md)")
    return KGBD_ZIP


@pytest.fixture(scope="session")
def cmu_dir() -> Path:
    if not CMU_DIR.is_dir():
        pytest.skip(f"CMU mocap trials not found at {CMU_DIR}")
    return CMU_DIR
