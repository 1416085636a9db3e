"""``gaitwatch calibrate floor | place | intrinsics | show``: each sensor's geometry, kept in one calibration file.

The node's ``--calibration FILE`` then turns every calibrated sensor's frames into the shared world frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from calibration.floor import fit_floor, stance_points
from calibration.mapping import to_canonical
from calibration.placement import Intrinsics, placer_for
from calibration.sensor_file import SensorCalibrations
from calibration.sensor_pose import Placement, SensorPose
from sensors.cli_helpers import require_extra
from sensors.errors import InputError
from sensors.recording import Recording

CALIBRATION_HELP = "the sensor calibration file to update (JSON; made on first use)"


def add_commands(what: argparse._SubParsersAction) -> None:
    """``floor``, ``place``, ``intrinsics`` and ``show`` under ``gaitwatch calibrate``."""
    floor = what.add_parser("floor", help="fit a sensor's floor plane from the feet of people walking in a recording")
    floor.add_argument("recordings", type=Path, nargs="+", help="recordings of one sensor (gwrec, video, ...)")
    floor.add_argument("--calibration", type=Path, required=True, help=CALIBRATION_HELP)
    floor.add_argument("--sensor-id", help="the sensor's id (default: the recording's)")
    floor.add_argument(
        "--intrinsics",
        type=Path,
        help="videos: JSON with fx, fy, cx, cy in pixels (default: those stored for the sensor)",
    )
    floor.add_argument("--fov", type=float, help="videos: horizontal field of view in degrees")
    floor.add_argument("--plot", type=Path, help="PNG: the footsteps seen from above and from the side (default: none)")
    floor.set_defaults(func=run_floor)

    place = what.add_parser("place", help="where a sensor stands on the floor and which way it faces")
    place.add_argument("--calibration", type=Path, required=True, help=CALIBRATION_HELP)
    place.add_argument("--sensor-id", required=True, help="the sensor's id, as its frames carry it")
    place.add_argument("--x", type=float, default=0.0, help="world x of the sensor's floor point, metres")
    place.add_argument("--z", type=float, default=0.0, help="world z of the sensor's floor point, metres")
    place.add_argument("--yaw", type=float, default=0.0, help="heading, degrees from world z towards world x")
    place.set_defaults(func=run_place)

    intrinsics = what.add_parser("intrinsics", help="a camera's intrinsics, from a JSON file or a field of view")
    intrinsics.add_argument("--calibration", type=Path, required=True, help=CALIBRATION_HELP)
    intrinsics.add_argument("--sensor-id", required=True, help="the camera's sensor id, as its frames carry it")
    given = intrinsics.add_mutually_exclusive_group(required=True)
    given.add_argument("--file", type=Path, help="JSON with fx, fy, cx, cy in pixels")
    given.add_argument("--fov", type=float, help="horizontal field of view in degrees (needs --size)")
    intrinsics.add_argument("--size", help="image size WIDTHxHEIGHT in pixels, with --fov")
    intrinsics.set_defaults(func=run_intrinsics)

    show = what.add_parser("show", help="print a sensor calibration file")
    show.add_argument("calibration", type=Path, help="a sensor calibration file (JSON)")
    show.set_defaults(func=run_show)


def run_floor(args: argparse.Namespace) -> int:
    calibrations = SensorCalibrations.load(args.calibration, missing_ok=True)  # a bad file fails before the work
    recordings = _read(args, calibrations)
    sensor_id = args.sensor_id or recordings[0].sensor_id
    where = ", ".join(str(p) for p in args.recordings)
    fit = fit_floor(recordings, where)
    entry = calibrations.entry(sensor_id)
    entry.floor, entry.floor_source = fit, where
    calibrations.save(sensor_id)
    spread_along, spread_across = fit.spread_m
    print(
        f"{sensor_id}: sensor {fit.offset:.3f} m above the floor, its up axis {fit.tilt_deg:.1f} deg off the floor's "
        f"({fit.method}; {fit.inliers} of {fit.points} lower-foot points within 3 cm, rms {100 * fit.rms_m:.1f} cm; "
        f"footsteps spread {spread_along:.2f} m along, {spread_across:.2f} m across)"
    )
    if fit.method != "plane":
        print(
            "  the footsteps lie along one line: roll about it comes from the walkers' body axis. "
            "Walk across the view in several directions for a plane fitted from the feet alone."
        )
    print(f"wrote {args.calibration}")
    if args.plot is not None:
        _plot(recordings, entry.pose() or SensorPose.identity(), sensor_id, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _read(args: argparse.Namespace, calibrations: SensorCalibrations) -> list[Recording]:
    from sensors.formats import iter_recordings
    from sensors.formats.video import SUFFIXES, read_video

    recordings = []
    for path in args.recordings:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.suffix.lower() in SUFFIXES:
            known = calibrations.sensors.get(args.sensor_id or path.name)
            place = placer_for(args.intrinsics, args.fov, known.intrinsics if known else None)
            if place is None:
                raise InputError(
                    f"{path}: MediaPipe centres every skeleton on its hips, so a video's footsteps need the "
                    "camera's intrinsics: give --intrinsics or --fov (or store them: gaitwatch calibrate intrinsics)"
                )
            recordings.append(to_canonical(read_video(path, place)))
        else:
            recordings.extend(to_canonical(r) for r in iter_recordings([path]))
    sensors = {r.sensor_id for r in recordings}
    if len(sensors) > 1 and args.sensor_id is None:
        raise InputError(f"recordings of several sensors ({', '.join(sorted(sensors))}): fit one at a time")
    return recordings


def _plot(recordings: list[Recording], pose: SensorPose, sensor_id: str, out: Path) -> None:
    require_extra("train", ("matplotlib",), "--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feet = pose.apply(np.concatenate([stance_points(r)[0] for r in recordings]).astype(np.float32))
    figure, (top, side) = plt.subplots(1, 2, figsize=(11, 4.5))
    dots = top.scatter(feet[:, 0], feet[:, 2], c=feet[:, 1], s=6, cmap="viridis", vmin=-0.05, vmax=0.05)
    top.scatter([pose.position[0]], [pose.position[2]], marker="^", color="red", label="sensor")
    top.set(xlabel="world x (m)", ylabel="world z (m)", title="lower foot of each body, each frame: from above")
    top.legend(loc="best")
    figure.colorbar(dots, ax=top, label="height above the fitted floor (m)")
    along = 0 if feet[:, 0].std() > feet[:, 2].std() else 2  # look across the walk
    side.scatter(feet[:, along], feet[:, 1], s=4)
    side.axhline(0.0, color="red", linewidth=1, label="fitted floor")
    side.set(xlabel=f"world {'xyz'[along]} (m)", ylabel="height (m)", title="from the side", ylim=(-0.15, 0.15))
    side.legend(loc="best")
    figure.suptitle(f"floor of sensor {sensor_id}")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)


def run_place(args: argparse.Namespace) -> int:
    calibrations = SensorCalibrations.load(args.calibration, missing_ok=True)
    values = (args.x, args.z, args.yaw)
    if not all(np.isfinite(values)):
        raise InputError("--x, --z and --yaw must be finite numbers")
    calibrations.entry(args.sensor_id).placement = Placement(args.x, args.z, args.yaw)
    calibrations.save(args.sensor_id)
    print(f"{args.sensor_id}: placed at x {args.x} m, z {args.z} m, heading {args.yaw} deg; wrote {args.calibration}")
    return 0


def run_intrinsics(args: argparse.Namespace) -> int:
    calibrations = SensorCalibrations.load(args.calibration, missing_ok=True)
    if args.file is not None:
        intrinsics = Intrinsics.from_file(args.file)
    else:
        if args.size is None:
            raise InputError("--fov needs --size WIDTHxHEIGHT")
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise InputError(f"--size {args.size}: expected WIDTHxHEIGHT in pixels, e.g. 1280x720") from None
        intrinsics = Intrinsics.from_fov(width, height, args.fov)
    calibrations.entry(args.sensor_id).intrinsics = intrinsics
    calibrations.save(args.sensor_id)
    k = intrinsics
    print(f"{args.sensor_id}: fx {k.fx:.1f}, fy {k.fy:.1f}, cx {k.cx:.1f}, cy {k.cy:.1f} px; wrote {args.calibration}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    calibrations = SensorCalibrations.load(args.calibration)
    if not calibrations.sensors:
        print(f"{args.calibration}: no sensors")
    for sensor_id, entry in calibrations.sensors.items():
        parts = []
        if entry.floor is not None:
            f = entry.floor
            parts.append(
                f"{f.offset:.3f} m above the floor, tilt {f.tilt_deg:.1f} deg ({f.method}, rms {100 * f.rms_m:.1f} cm, "
                f"from {entry.floor_source})"
            )
        if entry.placement is not None:
            p = entry.placement
            parts.append(f"at x {p.x_m} m, z {p.z_m} m, heading {p.yaw_deg} deg")
        if entry.intrinsics is not None:
            k = entry.intrinsics
            parts.append(f"intrinsics fx {k.fx:.1f} fy {k.fy:.1f} cx {k.cx:.1f} cy {k.cy:.1f}")
        print(f"{sensor_id}: " + ("; ".join(parts) or "nothing calibrated") + f" (updated {entry.updated})")
    return 0
