"""``--silhouettes`` and ``--background``: the options every command that makes silhouettes takes alike.

Why shared: ``record``, ``camera`` and ``silhouettes extract`` choose the method the same way, and a
background clip given without background silhouettes is a mistake said at once, before a camera opens.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sensors.errors import InputError
from sensors.silhouette_sources import BACKGROUND, METHODS, BackgroundModel


def add_silhouette_options(parser: argparse.ArgumentParser, what: str, default: str | None = None) -> None:
    parser.add_argument(
        "--silhouettes",
        choices=METHODS,
        default=default,
        help=f"{what}: mediapipe (the pose model's segmentation) or background (OpenCV background subtraction: "
        "a still camera; see --background)"
        + ("" if default else " (default: no silhouettes, the pose call costs nothing more)"),
    )
    parser.add_argument(
        "--background",
        type=Path,
        help="with --silhouettes background: a clip of the empty scene to learn the background from (default: "
        "learned from the camera's own images as people walk by)",
    )


def background_model(args: argparse.Namespace) -> BackgroundModel | None:
    """The background learned from ``--background``, or None (no clip: a still camera's model learns as it goes)."""
    if args.background is None:
        return None
    if args.silhouettes != BACKGROUND:
        raise InputError("--background: only with --silhouettes background")
    return BackgroundModel.from_clip(args.background)
