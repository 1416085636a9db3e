"""Long work shows progress where nobody watches a terminal too: plain log lines, never silence."""

from __future__ import annotations

import logging

import sensors.progress as progress_module
from sensors.progress import progress
from stream.logs import configure


def test_without_a_terminal_progress_is_plain_lines_and_a_final_one(monkeypatch, capfd):
    configure()
    monkeypatch.setattr(progress_module, "PLAIN_EVERY_S", 0.0)
    assert list(progress(range(3), "Encoding windows", total=3)) == [0, 1, 2]
    lines = capfd.readouterr().err.strip().splitlines()
    assert lines[:3] == ["Encoding windows: 1/3 (33%), 0 s", "Encoding windows: 2/3 (67%), 0 s", lines[2]]
    assert lines[2].startswith("Encoding windows: 3/3 (100%)") and lines[-1].startswith("Encoding windows: 3 done in")


def test_short_or_disabled_progress_says_nothing(capfd):
    configure()
    assert list(progress(range(3), "quiet", enabled=False)) == [0, 1, 2]
    assert list(progress(range(3), "short")) == [0, 1, 2]  # done before the first line is due
    assert capfd.readouterr().err == ""


def test_warnings_are_one_prefixed_line_on_stderr(capfd):
    configure()
    configure()  # configuring twice must not print twice
    logging.getLogger("gaitwatch.calibration").warning("sensor %r has no calibration", "k")
    assert capfd.readouterr().err == "warning: sensor 'k' has no calibration\n"
