"""The ``gaitwatch`` command: builds the parser, creates the groups several packages add to (``bench``,
``calibrate``), hands them to each package's one ``register``, and turns errors into one line and an exit status."""

from __future__ import annotations

import argparse
import contextlib
import io
import signal
import sys
from importlib.metadata import PackageNotFoundError, version

import calibration.cli
import engines.cli
import sensors.cli
import stream.adapt_cli
import stream.dashboard.cli
import stream.fusion_cli
import stream.gallery.cli
import stream.hub_cli
import stream.keys_cli
import stream.node.cli
import stream.site_cli
import stream.threshold_cli
from sensors.cli_helpers import Commands, Groups
from sensors.errors import GaitwatchError
from stream.logs import configure as configure_logging

SHARED_GROUPS = {
    "bench": "measure speed (windows/s, p50/p99 latency)",
    "calibrate": "calibrate match thresholds (from labelled data, or a site's own recordings) and sensors",
}


def register(commands: Commands, groups: Groups) -> None:
    """The stream package's commands: the gallery, the node (replay, camera, kinect, listen, launch, bench
    pipeline), the matcher's threshold (calibrate threshold, calibrate site), the fusion weight (calibrate
    fusion), site adaptation (adapt), CURVE keys (keys) and the dashboard."""
    stream.gallery.cli.add_commands(commands)
    stream.node.cli.add_commands(commands, groups["bench"])
    stream.threshold_cli.add_commands(groups["calibrate"])
    stream.site_cli.add_commands(groups["calibrate"])
    stream.fusion_cli.add_commands(groups["calibrate"])
    stream.adapt_cli.add_commands(commands)
    stream.keys_cli.add_commands(commands)
    stream.hub_cli.add_commands(commands)
    stream.dashboard.cli.add_commands(commands)


PACKAGES = (sensors.cli.register, calibration.cli.register, engines.cli.register, register)


class HelpFormatter(argparse.HelpFormatter):
    """Each option's default at the end of its help, unless the help already speaks of it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default is None or default is False or default == argparse.SUPPRESS or "default" in text:
            return text
        if isinstance(default, (list, tuple)) and not default:
            return text  # an empty list (a repeatable option) has nothing to show
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text  # a required positional has no default to speak of
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """Every (sub)command's parser: subparsers are made of the parent's class, so all of them show defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    try:
        return version("gaitwatch")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gaitwatch", description="Real-time person re-identification by gait.")
    parser.add_argument("--version", action="version", version=f"gaitwatch {_version()}", help="print the version")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = {
        name: commands.add_parser(name, help=text).add_subparsers(dest="what", metavar="WHAT", required=True)
        for name, text in SHARED_GROUPS.items()
    }
    for register_package in PACKAGES:
        register_package(commands, groups)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The parsed command, with the argv it was given kept as ``args.argv`` (benchmarks record their command)."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    return args


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager stopping us, ``kill``): handled like ^C, so temporary files and open
    recordings and galleries are closed on the way out."""


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    configure_logging()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if _in_main_thread() else None
    try:
        return args.func(args)
    except GaitwatchError as err:
        print(f"gaitwatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gaitwatch ... | head`: the reader has gone, nothing more to say
        _silence_stdout()
        return 0
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
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """Point stdout at nowhere, so that flushing it at exit raises no second broken pipe."""
    import os

    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):  # no file descriptor: nothing to do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
