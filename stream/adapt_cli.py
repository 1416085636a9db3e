"""``gaitwatch adapt``: adapt the encoder to a site's unlabeled recordings and export it with its card.

The recordings are cut into windows per track exactly as enrollment and the node cut them
(``stream.windows``), so the encoder adapts to what it will see; the adaptation itself is
``engines.adapt``. Move a gallery onto the result with ``gaitwatch gallery reembed``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sensors.cli_helpers import require_extra
from sensors.errors import InputError

DEFAULT_STEPS = 0  # statistics only: why the fine-tune is opt-in is in engines/adapt.py (torch: not imported here)
STRIDE = 2  # windows start every 2 frames: a site gives few tracks, so each gives as many windows as is useful


def add_commands(commands: argparse._SubParsersAction) -> None:
    adapt = commands.add_parser(
        "adapt", help="adapt the encoder to a site's unlabeled recordings (statistics, optional fine-tune)"
    )
    adapt.add_argument("recordings", nargs="+", type=Path, help="recordings or videos of the site (no labels needed)")
    adapt.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="a trackcon checkpoint (.pt or run folder; default: the shipped trackcon-kgbd.pt)",
    )
    adapt.add_argument("--out", type=Path, required=True, help="new folder: model.pt, model.onnx and its card")
    adapt.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help="fine-tuning steps after the statistics (0: statistics only; 300 was measured: it hurt a site of few "
        "people with many walks each, see benchmarks/cross_site.md)",
    )
    adapt.add_argument("--seed", type=int, default=0, help="seed of the fine-tune's sampling and augmentation")
    adapt.add_argument("--sensor-id", help="sensor id of the recordings (for --calibration)")
    adapt.add_argument("--calibration", type=Path, help="sensor calibration file, as the node uses it")
    adapt.set_defaults(func=run_adapt)


def run_adapt(args: argparse.Namespace) -> int:
    require_extra("train", ("torch", "onnxscript"), "adaptation")
    from calibration.sensor_file import SensorCalibrations
    from engines.adapt import adapt_checkpoint
    from engines.checkpoint import atomic_save, load
    from engines.export.artifact import export_onnx_artifact
    from engines.runtime.load import resolve_artifact, shipped_checkpoint
    from sensors.atomic import private_dir

    if args.out.exists():
        raise InputError(f"--out {args.out}: already exists; adaptation writes a new folder")
    source = Path(resolve_artifact(args.source)) if args.source else shipped_checkpoint()
    if source.suffix != ".pt":
        raise InputError(f"--from {source}: adaptation starts from a torch checkpoint (.pt or a run folder)")
    checkpoint = load(source)
    calibrations = SensorCalibrations.load(args.calibration) if args.calibration else None
    windows, tracks = site_windows(args.recordings, checkpoint["f"], float(checkpoint.get("rate_hz", 30.0)),
                                   args.sensor_id, calibrations)  # fmt: skip
    adapted = adapt_checkpoint(checkpoint, windows, tracks, steps=args.steps, seed=args.seed)
    adapted["adaptation"]["recordings"] = [str(p) for p in args.recordings]
    adapted["adaptation"]["from_file"] = str(source)
    private_dir(args.out)
    atomic_save(adapted, args.out / "model.pt")
    card = export_onnx_artifact(args.out / "model.pt", args.out / "model.onnx", checkpoint["f"])
    for written in args.out.iterdir():  # learned from the site's people: private, as their gallery is
        written.chmod(0o600)
    info = adapted["adaptation"]
    print(
        f"adapted on {info['windows']} windows of {info['tracks']} tracks in {info['seconds']:.0f} s "
        f"({info['steps']} steps); wrote {args.out / 'model.pt'} and {args.out / 'model.onnx'} "
        f"(sha256 {card['file']['sha256'][:12]}...)"
    )
    print(f"move a gallery onto it: gaitwatch gallery reembed GALLERY --model {args.out / 'model.onnx'}")
    return 0


def site_windows(
    paths: list[Path], f: int, rate_hz: float, sensor_id: str | None, calibrations
) -> tuple[np.ndarray, np.ndarray]:
    """Every whole window of every track of ``paths`` and the track (numbered over all inputs) of each."""
    from stream.inputs import site_tracks

    parts = [part.windows for _, _, part in site_tracks(paths, f, rate_hz, sensor_id, calibrations, STRIDE)]
    if not parts:
        raise InputError(f"{', '.join(map(str, paths))}: no person is seen for a whole window; nothing to adapt on")
    tracks = [np.full(len(windows), number, np.int64) for number, windows in enumerate(parts)]
    return np.concatenate(parts), np.concatenate(tracks)
