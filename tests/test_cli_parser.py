"""The command line as a whole: every command and option explained with its default, the shared groups each package
adds to, ``--version``, and the command a handler is given."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from sensors.cli_helpers import command_line
from stream.cli import build_parser, main, parse


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("gaitwatch",)) -> Iterator[tuple[str, object]]:
    """(command path, parser) for the parser and every subcommand's, depth first."""
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def documented(action: argparse.Action) -> bool:
    return isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or bool((action.help or "").strip())


def test_every_command_option_and_positional_has_help():
    missing = []
    for command, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {choice.dest for choice in action._choices_actions if (choice.help or "").strip()}
                missing += [f"{command} {name}" for name in action.choices if name not in listed]
            elif not documented(action):
                missing.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"without help: {missing}"


def test_every_default_is_shown_in_the_help():
    unshown = []
    for command, parser in parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            default = action.default
            if default is None or default is False or default == argparse.SUPPRESS or default == []:
                continue
            if "default" not in formatter._expand_help(action):
                unshown.append(f"{command} {'/'.join(action.option_strings) or action.dest} ({default!r})")
    assert not unshown, f"defaults not in the help: {unshown}"


def test_a_repeatable_option_starting_empty_shows_no_empty_default():
    empty = []
    for command, parser in parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.default == [] and "(default: )" in formatter._expand_help(action):
                empty.append(f"{command} {'/'.join(action.option_strings)}")
    assert not empty, f"an empty default shown: {empty}"


def test_a_default_reads_as_the_value_given_on_the_command_line():
    sub = dict(parsers(build_parser()))["gaitwatch bench encoder"]
    help_text = " ".join(sub.format_help().split())
    assert "batch sizes to time (default: 1 16 64 256)" in help_text
    assert "minimum timing per cell, seconds (default: 2.0)" in help_text


def test_shared_groups_hold_every_package_s_commands():
    commands = dict(parsers(build_parser()))
    assert {"gaitwatch bench encoder", "gaitwatch bench pipeline"} <= commands.keys()  # engines, stream
    calibrate = {name for name in commands if name.startswith("gaitwatch calibrate ")}
    assert calibrate == {
        f"gaitwatch calibrate {w}" for w in ("floor", "place", "intrinsics", "show", "threshold", "site", "fusion")
    }


def test_the_version_is_printed(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip().startswith("gaitwatch ")


def test_a_handler_gets_the_command_it_was_given_from_its_arguments():
    args = parse(["bench", "pipeline", "--sensors", "2", "--out", "a b.json"])
    assert command_line(args) == "gaitwatch bench pipeline --sensors 2 --out 'a b.json'"


def test_building_the_command_line_imports_no_training_package():
    """Without the 'train' extra (torch, onnx, matplotlib) every command must still parse and run: the parser and
    every module it imports at start keep those imports inside the commands that need them."""
    code = (
        "import sys; from stream.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'onnx', 'onnxscript', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
