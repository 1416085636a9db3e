"""A small TrackCon checkpoint trained in seconds on synthetic walkers: the start of adaptation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.train.loop import train
from tests.synthetic_gait import synthetic_windows

SMALL = {"hidden": 64, "dim": 32, "tracks_per_batch": 8, "windows_per_track": 4, "steps_per_epoch": 10, "epochs": 1}


def small_trackcon(out: Path) -> Path:
    """Train one short epoch on 6 synthetic people (tracks of 10 windows) into ``out``; the checkpoint's path."""
    windows, _ = synthetic_windows(people=6, windows_per_person=20)
    return train("trackcon", windows, out, seed=0, description={"split": "kgbd:0", "layout": "kinect_v1",
                 "rate_hz": 30.0}, config_overrides=SMALL, show_progress=False,
                 tracks=np.arange(len(windows)) // 10)  # fmt: skip
