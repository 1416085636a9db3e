"""Build the offline MediaPipe pose model gaitwatch ships (``sensors/data/pose_landmarker_full.task``).

Why build it: the current mediapipe release (1.2.x) has only the Tasks API and ships no model, and
gaitwatch must run offline. The 0.10.21 wheel on the package registry bundles the Apache-2.0 pose
models (``pose_detection.tflite``, ``pose_landmark_full.tflite``); the Tasks API wants them zipped as
``pose_detector.tflite`` + ``pose_landmarks_detector.tflite``, each carrying image-input
normalisation metadata (detector: mean 127.5, std 127.5; landmarker: mean 0, std 255). Only the
0.10.21 wheel has the metadata writer's compiled part, and it needs numpy < 2 and protobuf < 5, so
the writing runs in a throwaway virtual environment of its own.

    python tools/pose_task.py --out sensors/data/pose_landmarker_full.task [--wheel mediapipe-0.10.21-....whl]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

RELEASE = "mediapipe==0.10.21"
WRITER_REQUIREMENTS = ["numpy<2", "protobuf>=4.25.3,<5", "flatbuffers>=2.0", "absl-py", "attrs"]

# Runs inside the throwaway environment: argv = out path. The mediapipe package's __init__ pulls in
# OpenCV and its solutions; a bare package module lets the metadata writer import without them.
WRITER = r"""
import sys, types, zipfile
from pathlib import Path
site = next(p for p in sys.path if p.endswith("site-packages"))
package = types.ModuleType("mediapipe")
package.__path__ = [site + "/mediapipe"]
sys.modules["mediapipe"] = package
from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer

def with_metadata(source, name, mean, std):
    writer = metadata_writer.MetadataWriter.create(Path(site, "mediapipe", source).read_bytes())
    writer.add_general_info(name, "From " + source + " of the mediapipe 0.10.21 wheel (Apache-2.0)")
    writer.add_image_input(norm_mean=[mean], norm_std=[std])
    model, _ = writer.populate()
    return bytes(model)

members = {
    "pose_detector.tflite": with_metadata(
        "modules/pose_detection/pose_detection.tflite", "pose_detector", 127.5, 127.5
    ),
    "pose_landmarks_detector.tflite": with_metadata(
        "modules/pose_landmark/pose_landmark_full.tflite", "pose_landmarks_detector", 0.0, 255.0
    ),
}
import struct
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as bundle:
    for name, data in members.items():
        info = zipfile.ZipInfo(name, date_time=(2025, 1, 31, 0, 0, 0))  # fixed: the same bytes every build
        start = bundle.fp.tell() + 30 + len(name) + 4  # where the data would begin after a padding record
        pad = -start % 64  # TFLite maps the model in place only when its buffers are aligned
        info.extra = struct.pack("<HH", 0xD935, pad) + bytes(pad)
        bundle.writestr(info, data)
"""


def build(out: Path, wheel: Path | None = None) -> str:
    """Write the .task file to ``out``; returns its sha256."""
    with tempfile.TemporaryDirectory(prefix="gaitwatch-pose-task-") as folder:
        work = Path(folder)
        if wheel is None:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(work), RELEASE])
            wheel = next(work.glob("mediapipe-*.whl"))
        venv.create(work / "env", with_pip=True)
        python = work / "env" / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
        _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
        _run([str(python), "-m", "pip", "install", "-q", *WRITER_REQUIREMENTS])
        partial = out.with_name(out.name + ".partial")
        _run([str(python), "-c", WRITER, str(partial)])
        partial.replace(out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command[:4])} ...\n{result.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {RELEASE} wheel (default: pip download it)")
    args = parser.parse_args(argv)
    digest = build(args.out, args.wheel)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
