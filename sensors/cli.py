"""``gaitwatch info`` and ``gaitwatch record``: look into recorded files, record a camera, video or stream."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sensors.cli_helpers import Commands, Groups
from sensors.errors import InputError
from sensors.formats import is_dataset, read_file
from sensors.formats.gwrec import RecordingWriter
from sensors.formats.kgbd import KgbdDataset
from sensors.layouts import MEDIAPIPE_POSE
from sensors.summary import dataset_summary, recording_summary


def register(commands: Commands, groups: Groups) -> None:
    """The sensors package's commands: ``info`` and ``record``."""
    info = commands.add_parser("info", help="describe a recorded file or a dataset")
    info.add_argument(
        "path",
        type=Path,
        help="a recording (.gwrec, .skeleton, .amc, .csv, KGBD .txt, a video) or a dataset (KGBD zip or folder, "
        "a folder of CMU trials)",
    )
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=run_info)

    record = commands.add_parser("record", help="record skeletons from a camera, video or stream (.gwrec)")
    record.add_argument("--source", required=True, help="device index (0), video file or stream URL")
    record.add_argument("--out", type=Path, required=True, help="the recording to write (never overwritten)")
    record.add_argument("--pose-model", type=Path, help="MediaPipe pose landmarker .task (default: the shipped full)")
    record.add_argument("--people", type=int, default=1, help="most people estimated per image")
    record.add_argument("--seconds", type=float, help="stop after this long (default: until the source ends or ^C)")
    record.set_defaults(func=run_record)


def run_record(args: argparse.Namespace) -> int:
    """Record a camera, video or stream; the file is created with the first frame, so a source that
    fails to open leaves nothing behind to block the retry (and an existing file is never touched)."""
    from sensors.rgb import RgbPoseSource, parse_source

    if args.people < 1:
        raise InputError(f"--people: must be at least 1, got {args.people}")
    if args.out.exists():  # checked before the camera opens; the writer's exclusive create is the real guard
        raise InputError(f"{args.out}: already exists; refusing to overwrite a recording")
    source = RgbPoseSource(parse_source(args.source), args.pose_model, args.people, sensor_id=str(args.source))
    writer: RecordingWriter | None = None
    began = time.monotonic()
    try:
        for frame in source:
            if writer is None:
                writer = _record_writer(args)
            writer.write_frame(frame)
            if args.seconds is not None and time.monotonic() - began >= args.seconds:
                break
        if writer is None:  # the source ended without a frame: an empty recording says so
            writer = _record_writer(args)
    except KeyboardInterrupt:
        pass  # every frame written so far is on disk: the format is append-only
    finally:
        if writer is not None:
            writer.close()
    stats = source.stats
    print(
        f"recorded {stats.estimated} frames ({stats.with_bodies} with a person, {stats.dropped} dropped by a "
        f"live source) into {args.out}"
    )
    return 0


def _record_writer(args: argparse.Namespace) -> RecordingWriter:
    return RecordingWriter(args.out, MEDIAPIPE_POSE, sensor_id=str(args.source), metadata={"source": args.source})


def run_info(args: argparse.Namespace) -> int:
    if is_dataset(args.path):
        summary = dataset_summary(KgbdDataset(args.path), progress=not args.json)
    else:
        summary = recording_summary(read_file(args.path))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(args.path, summary))
    return 0


def format_summary(path: Path, summary: dict) -> str:
    lines = [f"{path}"]
    if summary["kind"] == "dataset":
        fpw = summary["frames_per_walk"]
        lines += [
            f"  dataset      KGBD ({summary['layout']}, 20 joints)",
            f"  people       {summary['people']}",
            f"  walks        {summary['walks']}  (walks per person: "
            + ", ".join(f"{k}: {v}" for k, v in summary["walks_per_person"].items())
            + ")",
            f"  frames       {summary['frames']:,}  (per walk {fpw['min']}-{fpw['max']}, median {fpw['median']:g})",
            f"  duration     {summary['duration_s']:,.1f} s at {summary['nominal_rate_hz']:g} Hz",
        ]
        return "\n".join(lines)
    rate = summary["nominal_rate_hz"]
    lines += [
        f"  layout       {summary['layout']} ({summary['joints']} joints, {summary['units']})",
        f"  sensor       {summary['sensor_id']}",
        f"  bodies       {summary['bodies']} tracks, at most {summary['max_bodies_per_frame']} in a frame",
        f"  frames       {summary['frames']:,}  ({summary['body_frames']:,} body-frames)",
        f"  duration     {summary['duration_s']:.2f} s",
        f"  rate         {'?' if rate is None else f'{rate:g}'} Hz nominal, "
        f"{summary['measured_rate_hz'] or '?'} Hz measured",
    ]
    if summary["labels"]:
        lines.append("  labels       " + ", ".join(f"{k}={v}" for k, v in summary["labels"].items()))
    if "track_labels" in summary:
        lines.append(f"  tracks       {len(summary['track_labels'])} labelled tracks")
    if "truncated" in summary:
        cut = summary["truncated"]
        lines.append(
            f"  truncated    {cut['reason']}; {cut['dropped_bytes']} bytes dropped after the last complete frame"
        )
    return "\n".join(lines)
