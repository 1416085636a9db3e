"""Native libraries' logging kept off the terminal: OpenCV, FFmpeg and MediaPipe write to stderr from C++.

Why: a video run printed a dozen lines of their logging (TFLite's delegate, MediaPipe's glog-style warnings,
OpenCV's backends trying a camera index, FFmpeg's decoding errors) around gaitwatch's one-line messages.
OpenCV and FFmpeg obey environment variables read when they load (``quiet_environment``, called before
they are imported; a setting the user made is kept). MediaPipe's logging has no switch a program can reach,
so ``dropped`` catches file descriptor 2 around the calls that log (creating a landmarker, estimating until
the first person is found) and writes back every line that is not native logging, so nothing of gaitwatch's
own (or of another thread's) is lost. Catching is counted, so overlapping uses from several threads share
one catch and the last one out restores stderr.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

QUIET_ENVIRONMENT = {
    "OPENCV_LOG_LEVEL": "OFF",  # OpenCV's own messages (each failed backend when a source does not open)
    "OPENCV_FFMPEG_LOGLEVEL": "-8",  # FFmpeg's (AV_LOG_QUIET): a damaged file's decoding errors, one per packet
}
NATIVE_LINE = re.compile(
    rb"[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.-]+:\d+\] "  # glog / absl: severity, date, time, thread, file:line
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: Logging before InitGoogle\(\)"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
)
"""A line native code logged: dropped (fatal ``F`` lines, which end the process, are kept)."""


def quiet_environment() -> None:
    """OpenCV's and FFmpeg's logging off, unless the user set it; effective before cv2 is first imported."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


class _Catch:
    """File descriptor 2 redirected into a temporary file while anyone holds it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.saved = -1
        self.file: BinaryIO | None = None

    def enter(self) -> None:
        with self.lock:
            if self.holders == 0:
                sys.stderr.flush()
                self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the last holder's leave)
                self.saved = os.dup(2)
                os.dup2(self.file.fileno(), 2)
            self.holders += 1

    def leave(self) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders or self.file is None:
                return
            sys.stderr.flush()
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.file.seek(0)
            kept = b"".join(line for line in self.file if not NATIVE_LINE.match(line))
            self.file.close()
            self.file = None
        if kept:
            sys.stderr.write(kept.decode(errors="replace"))
            sys.stderr.flush()


_CATCH = _Catch()


@contextmanager
def dropped() -> Iterator[None]:
    """Native logging during the block dropped; everything else written to stderr is written after it."""
    _CATCH.enter()
    try:
        yield
    finally:
        _CATCH.leave()
