"""``gaitwatch silhouettes extract`` and ``silhouettes info``: the product's own silhouettes as a dataset.

Why a dataset layout: what ``extract`` writes from videos (OpenGait's ``subject/type/view/VIEW.pkl``) is read
back by the same reader as a user's OpenGait or CASIA-B silhouettes, so training and evaluation never care
where silhouettes came from.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from sensors.cli_helpers import Commands, require_extra
from sensors.errors import InputError
from sensors.formats.silhouette_dataset import LAYOUTS, SequenceKey, read_dataset
from sensors.silhouette_options import add_silhouette_options, background_model

CASIA_NAME = re.compile(r"^(\d{3})-(nm|bg|cl)-(\d{2})-(\d{3})$")


def register(commands: Commands) -> None:
    group = commands.add_parser("silhouettes", help="silhouettes from videos, and silhouette datasets")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    extract = actions.add_parser(
        "extract", help="each video's walker as aligned 64x44 silhouettes, written as OpenGait pickles"
    )
    extract.add_argument("videos", type=Path, nargs="+", help="videos named like CASIA-B's: SSS-CC-NN-VVV.avi")
    extract.add_argument("--out", type=Path, required=True, help="dataset folder: OUT/SSS/CC-NN/VVV/VVV.pkl")
    extract.add_argument(
        "--as", dest="key", help="SUBJECT/TYPE/VIEW for a single video not named like CASIA-B's (e.g. ana/nm-01/090)"
    )
    extract.add_argument("--pose-model", type=Path, help="MediaPipe pose landmarker .task (default: the shipped full)")
    add_silhouette_options(extract, "how each person's mask is made", default="mediapipe")
    extract.set_defaults(func=run_extract)

    info = actions.add_parser("info", help="the sequences of a silhouette dataset (CASIA-B PNGs or OpenGait .pkl)")
    info.add_argument("path", type=Path, help="the dataset folder (GaitDatasetB-silh, or subject/type/view folders)")
    info.add_argument("--layout", choices=LAYOUTS, help="the layout (default: from the first sequence's files)")
    info.set_defaults(func=run_info)


def key_of(video: Path, given: str | None) -> SequenceKey:
    """A video's sequence key, from ``--as`` or from a CASIA-B name (``001-nm-01-090.avi`` -> 001/nm-01/090)."""
    if given is not None:
        parts = given.split("/")
        if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_.-]+", p) and p not in (".", "..") for p in parts):
            raise InputError(f"--as {given}: expected SUBJECT/TYPE/VIEW, e.g. ana/nm-01/090 (letters, digits, -_.)")
        return SequenceKey(*parts)
    match = CASIA_NAME.match(video.stem)
    if match is None:
        raise InputError(
            f"{video}: not named like a CASIA-B clip (SSS-CC-NN-VVV, e.g. 001-nm-01-090.avi); "
            "give one such video at a time with --as SUBJECT/TYPE/VIEW"
        )
    subject, condition, number, view = match.groups()
    return SequenceKey(subject, f"{condition}-{number}", view)


def run_extract(args: argparse.Namespace) -> int:
    from sensors.formats.opengait_pkl import write_pkl
    from sensors.rgb import RgbPoseSource

    require_extra("rgb", ("mediapipe", "cv2"), "gaitwatch silhouettes extract")
    if args.key is not None and len(args.videos) != 1:
        raise InputError(f"--as names one video's sequence; {len(args.videos)} videos given")
    background = background_model(args)
    videos = [v for v in args.videos if args.background is None or v.resolve() != args.background.resolve()]
    plan = []
    for video in videos:  # every name and target checked before the first video is read
        if not video.is_file():
            raise InputError(f"{video}: no such video file")
        key = key_of(video, args.key)
        target = args.out / key.subject / key.type / key.view / f"{key.view}.pkl"
        if target.exists() or any(target == t for _, _, t in plan):
            raise InputError(f"{target}: already exists (or two videos are one sequence); refusing to overwrite")
        plan.append((video, key, target))
    for video, key, target in plan:
        source = RgbPoseSource(
            str(video), args.pose_model, 1, sensor_id=video.name, live=False, silhouettes=args.silhouettes,
            background=background,
        )  # fmt: skip
        crops = [e.silhouettes.crops[0] for e in source.estimates() if e.silhouettes.valid[:1].any()]
        frames = np.stack(crops) if crops else np.zeros((0, 64, 44), np.uint8)
        write_pkl(target, frames)
        print(f"{video}: {len(frames)} silhouettes of {source.stats.estimated} images ({key}) -> {target}", flush=True)
    return 0


def run_info(args: argparse.Namespace) -> int:
    counts: dict[str, int] = {}
    sequences = frames = empty = 0
    for sequence in read_dataset(args.path, args.layout):
        sequences += 1
        frames += len(sequence.frames)
        empty += len(sequence.frames) == 0
        counts[sequence.key.subject] = counts.get(sequence.key.subject, 0) + 1
    print(
        f"{args.path}: {len(counts)} subjects, {sequences} sequences ({empty} empty), {frames:,} silhouettes "
        f"(64x44, aligned)"
    )
    return 0
