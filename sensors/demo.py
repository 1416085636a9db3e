"""The bundled demo recording: CMU mocap walking trials of several people, canonical layout, 30 Hz."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEMO_RECORDING = "demo-cmu-walks.gwrec"


def demo_recording_path() -> Path:
    return Path(str(files("sensors") / "data" / DEMO_RECORDING))
