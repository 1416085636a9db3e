"""``gaitwatch calibrate``: match thresholds (``threshold_cli``) and sensor geometry (``sensor_cli``)."""

from __future__ import annotations

import argparse

from calibration import sensor_cli, threshold_cli


def register(commands: argparse._SubParsersAction) -> None:
    calibrate = commands.add_parser(
        "calibrate", help="calibrate match thresholds from labelled data, and each sensor's floor and placement"
    )
    what = calibrate.add_subparsers(dest="what", metavar="WHAT", required=True)
    threshold_cli.add_commands(what)
    sensor_cli.add_commands(what)
