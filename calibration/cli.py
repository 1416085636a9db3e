"""The calibration package's commands: ``gaitwatch convert`` (any readable recording into gaitwatch's own format,
optionally canonical and resampled, here) and ``gaitwatch calibrate floor | place | intrinsics | show``
(``sensor_cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from calibration import sensor_cli
from calibration.mapping import to_canonical
from calibration.resample import resample
from sensors.cli_helpers import Commands, Groups
from sensors.errors import InputError
from sensors.formats import iter_recordings
from sensors.formats.gwrec import SUFFIX, write_recording
from sensors.progress import progress as show_progress
from sensors.recording import Recording
from sensors.summary import recording_summary


def register(commands: Commands, groups: Groups) -> None:
    """``convert``, and each sensor's geometry under the shared ``calibrate`` group."""
    convert = commands.add_parser(
        "convert", help="convert recordings into gaitwatch's own format (many inputs become one file, a track each)"
    )
    convert.add_argument("inputs", type=Path, nargs="+", help="files or datasets to read")
    convert.add_argument("output", type=Path, help=f"the {SUFFIX} file to write")
    convert.add_argument("--canonical", action="store_true", help="map to the canonical 20-joint skeleton")
    convert.add_argument("--rate", type=float, help="resample to this frame rate, Hz (default: keep the inputs' rate)")
    convert.add_argument("--sensor-id", help="sensor id to record in the output (default: the input's)")
    convert.add_argument("--force", action="store_true", help="overwrite an existing output file")
    convert.set_defaults(func=run_convert)
    sensor_cli.add_commands(groups["calibrate"])


def convert(inputs: list[Path], *, canonical: bool, rate: float | None, progress: bool = True) -> Recording:
    converted = []
    for rec in show_progress(iter_recordings(inputs), "converting", enabled=progress):
        if canonical:
            rec = to_canonical(rec)
        if rate:
            rec = resample(rec, rate)
        converted.append(rec)
    if not converted:
        raise InputError("no recordings in the inputs")
    if len(converted) == 1:
        return converted[0]
    layouts = {r.layout.name for r in converted}
    if len(layouts) > 1:
        raise InputError(f"inputs have different layouts ({', '.join(sorted(layouts))}); add --canonical")
    return Recording.concatenate(converted)


def run_convert(args: argparse.Namespace) -> int:
    if args.output.suffix != SUFFIX:
        raise InputError(f"{args.output}: output must be a {SUFFIX} file")
    if args.output.exists() and not args.force:
        raise InputError(f"{args.output}: already exists (use --force to overwrite)")
    if args.rate is not None and not args.rate > 0:
        raise InputError(f"--rate: expected a positive frame rate, got {args.rate}")
    recording = convert(args.inputs, canonical=args.canonical, rate=args.rate)
    if args.sensor_id:
        recording.sensor_id = args.sensor_id
    write_recording(args.output, recording, overwrite=args.force)
    s = recording_summary(recording)
    print(
        f"wrote {args.output}: {s['layout']}, {s['bodies']} tracks, {s['frames']} frames, "
        f"{s['duration_s']:.2f} s at {s['nominal_rate_hz'] or '?'} Hz"
    )
    return 0
