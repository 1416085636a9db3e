"""``gaitwatch info`` and ``gaitwatch replay``: look into recorded files and play them back."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sensors.demo import demo_recording_path
from sensors.errors import InputError
from sensors.formats import is_dataset, iter_recordings, read_file
from sensors.formats.kgbd import KgbdDataset
from sensors.replay import Replay
from sensors.summary import dataset_summary, recording_summary


def register(commands: argparse._SubParsersAction) -> None:
    info = commands.add_parser("info", help="describe a recorded file or a dataset")
    info.add_argument("path", type=Path, help="a recording (.gwrec, .skeleton, .amc, KGBD .txt) or a KGBD zip/folder")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=run_info)

    replay = commands.add_parser("replay", help="play recorded files as a live stream of frames")
    replay.add_argument("paths", type=Path, nargs="*", help="files or datasets (default: the bundled demo recording)")
    replay.add_argument("--speed", default="1", help="pace factor, or 'max' for as fast as possible (default 1)")
    replay.add_argument("--loop", action="store_true", help="start over at the end, until interrupted")
    replay.set_defaults(func=run_replay)


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not speed > 0:
        raise InputError(f"--speed: expected a positive number or 'max', got {text!r}")
    return speed


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


def track_label(labels: dict) -> str:
    """A short name for where a track came from: KGBD person/walk, CMU trial, NTU sample, or the file."""
    if "person" in labels and "walk" in labels:
        return f"{labels['person']}/{labels['walk']}"
    if "trial" in labels:
        return f"subject {labels.get('subject', '?')} trial {labels['trial']}"
    if "person" in labels:
        return str(labels["person"])
    return Path(str(labels.get("source", "?"))).name


def run_replay(args: argparse.Namespace) -> int:
    paths = args.paths or [demo_recording_path()]
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    replay = Replay(lambda: iter_recordings(paths), speed=parse_speed(args.speed), loop=args.loop)
    frames = bodies = 0
    window_frames = window_bodies = 0
    window_tracks: set[int] = set()
    all_tracks: set[int] = set()
    started = last_print = time.monotonic()
    stream_t = 0.0
    for frame in replay:
        frames += 1
        bodies += frame.num_bodies
        window_frames += 1
        window_bodies += frame.num_bodies
        window_tracks.update(frame.track_ids.tolist())
        stream_t = frame.t
        now = time.monotonic()
        if now - last_print >= 1.0:
            print(
                f"t={stream_t:8.2f}s  +{window_frames} frames  +{window_bodies} bodies  "
                f"{window_frames / (now - last_print):7.1f} fps  tracks "
                + ", ".join(f"{k} ({track_label(replay.track_labels.get(k, {}))})" for k in sorted(window_tracks)),
                flush=True,
            )
            all_tracks |= window_tracks
            window_frames = window_bodies = 0
            window_tracks = set()
            last_print = now
    all_tracks |= window_tracks
    elapsed = time.monotonic() - started
    print(
        f"total: {frames} frames, {bodies} body-frames, {len(all_tracks)} tracks, "
        f"{stream_t:.2f} s of stream in {elapsed:.2f} s",
        file=sys.stdout,
    )
    return 0
