"""The ``gaitwatch`` command: each package contributes its subcommands."""

from __future__ import annotations

import argparse
import signal
import sys

import calibration.calibrate_cli
import calibration.cli
import engines.cli
import engines.export.cli
import engines.runtime.cli
import sensors.cli
import stream.gallery.cli
import stream.node.cli
from sensors.errors import GaitwatchError
from stream.logs import configure as configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gaitwatch", description="Real-time person re-identification by gait.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sensors.cli.register(commands)
    calibration.cli.register(commands)
    calibration.calibrate_cli.register(commands)
    engines.cli.register(commands)
    engines.export.cli.register(commands)
    engines.runtime.cli.register(commands)
    stream.gallery.cli.register(commands)
    stream.node.cli.register(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager stopping us, ``kill``): handled like ^C, so temporary files and open
    recordings and galleries are closed on the way out."""


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if _in_main_thread() else None
    try:
        return args.func(args)
    except GaitwatchError as err:
        print(f"gaitwatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permissions, a folder where a file should be, ...
        where = f"{err.filename}: " if err.filename else ""
        print(f"gaitwatch {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"gaitwatch {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"gaitwatch {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
