"""``gaitwatch info`` and ``gaitwatch record``: look into recorded files, record a camera, video or stream."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sensors import silhouette_cli
from sensors.cli_helpers import Commands, Groups
from sensors.errors import InputError
from sensors.formats import is_dataset, read_file
from sensors.formats.gwrec import RecordingWriter
from sensors.formats.gwsil import SUFFIX as GWSIL
from sensors.formats.gwsil import SilhouetteWriter, companion, read_gwsil
from sensors.formats.kgbd import KgbdDataset
from sensors.layouts import MEDIAPIPE_POSE
from sensors.silhouette_options import add_silhouette_options, background_model
from sensors.summary import dataset_summary, recording_summary, silhouette_summary


def register(commands: Commands, groups: Groups) -> None:
    """The sensors package's commands: ``info``, ``record`` and ``silhouettes`` (``silhouette_cli``)."""
    info = commands.add_parser("info", help="describe a recorded file or a dataset")
    info.add_argument(
        "path",
        type=Path,
        help="a recording (.gwrec, .skeleton, .amc, .csv, KGBD .txt, a video), a recording's silhouettes (.gwsil) "
        "or a dataset (KGBD zip or folder, a folder of CMU trials)",
    )
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=run_info)

    record = commands.add_parser("record", help="record skeletons from a camera, video or stream (.gwrec)")
    record.add_argument("--source", required=True, help="device index (0), video file or stream URL")
    record.add_argument("--out", type=Path, required=True, help="the recording to write (never overwritten)")
    record.add_argument("--pose-model", type=Path, help="MediaPipe pose landmarker .task (default: the shipped full)")
    record.add_argument("--people", type=int, default=1, help="most people estimated per image")
    record.add_argument("--seconds", type=float, help="stop after this long (default: until the source ends or ^C)")
    add_silhouette_options(record, "also record each person's aligned silhouette, beside OUT as OUT.gwsil")
    record.set_defaults(func=run_record)
    silhouette_cli.register(commands)


def run_record(args: argparse.Namespace) -> int:
    """Record a camera, video or stream; the file is created with the first frame, so a source that
    fails to open leaves nothing behind to block the retry (and an existing file is never touched)."""
    from sensors.rgb import RgbPoseSource, parse_source

    if args.people < 1:
        raise InputError(f"--people: must be at least 1, got {args.people}")
    outputs = [args.out, companion(args.out)] if args.silhouettes else [args.out]
    for path in outputs:  # checked before the camera opens; the writers' exclusive create is the real guard
        if path.exists():
            raise InputError(f"{path}: already exists; refusing to overwrite a recording")
    source = RgbPoseSource(
        parse_source(args.source),
        args.pose_model,
        args.people,
        sensor_id=str(args.source),
        silhouettes=args.silhouettes,
        background=background_model(args),
    )
    writer: RecordingWriter | None = None
    silhouettes: SilhouetteWriter | None = None
    began = time.monotonic()
    try:
        for estimate in source.estimates():
            if writer is None:
                writer, silhouettes = _record_writers(args)
            frame = estimate.frame
            writer.write_frame(frame)
            if silhouettes is not None and estimate.silhouettes is not None:
                made = estimate.silhouettes
                bodies = np.flatnonzero(made.valid)
                silhouettes.write(frame.seq, frame.t, bodies, made.boxes[bodies], made.crops[bodies])
            if args.seconds is not None and time.monotonic() - began >= args.seconds:
                break
        if writer is None:  # the source ended without a frame: an empty recording says so
            writer, silhouettes = _record_writers(args)
    except KeyboardInterrupt:
        pass  # every frame written so far is on disk: the format is append-only
    finally:
        for opened in (writer, silhouettes):
            if opened is not None:
                opened.close()
    stats = source.stats
    kept = f"; {silhouettes.written} silhouettes into {silhouettes.path}" if silhouettes is not None else ""
    print(
        f"recorded {stats.estimated} frames ({stats.with_bodies} with a person, {stats.dropped} dropped by a "
        f"live source) into {args.out}{kept}"
    )
    return 0


def _record_writers(args: argparse.Namespace) -> tuple[RecordingWriter, SilhouetteWriter | None]:
    writer = RecordingWriter(args.out, MEDIAPIPE_POSE, sensor_id=str(args.source), metadata={"source": args.source})
    if not args.silhouettes:
        return writer, None
    try:
        return writer, SilhouetteWriter(
            companion(args.out),
            method=args.silhouettes,
            sensor_id=str(args.source),
            metadata={"source": args.source, "recording": args.out.name},
        )
    except BaseException:
        writer.close()
        raise


def run_info(args: argparse.Namespace) -> int:
    if is_dataset(args.path):
        summary = dataset_summary(KgbdDataset(args.path), progress=not args.json)
    elif args.path.suffix == GWSIL:
        summary = silhouette_summary(read_gwsil(args.path))
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
    if summary["kind"] == "silhouettes":
        height, width = summary["size"]
        lines += [
            f"  silhouettes  {summary['silhouettes']:,} of {summary['frames']:,} frames, {height}x{width}, aligned",
            f"  method       {summary['method']}",
            f"  sensor       {summary['sensor_id']}",
            f"  duration     {summary['duration_s']:.2f} s",
        ]
        if "truncated" in summary:
            cut = summary["truncated"]
            lines.append(f"  truncated    {cut['reason']}; {cut['dropped_bytes']} bytes dropped")
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
